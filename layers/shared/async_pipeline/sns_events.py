"""SNS records as Lambda receives them (``Records[].Sns``), and the conversion the local stack needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class MalformedSnsRecord(ValueError):
    """A record that is not an SNS notification; the message says why."""


@dataclass(frozen=True, slots=True)
class SnsRecord:
    message_id: str
    topic_arn: str
    message: str
    timestamp: str | None
    subscription_arn: str | None


def parse_record(record: Mapping[str, Any]) -> SnsRecord:
    if not isinstance(record, Mapping) or record.get("EventSource") != "aws:sns":
        raise MalformedSnsRecord("record is not from aws:sns")
    sns = record.get("Sns")
    if not isinstance(sns, Mapping):
        raise MalformedSnsRecord("record has no 'Sns' object")
    message = sns.get("Message")
    topic_arn = sns.get("TopicArn")
    if not isinstance(message, str):
        raise MalformedSnsRecord("Sns.Message is missing or not a string")
    if not isinstance(topic_arn, str) or not topic_arn:
        raise MalformedSnsRecord("Sns.TopicArn is missing")
    return SnsRecord(
        message_id=str(sns.get("MessageId", "")),
        topic_arn=topic_arn,
        message=message,
        timestamp=sns.get("Timestamp"),
        subscription_arn=record.get("EventSubscriptionArn"),
    )


def records(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(found, list):
        raise MalformedSnsRecord("event has no 'Records' list")
    return found


def lambda_record_from_envelope(envelope: Mapping[str, Any], subscription_arn: str) -> dict[str, Any]:
    """Turn the JSON envelope SNS delivers to SQS/HTTP into the record shape Lambda delivers.

    The envelope spells ``SigningCertURL``/``UnsubscribeURL``; Lambda spells ``SigningCertUrl``/``UnsubscribeUrl``
    and always carries ``Subject`` (null when none) and ``MessageAttributes``.
    """
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": {
            "Type": envelope.get("Type", "Notification"),
            "MessageId": envelope.get("MessageId"),
            "TopicArn": envelope.get("TopicArn"),
            "Subject": envelope.get("Subject"),
            "Message": envelope.get("Message"),
            "Timestamp": envelope.get("Timestamp"),
            "SignatureVersion": envelope.get("SignatureVersion", "1"),
            "Signature": envelope.get("Signature", ""),
            "SigningCertUrl": envelope.get("SigningCertURL", envelope.get("SigningCertUrl", "")),
            "UnsubscribeUrl": envelope.get("UnsubscribeURL", envelope.get("UnsubscribeUrl", "")),
            "MessageAttributes": envelope.get("MessageAttributes", {}),
        },
    }

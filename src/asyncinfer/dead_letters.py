"""Dead letters: the messages in the pipeline's dead-letter queue, which service put each one there, and which inputs
it concerns. ``asyncinfer redrive`` replays them by kind; the soak's audit counts the inputs they account for.

Three kinds land there: Lambda's on-failure destination record (a function's retries ran out), a notification SNS
could not deliver (a subscription's redrive policy) and a result event EventBridge could not deliver (the results
rule's dead-letter queue). Anything else is ``unknown`` and is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from async_pipeline import inference_ids, notifications, result_events, s3_events, sns_events

Kind = Literal["lambda", "sns", "events", "unknown"]
NOT_OURS = "not a message this pipeline puts there"


class UnreadableBody(ValueError):
    """The message body is not a JSON object; the message says which ("not JSON", "not a JSON object")."""


@dataclass
class DeadLetter:
    message_id: str
    kind: Kind
    source: str  # function, topic or bus
    reason: str
    inference_ids: list[str] = field(default_factory=list)
    input_uris: list[str] = field(default_factory=list)


def load_body(text: str) -> dict[str, Any]:
    """The message body as a JSON object, or UnreadableBody."""
    try:
        body = json.loads(text)
    except ValueError:
        raise UnreadableBody("not JSON") from None
    if not isinstance(body, dict):
        raise UnreadableBody("not a JSON object")
    return body


def classify(body: Mapping[str, object]) -> Kind:
    """Which service put the message there, from its shape."""
    if "requestContext" in body and "requestPayload" in body:  # Lambda's on-failure destination record
        return "lambda"
    if body.get("Type") == "Notification" and "TopicArn" in body:  # SNS could not deliver (redrive policy)
        return "sns"
    if "detail-type" in body and "source" in body:  # EventBridge could not deliver
        return "events"
    return "unknown"


def parse(message_id: str, body_text: str) -> DeadLetter:
    """Which inputs a dead-letter message concerns, and why it is there."""
    try:
        body = load_body(body_text)
    except UnreadableBody as exc:
        return DeadLetter(message_id, "unknown", "?", str(exc))
    kind = classify(body)
    if kind == "lambda":
        return _lambda_record(message_id, body)
    if kind == "sns":
        ids, uris = _notification_ids(str(body.get("Message", "")))
        topic = str(body["TopicArn"]).rsplit(":", 1)[-1]
        return DeadLetter(message_id, "sns", topic, "SNS could not deliver the notification", ids, uris)
    if kind == "events":
        try:
            event = result_events.from_envelope(body)
        except ValueError:  # an EventBridge event, but not one of this pipeline's result events
            return DeadLetter(message_id, "unknown", "?", NOT_OURS)
        return DeadLetter(
            message_id,
            "events",
            "results rule",
            "EventBridge could not deliver the result event",
            [event.inference_id] if "inferenceId" in event.detail else [],
            [event.input_location] if event.input_location else [],
        )
    return DeadLetter(message_id, "unknown", "?", NOT_OURS)


def _lambda_record(message_id: str, body: Mapping[str, object]) -> DeadLetter:
    context = _mapping(body.get("requestContext"))
    arn = str(context.get("functionArn", "?"))
    function = arn.split(":")[6] if arn.count(":") >= 6 else arn
    response = _mapping(body.get("responsePayload"))
    reason = f"{context.get('condition', '?')}: {response.get('errorType')}: {response.get('errorMessage')}"
    payload = _mapping(body["requestPayload"])
    records = payload.get("Records")
    first = records[0] if isinstance(records, list) and records else None
    is_sns = isinstance(first, dict) and first.get("EventSource") == "aws:sns"
    ids, uris = _sns_ids(payload) if is_sns else _s3_ids(payload)
    return DeadLetter(message_id, "lambda", function, reason, ids, uris)


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _s3_ids(event: Mapping[str, object]) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    uris: list[str] = []
    for result in s3_events.parse_event(event):
        if result.obj is None:
            continue
        uris.append(result.obj.uri)
        try:
            ids.append(inference_ids.identify(result.obj).inference_id)
        except inference_ids.MissingObjectVersion:
            continue
    return ids, uris


def _sns_ids(event: Mapping[str, object]) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    uris: list[str] = []
    try:
        records = sns_events.records(event)
    except sns_events.MalformedSnsRecord:
        return ids, uris
    for raw in records:
        try:
            record = sns_events.parse_record(raw)
        except sns_events.MalformedSnsRecord:
            continue
        more_ids, more_uris = _notification_ids(record.message)
        ids += more_ids
        uris += more_uris
    return ids, uris


def _notification_ids(message: str) -> tuple[list[str], list[str]]:
    try:
        parsed = notifications.parse_notification(message)
    except notifications.MalformedNotification:
        return [], []
    if isinstance(parsed, notifications.TestNotification):
        return [], []
    return [parsed.inference_id], [parsed.input_location] if parsed.input_location else []

"""Query-protocol calls (form body ``Action=…``) mapped to AWS's checks: SNS and STS from real boto3 clients; SQS and
CloudWatch on the query protocol (the pinned botocore sends them JSON) from form bodies as those protocols define."""

from __future__ import annotations

from dataclasses import replace

import pytest

from asyncinfer.local.iam.checks import Check, HttpRequest, UnmappedRequest
from tests.unit.iam.captured import ACCOUNT, REGION, mapped, sent

TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:results"


def test_sns_publish_checks_the_topic() -> None:
    request = sent("sns", "publish", TopicArn=TOPIC, Message="{}", Subject="done")
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    result = mapped(request)
    assert (result.operation, result.checks) == ("sns:Publish", (Check("sns:Publish", TOPIC),))


def test_sns_publish_to_a_target_arn_and_publish_batch_check_publish() -> None:
    assert mapped(sent("sns", "publish", TargetArn=TOPIC, Message="m")).checks == (Check("sns:Publish", TOPIC),)
    batch = sent("sns", "publish_batch", TopicArn=TOPIC, PublishBatchRequestEntries=[{"Id": "1", "Message": "m"}])
    assert mapped(batch).checks == (Check("sns:Publish", TOPIC),)


def test_sns_publish_without_a_topic_is_refused() -> None:
    with pytest.raises(UnmappedRequest, match="sns:Publish without a TopicArn"):
        mapped(sent("sns", "publish", PhoneNumber="+15555550100", Message="m"))


def test_sns_subscription_operations_check_the_topic() -> None:
    subscribe = mapped(sent("sns", "subscribe", TopicArn=TOPIC, Protocol="sqs", Endpoint="arn:aws:sqs:x:1:q"))
    assert subscribe.checks == (
        Check("sns:Subscribe", TOPIC, {"sns:Protocol": "sqs", "sns:Endpoint": "arn:aws:sqs:x:1:q"}),
    )
    unsubscribe = mapped(sent("sns", "unsubscribe", SubscriptionArn=f"{TOPIC}:0f1e2d3c"))
    assert unsubscribe.checks == (Check("sns:Unsubscribe", TOPIC),)
    assert mapped(sent("sns", "list_topics")).checks == (Check("sns:ListTopics", "*"),)


def test_sts_get_caller_identity_needs_no_permission() -> None:
    result = mapped(sent("sts", "get_caller_identity"))
    assert (result.operation, result.checks) == ("sts:GetCallerIdentity", ())


def test_sts_assume_role_checks_the_role() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    assert mapped(sent("sts", "assume_role", RoleArn=role, RoleSessionName="session")).checks == (
        Check("sts:AssumeRole", role),
    )


def _as_query(template: HttpRequest, body: str) -> HttpRequest:
    headers = {name: value for name, value in template.headers.items() if name != "x-amz-target"}
    headers["content-type"] = "application/x-www-form-urlencoded; charset=utf-8"
    return replace(template, headers=headers, body=body.encode())


def test_sqs_query_protocol_maps_like_json() -> None:
    signed = sent("sqs", "list_queues")  # signed for sqs; its body is replaced by the query form
    url = f"http%3A%2F%2F127.0.0.1%3A4566%2F{ACCOUNT}%2Fq"
    result = mapped(_as_query(signed, f"Action=SendMessage&Version=2012-11-05&QueueUrl={url}&MessageBody=x"))
    assert (result.operation, result.checks) == (
        "sqs:SendMessage",
        (Check("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"),),
    )


def test_cloudwatch_query_protocol_carries_the_namespace_and_alarm_members() -> None:
    signed = sent("cloudwatch", "list_metrics")
    body = "Action=PutMetricData&Version=2010-08-01&Namespace=AsyncInfer%2FLocal&MetricData.member.1.MetricName=m"
    assert mapped(_as_query(signed, body)).checks == (
        Check("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AsyncInfer/Local"}),
    )
    alarms = mapped(_as_query(signed, "Action=DeleteAlarms&AlarmNames.member.1=a"))
    assert alarms.checks == (Check("cloudwatch:DeleteAlarms", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:a"),)


def test_cloudwatch_cbor_put_metric_data_fails_closed() -> None:
    signed = sent("cloudwatch", "list_metrics")
    cbor = replace(
        signed,
        path="/service/GraniteServiceVersion20100801/operation/PutMetricData",
        headers={name: value for name, value in signed.headers.items() if name != "x-amz-target"},
        body=b"\xa0",
    )
    with pytest.raises(UnmappedRequest, match="cloudwatch:PutMetricData without a Namespace"):
        mapped(cbor)
    assert mapped(replace(cbor, path="/service/GraniteServiceVersion20100801/operation/ListMetrics")).checks == (
        Check("cloudwatch:ListMetrics", "*"),
    )


def test_a_body_naming_no_operation_is_refused() -> None:
    signed = sent("sns", "list_topics")
    with pytest.raises(UnmappedRequest, match="names no Action"):
        mapped(replace(signed, body=b"TopicArn=x"))

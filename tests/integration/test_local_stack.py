"""The local stack is built from template.yaml and behaves as AWS does where the pipeline depends on it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from async_pipeline import s3_events

from asyncinfer.local.provision import EMULATED, UNPUBLISHED_ALARM
from asyncinfer.local.stack import RunningStack
from asyncinfer.local.template import Resolver, load_sam, parameter_values, transform
from tests.samples import TEMPLATE
from tests.support import local_stack


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with local_stack(
        tmp_path_factory.mktemp("stack"), parameters={"InputPrefix": "in/"}, retry_delays=(0.2, 0.2)
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    sam = load_sam(TEMPLATE)
    return transform(sam, parameter_values(sam, {"InputPrefix": "in/"}), "us-east-1")


def _messages(running: RunningStack, url: str, wait: float = 10.0) -> list[dict[str, Any]]:
    sqs = running.client("sqs")
    deadline = time.time() + wait
    while time.time() < deadline:
        found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if found:
            return [json.loads(m["Body"]) for m in found]
    return []


def test_every_emulated_resource_of_the_template_exists(running: RunningStack, cfn: dict[str, Any]) -> None:
    assert running.stack is not None
    counts = {kind: sum(1 for r in cfn["Resources"].values() if r["Type"] == kind) for kind in EMULATED}
    s3, sns, sqs = running.client("s3"), running.client("sns"), running.client("sqs")
    internal = [q for q in sqs.list_queues()["QueueUrls"] if "-trigger-" in q]
    assert len(s3.list_buckets()["Buckets"]) >= counts["AWS::S3::Bucket"]
    assert len(sns.list_topics()["Topics"]) == counts["AWS::SNS::Topic"]
    assert len(sqs.list_queues()["QueueUrls"]) - len(internal) == counts["AWS::SQS::Queue"]
    assert len(running.client("dynamodb").list_tables()["TableNames"]) == counts["AWS::DynamoDB::Table"]
    assert len(running.client("sagemaker").list_endpoints()["Endpoints"]) == counts["AWS::SageMaker::Endpoint"]
    outputs = running.stack.outputs
    assert set(outputs) == set(cfn["Outputs"])
    versioning = s3.get_bucket_versioning(Bucket=outputs["InputBucketName"])
    assert versioning["Status"] == "Enabled"
    ttl = running.client("dynamodb").describe_time_to_live(TableName=outputs["JobsTableName"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expiresAt"
    # What is not emulated is said, not hidden: the alarms are evaluated, but the functions' and the queues' metrics
    # are never published locally.
    assert "AWS::CloudWatch::Alarm" not in running.stack.not_emulated
    assert sorted(running.stack.not_emulated[UNPUBLISHED_ALARM]) == [
        "DeadLetterQueueNotEmptyAlarm",
        "ErrorHandlerErrorsAlarm",
        "SubmitterErrorsAlarm",
        "SuccessHandlerErrorsAlarm",
    ]
    assert "AWS::CloudWatch::Dashboard" in running.stack.not_emulated


def test_endpoint_config_is_the_templates(running: RunningStack, cfn: dict[str, Any]) -> None:
    assert running.stack is not None
    sagemaker = running.client("sagemaker")
    name = sagemaker.describe_endpoint(EndpointName=running.stack.outputs["EndpointName"])["EndpointConfigName"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=name)["AsyncInferenceConfig"]
    output = config["OutputConfig"]
    bucket = running.stack.outputs["OutputBucketName"]
    assert output["S3OutputPath"] == f"s3://{bucket}/output/"
    assert output["S3FailurePath"] == f"s3://{bucket}/failure/"
    assert output["NotificationConfig"]["SuccessTopic"] == running.stack.outputs["SuccessTopicArn"]
    assert set(output["NotificationConfig"]["IncludeInferenceResponseIn"]) == {
        "SUCCESS_NOTIFICATION_TOPIC",
        "ERROR_NOTIFICATION_TOPIC",
    }
    assert config["ClientConfig"]["MaxConcurrentInvocationsPerInstance"] == int(
        cfn["Parameters"]["MaxConcurrentInvocationsPerInstance"]["Default"]
    )


def test_subscriptions_carry_the_templates_filter_policy(running: RunningStack, cfn: dict[str, Any]) -> None:
    policies = [
        r["Properties"]["FilterPolicy"] for r in cfn["Resources"].values() if r["Type"] == "AWS::SNS::Subscription"
    ]
    sns = running.client("sns")
    subscriptions = sns.list_subscriptions()["Subscriptions"]
    assert len(subscriptions) == len(policies)
    for subscription in subscriptions:
        attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
        assert json.loads(attributes["FilterPolicy"]) in policies
        assert attributes["FilterPolicyScope"] == "MessageBody"


def test_s3_records_are_complete_and_the_prefix_filter_applies(running: RunningStack) -> None:
    assert running.stack is not None
    s3 = running.client("s3")
    bucket = running.stack.outputs["InputBucketName"]
    s3.put_object(Bucket=bucket, Key="elsewhere/ignored.csv", Body=b"1")  # outside InputPrefix
    put = s3.put_object(Bucket=bucket, Key="in/shape check ü.csv", Body=b"1,2,3,4,5,6")
    deadline = time.time() + 10
    records: list[dict[str, Any]] = []
    while time.time() < deadline and not records:
        records = [
            r
            for e in running.invoker.recent_events()
            for r in e.get("Records", [])
            if "shape" in r.get("s3", {}).get("object", {}).get("key", "")
        ]
        time.sleep(0.1)
    assert records, "the submitter was not invoked"
    record = records[0]
    parsed = s3_events.parse_record(record)
    assert parsed.key == "in/shape check ü.csv"
    assert parsed.version_id == put["VersionId"] and parsed.sequencer
    assert {"userIdentity", "requestParameters", "responseElements"} <= record.keys()
    # moto delivers synchronously on PutObject: had the filter let it through, it would be here by now.
    assert not any("elsewhere" in json.dumps(event) for event in running.invoker.recent_events())


def test_failing_invocations_retry_then_land_in_the_dead_letter_queue(running: RunningStack) -> None:
    assert running.stack is not None
    outputs = running.stack.outputs
    # No eventName: SNS delivers it (exists:false), the handler refuses it with its reason.
    running.client("sns").publish(
        TopicArn=outputs["SuccessTopicArn"], Message=json.dumps({"eventSource": "aws:sagemaker"})
    )
    [record] = _messages(running, outputs["DeadLetterQueueUrl"], wait=30)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith("SuccessHandlerFunction:$LATEST")
    assert record["responsePayload"]["errorType"] == "NotificationFailed"
    assert "unknown eventName None" in record["responsePayload"]["errorMessage"]
    sns_record = record["requestPayload"]["Records"][0]
    assert sns_record["EventSource"] == "aws:sns" and sns_record["Sns"]["TopicArn"] == outputs["SuccessTopicArn"]
    assert "SigningCertUrl" in sns_record["Sns"] and "Subject" in sns_record["Sns"]


def test_endpoint_update_sends_test_notifications_that_reach_no_function(running: RunningStack) -> None:
    assert running.stack is not None
    before = {name: stats.invocations for name, stats in running.invoker.stats.items()}
    running.emulator.update_endpoint(running.stack.outputs["EndpointName"])
    time.sleep(3)
    after = {name: stats.invocations for name, stats in running.invoker.stats.items()}
    assert after["SuccessHandlerFunction"] == before["SuccessHandlerFunction"]
    assert after["ErrorHandlerFunction"] == before["ErrorHandlerFunction"]


def test_template_conditions_resolve_like_cloudformation(cfn: dict[str, Any]) -> None:
    resolver = Resolver(
        cfn,
        parameter_values(load_sam(TEMPLATE), {"IncludeInferenceResponseIn": "none"}),
        {
            "AWS::Region": "us-east-1",
            "AWS::AccountId": "123456789012",
            "AWS::StackName": "s",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    resolver.refs.update({"SuccessTopic": "arn:s", "ErrorTopic": "arn:e", "OutputBucket": "out"})
    config = resolver.resolve(cfn["Resources"]["EndpointConfig"]["Properties"]["AsyncInferenceConfig"])
    assert "IncludeInferenceResponseIn" not in config["OutputConfig"]["NotificationConfig"]
    assert Path(cfn["Resources"]["SubmitterFunction"]["Properties"]["Code"]["S3Key"]) == Path("functions/submitter")

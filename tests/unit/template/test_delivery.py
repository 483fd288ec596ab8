"""How events reach the functions and leave the stack: SNS subscriptions and their filter, Lambda triggers and
on-failure destinations, the dead-letter queue, the results rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.template.support import (
    DLQ_ARN,
    FUNCTIONS,
    TOPIC_OF_HANDLER,
    Resolver,
    as_list,
    function_role,
    of_type,
    role_statements,
    statements_of,
)


# ----------------------------------------------------------------------------------------------------------- SNS
@pytest.mark.parametrize("function", sorted(TOPIC_OF_HANDLER))
def test_subscription_filter_policy_drops_test_notification(resources: dict[str, Any], function: str) -> None:
    subscriptions = [
        r["Properties"]
        for r in of_type({"Resources": resources}, "AWS::SNS::Subscription").values()
        if r["Properties"]["Endpoint"] == {"Fn::GetAtt": [function, "Arn"]}
    ]
    assert len(subscriptions) == 1
    (subscription,) = subscriptions
    assert subscription["Protocol"] == "lambda"
    assert subscription["TopicArn"] == {"Ref": TOPIC_OF_HANDLER[function]}
    assert subscription["FilterPolicyScope"] == "MessageBody"
    policy = subscription["FilterPolicy"]
    assert set(policy) == {"eventName"}
    alternatives = sorted(json.dumps(a, sort_keys=True) for a in policy["eventName"])
    assert alternatives == sorted(
        json.dumps(a, sort_keys=True) for a in ({"anything-but": ["TestNotification"]}, {"exists": False})
    )


def test_filter_policy_delivers_everything_but_test_notification(resources: dict[str, Any]) -> None:
    """Runs the transformed filter policies through moto's SNS (what the local stack uses): validity and effect."""
    import boto3
    from moto import mock_aws

    messages = {
        "TestNotification": {"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "TestNotification"},
        "InferenceResult": {"eventSource": "aws:sagemaker", "eventName": "InferenceResult", "inferenceId": "a"},
        "unexpected": {"eventSource": "aws:sagemaker", "eventName": "SomethingNew", "inferenceId": "b"},
        "no-eventName": {"eventSource": "aws:sagemaker", "inferenceId": "c"},
    }
    for subscription in of_type({"Resources": resources}, "AWS::SNS::Subscription").values():
        properties = subscription["Properties"]
        with mock_aws():
            sns = boto3.client("sns", region_name="us-east-1")
            sqs = boto3.client("sqs", region_name="us-east-1")
            topic = sns.create_topic(Name="topic")["TopicArn"]
            queue = sqs.create_queue(QueueName="queue")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(
                TopicArn=topic,
                Protocol="sqs",
                Endpoint=queue_arn,
                Attributes={
                    "RawMessageDelivery": "true",
                    "FilterPolicyScope": properties["FilterPolicyScope"],
                    "FilterPolicy": json.dumps(properties["FilterPolicy"]),
                },
            )
            for message in messages.values():
                sns.publish(TopicArn=topic, Message=json.dumps(message))
            # A body filter assumes a JSON object (SNS developer guide): anything else matches nothing and is
            # dropped, with no dead letter (README, Operations). SageMaker's notifications are JSON.
            sns.publish(TopicArn=topic, Message="InferenceResult a, not JSON")
            received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
            delivered = {json.loads(m["Body"]).get("inferenceId") for m in received}
        assert delivered == {"a", "b", "c"}, "only TestNotification (and a body that is not JSON) is filtered out"


def test_every_subscription_redrives_to_the_dead_letter_queue(resources: dict[str, Any]) -> None:
    subscriptions = of_type({"Resources": resources}, "AWS::SNS::Subscription")
    assert len(subscriptions) == 2
    for name, subscription in subscriptions.items():
        assert subscription["Properties"]["RedrivePolicy"] == {"deadLetterTargetArn": DLQ_ARN}, name


def test_dead_letter_queue_admits_only_this_stacks_senders(resources: dict[str, Any]) -> None:
    (policy,) = [
        r["Properties"]
        for r in of_type({"Resources": resources}, "AWS::SQS::QueuePolicy").values()
        if r["Properties"]["Queues"] == [{"Ref": "DeadLetterQueue"}]
    ]
    allows = {s["Principal"]["Service"]: s for s in statements_of(policy["PolicyDocument"]) if s["Effect"] == "Allow"}
    assert set(allows) == {"sns.amazonaws.com", "events.amazonaws.com"}
    for statement in allows.values():
        assert statement["Action"] == "sqs:SendMessage"
        assert statement["Resource"] == DLQ_ARN
    sns_sources = allows["sns.amazonaws.com"]["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(sns_sources, key=json.dumps) == [{"Ref": "ErrorTopic"}, {"Ref": "SuccessTopic"}]
    assert allows["events.amazonaws.com"]["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["ResultsRule", "Arn"]
    }


# ----------------------------------------------------------------------------------------------------------- Lambda
def test_every_function_has_an_on_failure_destination(resources: dict[str, Any]) -> None:
    configs = {
        r["Properties"]["FunctionName"]["Ref"]: r["Properties"]
        for r in of_type({"Resources": resources}, "AWS::Lambda::EventInvokeConfig").values()
    }
    assert set(configs) == set(FUNCTIONS)
    for function, config in configs.items():
        assert config["Qualifier"] == "$LATEST"
        assert config["MaximumRetryAttempts"] == 2
        assert 60 <= config["MaximumEventAgeInSeconds"] <= 21600
        assert config["DestinationConfig"]["OnFailure"]["Destination"] == DLQ_ARN, function
        # Lambda sends to the destination with the function's role.
        sends = [
            s
            for s in role_statements({"Resources": resources}, function_role({"Resources": resources}, function))
            if "sqs:SendMessage" in as_list(s["Action"])
        ]
        assert [s["Resource"] for s in sends] == [DLQ_ARN], function


def test_input_bucket_triggers_the_submitter_and_nothing_else_does(resources: dict[str, Any]) -> None:
    buckets = of_type({"Resources": resources}, "AWS::S3::Bucket")
    assert set(buckets) == {"InputBucket", "OutputBucket"}
    assert "NotificationConfiguration" not in buckets["OutputBucket"]["Properties"]
    notifications = buckets["InputBucket"]["Properties"]["NotificationConfiguration"]
    assert set(notifications) == {"LambdaConfigurations"}
    (configuration,) = notifications["LambdaConfigurations"]
    assert configuration["Function"] == {"Fn::GetAtt": ["SubmitterFunction", "Arn"]}
    assert configuration["Event"] == "s3:ObjectCreated:*"
    # Who may invoke which function.
    principals = {
        (p["Properties"]["FunctionName"]["Ref"], p["Properties"]["Principal"])
        for p in of_type({"Resources": resources}, "AWS::Lambda::Permission").values()
    }
    assert principals == {
        ("SubmitterFunction", "s3.amazonaws.com"),
        ("SuccessHandlerFunction", "sns.amazonaws.com"),
        ("ErrorHandlerFunction", "sns.amazonaws.com"),
    }


@pytest.mark.parametrize(
    ("prefix", "suffix", "rules"),
    [
        ("", "", None),
        ("incoming/", "", [{"Name": "prefix", "Value": "incoming/"}]),
        ("", ".csv", [{"Name": "suffix", "Value": ".csv"}]),
        ("incoming/", ".csv", [{"Name": "prefix", "Value": "incoming/"}, {"Name": "suffix", "Value": ".csv"}]),
    ],
)
def test_input_filter_follows_prefix_and_suffix(
    raw: dict[str, Any], resources: dict[str, Any], prefix: str, suffix: str, rules: list[dict[str, str]] | None
) -> None:
    resolver = Resolver(raw, InputPrefix=prefix, InputSuffix=suffix)
    (configuration,) = resolver.resolve(resources["InputBucket"]["Properties"]["NotificationConfiguration"])[
        "LambdaConfigurations"
    ]
    assert configuration.get("Filter") == (None if rules is None else {"S3Key": {"Rules": rules}})
    # The submitter may read exactly the objects that can trigger an inference; SageMaker none of the input bucket
    # (it reads only the staged copies, or gets the payload inline).
    for role, expected in (("SubmitterFunctionRole", [f"<InputBucket.Arn>/{prefix}*"]), ("SageMakerExecutionRole", [])):
        reads = [
            s
            for s in resolver.resolve(role_statements({"Resources": resources}, role))
            if "s3:GetObject" in as_list(s["Action"]) and "InputBucket" in json.dumps(s["Resource"])
        ]
        assert [r["Resource"] for r in reads] == expected, role


# ----------------------------------------------------------------------------------------------------------- results
def test_results_rule_forwards_every_result_event_to_the_queue(resources: dict[str, Any]) -> None:
    from async_pipeline.result_events import SOURCE

    rule = resources["ResultsRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "ResultsBus"}
    assert rule["EventPattern"] == {"source": [SOURCE]}
    assert rule.get("State", "ENABLED") == "ENABLED"
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["ResultsQueue", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": DLQ_ARN}
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in of_type({"Resources": resources}, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": "ResultsQueue"}]
    ]
    (allow,) = [s for s in statements_of(policy) if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ResultsRule", "Arn"]}}}

"""``asyncinfer status`` on a deployed stack: the same code as locally, here against moto's AWS APIs (mock_aws, with
the local stack's moto patches for what moto lacks), through a Target with no endpoint URL, as for ``--stack-name``."""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from asyncinfer import endpoint_status
from asyncinfer.local import moto_patches
from asyncinfer.local.template import load_sam
from asyncinfer.target import Target
from tests.support import ROOT

REGION = "us-east-1"
STACK = "deployed"
TABLE = "deployed-JobsTable-ABC"
RESOURCE = f"endpoint/{STACK}/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


@pytest.fixture
def aws() -> Iterator[Target]:
    moto_patches.apply()
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_model(
            ModelName="m", PrimaryContainer={"Image": "img"}, ExecutionRoleArn="arn:aws:iam::123456789012:role/r"
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName="c",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName=STACK, EndpointConfigName="c")
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "inferenceId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "inferenceId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for index, state in enumerate(["SUBMITTED", "SUBMITTED", "SUBMITTED", "COMPLETED", "FAILED"]):
            dynamodb.put_item(TableName=TABLE, Item={"inferenceId": {"S": f"id{index}"}, "status": {"S": state}})
        outputs = {"EndpointName": STACK, "JobsTableName": TABLE}
        yield Target(name=STACK, region=REGION, outputs=outputs)


def test_scaling_out_from_zero_as_the_aws_apis_say(aws: Target) -> None:
    now = time.time()
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    scaling.register_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=RESOURCE, ScalableDimension=DIMENSION, MinCapacity=0, MaxCapacity=2
    )
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    # The variant went to zero; then Application Auto Scaling asked for one instance a minute ago.
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=STACK,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 0, "DesiredWeight": 1.0}],
    )
    moto_patches.record_emulated(
        {"kind": "instance_count", "region": REGION, "endpoint": STACK, "variant": "AllTraffic", "count": 0}
    )
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=STACK,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 1, "DesiredWeight": 1.0}],
    )
    activity = {
        "ActivityId": "a1",
        "ServiceNamespace": "sagemaker",
        "ResourceId": RESOURCE,
        "ScalableDimension": DIMENSION,
        "Description": "Setting desired instance count to 1.",
        "Cause": "monitor alarm deployed-HasBacklogWithoutCapacityAlarm-X in state ALARM triggered policy p",
        "StartTime": now - 60,
        "StatusCode": "InProgress",
        "StatusMessage": "Waiting for change to be fulfilled by sagemaker.",
    }
    moto_patches.record_emulated({"kind": "scaling_activity", "region": REGION, "activity": activity})
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    stamp = datetime.fromtimestamp(now - 60, UTC)
    dimensions = [{"Name": "EndpointName", "Value": STACK}]
    cloudwatch.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {"MetricName": "ApproximateBacklogSize", "Dimensions": dimensions, "Timestamp": stamp, "Value": 3.0},
            {"MetricName": "ApproximateAgeOfOldestRequest", "Dimensions": dimensions, "Timestamp": stamp, "Value": 150},
            {"MetricName": "HasBacklogWithoutCapacity", "Dimensions": dimensions, "Timestamp": stamp, "Value": 1.0},
        ],
    )
    low = f"TargetTracking-{RESOURCE}-AlarmLow-1234"
    high = f"TargetTracking-{RESOURCE}-AlarmHigh-1234"
    others = ("other-stack-Alarm", "deployed-dev-HasBacklogWithoutCapacityAlarm-Y", "TargetTracking-endpoint/x/v/a")
    for name in ("deployed-HasBacklogWithoutCapacityAlarm-X", low, high, *others):
        cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace="AWS/SageMaker", MetricName="HasBacklogWithoutCapacity", Statistic="Average",
            Period=60, EvaluationPeriods=2, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
        )  # fmt: skip
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="Threshold Crossed")
    # One of this stack's alarms back to OK: not listed (moto ignores StateValue next to AlarmNamePrefix; AWS does not).
    cloudwatch.put_metric_alarm(
        AlarmName="deployed-DeadLetterQueueNotEmptyAlarm-Z", Namespace="AWS/SQS", MetricName="M", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName="deployed-DeadLetterQueueNotEmptyAlarm-Z", StateValue="OK", StateReason="ok")

    found = endpoint_status.gather(aws)

    assert (found.status, found.current_instances, found.desired_instances) == ("Updating", 0, 1)
    assert (found.min_instances, found.max_instances) == (0, 2)
    assert (found.backlog, found.oldest_request_age_seconds, found.backlog_without_capacity) == (3.0, 150.0, True)
    assert found.activity is not None
    assert found.activity.status == "InProgress"
    # Only this stack's, and not target tracking's low alarm (in ALARM whenever the endpoint idles at its minimum).
    # A stack named deployed-dev shares the name prefix: its alarms are not this stack's.
    assert sorted(found.alarms) == [
        "TargetTracking-" + RESOURCE + "-AlarmHigh-1234",
        "deployed-HasBacklogWithoutCapacityAlarm-X",
    ]
    quick = endpoint_status.gather(aws, jobs=False, alarms=False)  # watch's line: no Scan, no DescribeAlarms
    assert (quick.jobs, quick.alarms, quick.backlog) == ({}, {}, 3.0)
    assert found.jobs == {"SUBMITTED": 3, "COMPLETED": 1, "FAILED": 1}
    assert found.first_instance_in is not None
    assert 230 < found.first_instance_in <= 240  # AWS's typical start-up (300 s) less the minute already past
    said = endpoint_status.lines(found)
    assert said[0] == (
        "endpoint deployed Updating: 0 instance(s), 1 desired (min 0, max 2); backlog 3, oldest request 2 min; "
        "scaling out from zero, first instance expected in about 4 min"
    )
    assert "ALARM deployed-HasBacklogWithoutCapacityAlarm-X: Threshold Crossed" in said
    assert said[-1] == "jobs: 1 COMPLETED, 1 FAILED, 3 SUBMITTED"
    assert found.to_json()["firstInstanceExpectedInSeconds"] == found.first_instance_in


def test_without_autoscaling_a_backlog_at_zero_says_nothing_will_start_an_instance() -> None:
    found = endpoint_status.EndpointStatus(
        endpoint="ep", status="InService", now=0.0, current_instances=0, desired_instances=0, backlog=4.0
    )
    assert found.first_instance_in is None
    assert "autoscaling is off, nothing will start one" in "\n".join(endpoint_status.lines(found))
    assert endpoint_status.lines(found)[-1] == "jobs: none"


def test_the_stacks_alarms_are_named_as_the_status_filter_expects() -> None:
    """endpoint_status tells this stack's alarms from those of a stack whose name extends it by their logical ids,
    which all end in "Alarm", CloudFormation naming them (no AlarmName)."""
    resources = load_sam(ROOT / "template.yaml")["Resources"]
    alarms = {k: v for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms
    for logical, resource in alarms.items():
        assert logical.endswith("Alarm") and logical.isalnum()
        assert "AlarmName" not in resource.get("Properties", {})


def test_a_time_scale_is_said_with_what_it_does_not_scale() -> None:
    found = endpoint_status.EndpointStatus(
        endpoint="ep", status="InService", now=0.0, current_instances=1, desired_instances=1, time_scale=60.0
    )
    said = "\n".join(endpoint_status.lines(found))
    assert "time scale 60" in said and "RequestTTLSeconds" in said
    assert "time scale" not in "\n".join(endpoint_status.lines(dataclasses.replace(found, time_scale=1.0)))


def test_status_follow_reads_jobs_and_alarms_less_often(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bool, bool]] = []

    def gather(target: Target, *, jobs: bool = True, alarms: bool = True) -> endpoint_status.EndpointStatus:
        calls.append((jobs, alarms))
        return endpoint_status.EndpointStatus(
            endpoint="ep", status="InService", now=0.0, current_instances=1, desired_instances=1,
            jobs={"SUBMITTED": len(calls)} if jobs else {}, alarms={"a": "r"} if alarms else {},
        )  # fmt: skip

    monkeypatch.setattr(endpoint_status, "gather", gather)
    now = [0.0]
    status_cli = importlib.import_module("asyncinfer.cli.status")  # the package exports the command by that name
    follow = status_cli._Follower(Target(name=STACK, region=REGION, outputs={}), clock=lambda: now[0])
    seen = []
    for at in (0.0, 2.0, 29.0, 31.0):
        now[0] = at
        seen.append(follow())
    assert calls == [(True, True), (False, False), (False, False), (True, True)]
    assert [s.jobs for s in seen] == [{"SUBMITTED": 1}, {"SUBMITTED": 1}, {"SUBMITTED": 1}, {"SUBMITTED": 4}]
    assert all(s.alarms == {"a": "r"} for s in seen)

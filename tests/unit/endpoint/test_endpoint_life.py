"""The endpoint's life: the template's scaling, driven minute by minute on a fake clock, against the package's moto, in
process (the template provisioned as the local stack does it) and the endpoint emulator with a fake model container.

Each test advances emulated minutes by calling ``EndpointLife.minute`` itself: no sleeping through real minutes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from asyncinfer.local import moto_patches
from asyncinfer.local.endpoint.emulator import AsyncEndpointEmulator
from asyncinfer.local.endpoint.events import EmulatorEvent, EventKind, Published
from asyncinfer.local.endpoint.hooks import BaseEndpointHooks
from asyncinfer.local.endpoint.settings import ControlPlane
from asyncinfer.local.endpoint_life import EndpointLife, LifeClients, LifeOptions
from asyncinfer.local.physical_ids import ACCOUNT
from asyncinfer.local.provision import Provisioner
from asyncinfer.local.template import load_sam
from asyncinfer.local.time_scale import ScaledClock
from tests.support import ROOT
from tests.unit.endpoint.world import FakeContainer, runtime

REGION = "us-east-1"
START = 1_800_000_000.0  # a minute boundary


class Now:
    """The fake time both the emulator and the loop read (seconds since the epoch)."""

    def __init__(self) -> None:
        self.value = START

    def __call__(self) -> float:
        return self.value


@pytest.fixture(autouse=True)
def patched_moto() -> None:
    moto_patches.apply()  # the local stack's moto: desired and current counts, scaling activities (idempotent)


@dataclass
class Stack:
    name: str
    now: Now
    emulator: AsyncEndpointEmulator
    life: EndpointLife
    session: boto3.Session
    moto_url: str

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.moto_url, region_name=REGION)  # type: ignore[call-overload]

    def minutes(self, count: int) -> None:
        for _ in range(count):
            self.now.value += 60
            self.life.minute(self.now.value)
            if self.emulator.stats(self.name)["instances"]:
                self.emulator.wait_until_idle(self.name, 2.0)  # what the running instances can do, done

    def variant(self) -> dict[str, Any]:
        described = self.client("sagemaker").describe_endpoint(EndpointName=self.name)
        return dict(described["ProductionVariants"][0])

    def submit(self, count: int) -> None:
        client = runtime(self.emulator.url)
        for _ in range(count):
            client.invoke_endpoint_async(EndpointName=self.name, Body=b"1.5,16.0", ContentType="text/csv")


def make_stack(name: str, moto_url: str, container: FakeContainer, **parameters: str) -> Stack:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    Provisioner(session, moto_url, ROOT, name, REGION).provision(load_sam(ROOT / "template.yaml"), parameters)
    now = Now()
    emulator = AsyncEndpointEmulator(moto_url, REGION, container.url, clock=now, session=session)
    emulator.start()
    emulator.register_endpoint(name)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=moto_url, region_name=REGION)  # type: ignore[call-overload]

    clients = LifeClients(client("cloudwatch"), client("application-autoscaling"), client("sagemaker"), client("sns"))
    life = EndpointLife(
        emulator,
        clients,
        [name],
        region=REGION,
        account=ACCOUNT,
        recorder=moto_patches.record_emulated,  # moto runs in this process: no HTTP hop needed
        options=LifeOptions(instance_start_seconds=120, instance_stop_seconds=30),
        clock=ScaledClock(1.0, real=now, anchor=START),
    )
    life.start_without_thread()
    return Stack(name, now, emulator, life, session, moto_url)


@pytest.fixture
def stack(moto_url: str, container: FakeContainer, request: pytest.FixtureRequest) -> Iterator[Stack]:
    container.reset()
    made = make_stack(f"life-{request.node.name[5:30].replace('_', '-')}", moto_url, container)
    yield made
    made.emulator.stop(grace_seconds=0.5)


def alarm_states(stack: Stack, prefix: str = "") -> dict[str, str]:
    alarms = stack.client("cloudwatch").describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    return {a["AlarmName"]: a["StateValue"] for a in alarms}


def test_idle_scales_in_to_zero_then_a_burst_wakes_it_to_max_and_back(stack: Stack) -> None:
    assert (stack.variant()["CurrentInstanceCount"], stack.emulator.stats(stack.name)["instances"]) == (1, 1)
    # Idle: target tracking's low alarm needs 15 of 15 minutes under 90 % of the target, then scale-in to 0.
    stack.minutes(14)
    assert stack.variant()["DesiredInstanceCount"] == 1
    stack.minutes(2)
    assert stack.variant()["DesiredInstanceCount"] == 0
    assert stack.emulator.stats(stack.name)["instances"] == 0
    assert stack.variant()["CurrentInstanceCount"] == 0

    stack.submit(12)
    seen: set[int] = set()
    for _ in range(8):
        stack.minutes(1)
        seen.add(stack.variant()["CurrentInstanceCount"])
    # HasBacklogWithoutCapacity (2 of 2) added one, target tracking (12 per instance > 5, 3 of 3) went to Max.
    assert max(seen) == 2
    stats = stack.emulator.stats(stack.name)
    assert (stats["completed"], stats["backlog"]) == (12, 0)
    listed = stack.client("cloudwatch").list_metrics(Namespace="AWS/SageMaker")["Metrics"]
    mine = {m["MetricName"] for m in listed if {"Name": "EndpointName", "Value": stack.name} in m["Dimensions"]}
    assert mine == {
        "ApproximateBacklogSize",
        "ApproximateBacklogSizePerInstance",
        "ApproximateAgeOfOldestRequest",
        "HasBacklogWithoutCapacity",
        "InvocationsProcessed",
        "TotalProcessingTime",
        "ModelLatency",
    }  # never Invocations nor InvocationsPerInstance
    activities = stack.client("application-autoscaling").describe_scaling_activities(ServiceNamespace="sagemaker")
    causes = [a["Cause"] for a in activities["ScalingActivities"]]
    assert any("HasBacklogWithoutCapacity" in c for c in causes)
    assert any("AlarmHigh" in c for c in causes)
    assert any("AlarmLow" in c for c in causes)

    # Idle again: back to zero after the low alarm's 15 minutes (and the scale-in cooldown).
    stack.minutes(17)
    assert (stack.variant()["DesiredInstanceCount"], stack.variant()["CurrentInstanceCount"]) == (0, 0)
    describe = stack.client("sagemaker").describe_endpoint(EndpointName=stack.name)
    assert describe["EndpointStatus"] == "InService"


def test_a_policy_on_invocations_per_instance_never_scales(stack: Stack) -> None:
    """The classic mistake: asynchronous endpoints publish no InvocationsPerInstance, so its alarms never fire."""
    scaling = stack.client("application-autoscaling")
    resource = f"endpoint/{stack.name}/variant/AllTraffic"
    for policy in scaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)[
        "ScalingPolicies"
    ]:
        scaling.delete_scaling_policy(
            PolicyName=policy["PolicyName"], ServiceNamespace="sagemaker", ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        )  # fmt: skip
    scaling.put_scaling_policy(
        PolicyName="invocations",
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 1.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        },
    )
    stack.client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName=stack.name,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 0, "DesiredWeight": 1.0}],
    )
    stack.minutes(1)
    assert stack.emulator.stats(stack.name)["instances"] == 0
    stack.submit(5)
    stack.minutes(6)
    assert stack.variant()["DesiredInstanceCount"] == 0
    assert stack.emulator.stats(stack.name)["backlog"] == 5
    tracking = alarm_states(stack, f"TargetTracking-{resource}-")
    assert len(tracking) == 2
    assert set(tracking.values()) == {"INSUFFICIENT_DATA"}


def test_an_alarm_tells_its_topic_when_its_state_changes(moto_url: str, container: FakeContainer) -> None:
    container.reset()
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    sns = session.client("sns", endpoint_url=moto_url)
    sqs = session.client("sqs", endpoint_url=moto_url)
    topic = sns.create_topic(Name="life-alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="life-alarms")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    stack = make_stack("life-alarm-topic", moto_url, container, AlarmTopicArn=topic)
    try:
        runtime(stack.emulator.url).invoke_endpoint_async(
            EndpointName=stack.name, Body=b"x", ContentType="application/x-fail500"
        )
        stack.emulator.wait_until_idle(stack.name, 5)
        stack.minutes(1)
        name = f"{stack.name}-EndpointInvocationFailuresAlarm"
        assert alarm_states(stack, name) == {name: "ALARM"}
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        bodies = [json.loads(m["Body"]) for m in messages]
        assert [(b["AlarmName"], b["OldStateValue"], b["NewStateValue"]) for b in bodies] == [
            (name, "INSUFFICIENT_DATA", "ALARM")
        ]
        assert bodies[0]["Trigger"]["MetricName"] == "InvocationFailures"
    finally:
        stack.emulator.stop(grace_seconds=0.5)


def test_a_capacity_change_is_not_mistaken_for_an_endpoint_update(stack: Stack) -> None:
    """Both leave the endpoint Updating; only UpdateEndpoint has a new config for the update watcher to start."""
    sagemaker = stack.client("sagemaker")
    control_plane = ControlPlane(sagemaker, stack.client("sts"))
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=stack.name,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 2, "DesiredWeight": 1.0}],
    )
    assert control_plane.status(stack.name)[0] == "Updating"
    assert not control_plane.update_in_progress(stack.name)
    stack.minutes(3)  # the second instance started: in service again
    config = control_plane.status(stack.name)
    assert config[0] == "InService"
    sagemaker.update_endpoint(EndpointName=stack.name, EndpointConfigName=config[1], RetainAllVariantProperties=True)
    assert control_plane.update_in_progress(stack.name)


class RefusingSageMaker:
    """SageMaker that refuses the next ``refusals`` UpdateEndpointWeightsAndCapacities as AWS does an endpoint whose
    update is in progress; everything else goes to moto."""

    def __init__(self, client: Any, refusals: int) -> None:
        self._client, self.refusals = client, refusals

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_endpoint_weights_and_capacities(self, **params: Any) -> Any:
        if self.refusals:
            self.refusals -= 1
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "Cannot update in-progress endpoint"}},
                "UpdateEndpointWeightsAndCapacities",
            )
        return self._client.update_endpoint_weights_and_capacities(**params)


def test_a_refused_capacity_change_is_a_failed_activity_and_retried_the_next_minute(stack: Stack) -> None:
    sagemaker = stack.client("sagemaker")
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=stack.name,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 0, "DesiredWeight": 1.0}],
    )
    stack.minutes(1)
    refusing = RefusingSageMaker(stack.life._clients.sagemaker, refusals=1)
    stack.life._clients = dataclasses.replace(stack.life._clients, sagemaker=refusing)
    stack.submit(1)
    desired = []
    for _ in range(4):
        stack.minutes(1)
        desired.append(stack.variant()["DesiredInstanceCount"])
    # HasBacklogWithoutCapacity is in ALARM after 2 minutes: refused at the 2nd, accepted at the 3rd (no cooldown).
    assert refusing.refusals == 0
    assert desired[:3] == [0, 0, 1]
    activities = stack.client("application-autoscaling").describe_scaling_activities(
        ServiceNamespace="sagemaker", ResourceId=f"endpoint/{stack.name}/variant/AllTraffic"
    )
    failed = [a for a in activities["ScalingActivities"] if a["StatusCode"] == "Failed"]
    assert len(failed) == 1
    assert "Cannot update in-progress endpoint" in failed[0]["StatusMessage"]
    assert "HasBacklogWithoutCapacity" in failed[0]["Cause"]


class RecordingCloudWatch:
    def __init__(self, stamps: list[float]) -> None:
        self.stamps, self.calls = stamps, []  # type: list[float], list[dict[str, Any]]

    def get_metric_data(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        stamps = [datetime.fromtimestamp(s, UTC) for s in self.stamps]
        return {"MetricDataResults": [{"Id": "q0", "Timestamps": stamps, "Values": [1.0] * len(stamps)}]}


def test_alarm_values_cover_the_evaluation_range_not_only_the_evaluation_periods() -> None:
    from asyncinfer.local import alarms

    definition = alarms.AlarmDefinition.from_api(
        {
            "AlarmName": "a", "Namespace": "AWS/SageMaker", "MetricName": "HasBacklogWithoutCapacity",
            "Statistic": "Average", "Period": 60, "EvaluationPeriods": 2, "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        }
    )  # fmt: skip
    cloudwatch = RecordingCloudWatch([START - 240, START - 60])  # 4 and 1 periods ago
    life = EndpointLife.__new__(EndpointLife)  # only the GetMetricData call is under test
    life._clients = LifeClients(cloudwatch, None, None, None)  # type: ignore[arg-type]
    assert life._values([definition], START) == [[1.0, None, None, 1.0]]
    assert cloudwatch.calls[0]["StartTime"] == datetime.fromtimestamp(START - 240, UTC)


def test_a_fault_episode_without_instances_is_held_and_published(stack: Stack) -> None:
    """ttl-expiry (faults/endpoint.py) sets the emulator to zero instances for a few seconds and restores the count:
    the minute must not undo it, and the metrics say what the emulator served with."""
    stack.minutes(1)
    stack.emulator.set_instance_count(stack.name, 0)  # the episode starts
    stack.submit(1)
    stack.minutes(1)
    assert stack.emulator.stats(stack.name)["instances"] == 0
    assert stack.variant()["CurrentInstanceCount"] == 1  # SageMaker's own count is the fleet's
    stamp = datetime.fromtimestamp(stack.now.value - 60, UTC)
    datapoints = stack.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="HasBacklogWithoutCapacity",
        Dimensions=[{"Name": "EndpointName", "Value": stack.name}],
        StartTime=stamp,
        EndTime=datetime.fromtimestamp(stack.now.value, UTC),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [d["Maximum"] for d in datapoints] == [1.0]
    stack.emulator.set_instance_count(stack.name, 1)  # the episode ends
    stack.minutes(1)
    assert stack.emulator.stats(stack.name)["instances"] == 1
    assert stack.emulator.stats(stack.name)["backlog"] == 0


class SeenTestNotifications(BaseEndpointHooks):
    def __init__(self) -> None:
        self.topics: list[str] = []

    def on_event(self, event: EmulatorEvent) -> None:
        detail = event.detail
        published = event.kind is EventKind.PUBLISHED and isinstance(detail, Published)
        if published and detail.message.get("eventName") == "TestNotification":  # type: ignore[union-attr]
            self.topics.append(detail.topic)  # type: ignore[union-attr]


def test_suspended_scale_out_is_honoured_and_each_capacity_change_sends_a_test_notification(stack: Stack) -> None:
    notifications = SeenTestNotifications()
    stack.emulator.add_hooks(notifications)
    scaling = stack.client("application-autoscaling")
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{stack.name}/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    scaling.register_scalable_target(**target, SuspendedState={"DynamicScalingOutSuspended": True})
    stack.client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName=stack.name,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 0, "DesiredWeight": 1.0}],
    )
    stack.minutes(1)
    topics = set(notifications.topics)
    assert len(topics) == 2  # the success and error topics, once each, for the change someone else made
    assert len(notifications.topics) == 2
    stack.submit(1)
    stack.minutes(4)  # HasBacklogWithoutCapacity in ALARM, its policy invoked, but scale-out is suspended
    assert stack.variant()["DesiredInstanceCount"] == 0
    scaling.register_scalable_target(**target, SuspendedState={"DynamicScalingOutSuspended": False})
    stack.minutes(1)
    assert stack.variant()["DesiredInstanceCount"] == 1
    assert len(notifications.topics) == 4 and set(notifications.topics) == topics  # the autoscaler's change

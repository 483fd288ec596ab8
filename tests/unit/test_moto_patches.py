"""The patches that remove moto's per-request costs change no result: events still match and carry their own
content, messages still expire at their retention period, every service the stack uses still routes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import jsonpath_ng.ext
import pytest
from moto import mock_aws
from moto.backend_index import backend_url_patterns
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from asyncinfer.local import moto_patches

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


@pytest.fixture(autouse=True)
def patched() -> Iterator[None]:
    moto_patches.apply()
    with mock_aws():
        yield


def test_each_event_delivered_through_a_rule_keeps_its_own_detail() -> None:
    events, sqs = boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="results")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.create_event_bus(Name="bus")
    events.put_rule(Name="r", EventBusName="bus", EventPattern=json.dumps({"source": ["pipeline"]}))
    events.put_targets(Rule="r", EventBusName="bus", Targets=[{"Id": "q", "Arn": arn}])
    parse = jsonpath_ng.ext.parse
    hits_before = parse.cache_info().hits  # type: ignore[attr-defined]
    for i in range(3):
        entry = {"EventBusName": "bus", "Source": "pipeline", "DetailType": f"t{i}", "Detail": json.dumps({"n": i})}
        events.put_events(Entries=[entry, {**entry, "Source": "other"}])
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert sorted((b["detail"]["n"], b["detail-type"], b["source"]) for b in bodies) == [
        (0, "t0", "pipeline"),
        (1, "t1", "pipeline"),
        (2, "t2", "pipeline"),
    ]
    assert parse.cache_info().hits > hits_before  # type: ignore[attr-defined]  # the paths were parsed once


@pytest.mark.parametrize(("waited", "received"), [(50, True), (70, False)])
def test_a_message_is_received_only_within_its_retention_period(
    monkeypatch: pytest.MonkeyPatch, waited: float, received: bool
) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    from moto.core import utils

    now = time.time()
    monkeypatch.setattr(utils, "unix_time", lambda *_: now + waited)
    messages = sqs.receive_message(QueueUrl=url).get("Messages", [])
    assert [m["Body"] for m in messages] == (["hello"] if received else [])


STACK_SERVICES = ("s3", "sns", "sqs", "events", "sts", "lambda", "logs", "cloudformation", "monitoring")


@pytest.mark.parametrize(
    "host",
    [
        *(f"{service}.{REGION}.amazonaws.com" for service in (*STACK_SERVICES, "application-autoscaling")),
        f"api.sagemaker.{REGION}.amazonaws.com",  # the host moto's dispatcher infers for the control plane
        "iam.amazonaws.com",
    ],
)
def test_every_service_of_the_stack_routes_as_before(host: str) -> None:
    expected = next((name for name, pattern in backend_url_patterns if pattern.match(f"http://{host}")), None)
    assert expected is not None
    dispatcher = DomainDispatcherApplication(create_backend_app)
    assert dispatcher.get_backend_for_host(host) == expected
    assert dispatcher.get_backend_for_host(host) == expected  # the second answer comes from the memo
    assert dispatcher.get_backend_for_host("nothing.example.com") is None


def test_a_bare_module_name_is_still_a_backend() -> None:
    dispatcher = DomainDispatcherApplication(create_backend_app)
    assert [dispatcher.get_backend_for_host(name) for name in ("s3", "sqs", "moto_api")] == ["s3", "sqs", "moto_api"]
    assert dispatcher.get_backend_for_host(None) is None


def test_a_cached_update_expression_is_resolved_against_each_item_anew() -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="t", Item={"id": {"S": "kept"}, "where": {"S": "s3://in/first"}, "n": {"N": "1"}})
    expression = "SET #w = if_not_exists(#w, :where), n = if_not_exists(n, :zero) + :one"
    results = [
        ddb.update_item(
            TableName="t",
            Key={"id": {"S": key}},
            UpdateExpression=expression,
            ExpressionAttributeNames={"#w": "where"},
            ExpressionAttributeValues={":where": {"S": where}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        for key, where in (("kept", "s3://in/second"), ("new", "s3://in/third"), ("kept", "s3://in/fourth"))
    ]
    assert [(r["id"]["S"], r["where"]["S"], r["n"]["N"]) for r in results] == [
        ("kept", "s3://in/first", "2"),
        ("new", "s3://in/third", "1"),
        ("kept", "s3://in/first", "3"),
    ]
    for _ in range(2):  # a malformed expression is refused every time, not cached
        with pytest.raises(ddb.exceptions.ClientError, match="Invalid UpdateExpression"):
            ddb.update_item(TableName="t", Key={"id": {"S": "kept"}}, UpdateExpression="SET = :x")


def _shape(node: object) -> object:
    if not hasattr(node, "children"):
        return repr(node)  # a leaf's value: a string or a number
    children = node.children
    if not isinstance(children, list):
        return (type(node).__name__, repr(children))
    for child in children:
        if hasattr(child, "children"):
            assert getattr(child, "parent", None) is node  # every parent pointer stays inside its own tree
    return (type(node).__name__, [_shape(child) for child in children])


@pytest.mark.parametrize(
    "expression",
    [
        "SET #s = :status, eventPending = :true, a.b[2] = if_not_exists(a.b[2], :zero) + :one REMOVE leaseExpiresAt",
        "ADD attempts :one DELETE tags :old",
        "SET items = list_append(if_not_exists(items, :empty), :new)",
    ],
)
def test_a_cloned_tree_is_the_tree_a_fresh_parse_gives(expression: str) -> None:
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.tokens import ExpressionTokenizer

    cached = UpdateExpressionParser.make(expression)
    again = UpdateExpressionParser.make(expression)
    fresh = UpdateExpressionParser(ExpressionTokenizer.make_list(expression)).parse()  # no cache: parsed anew
    assert cached is not again
    assert _shape(cached) == _shape(again) == _shape(fresh)
    assert moto_patches.clone_tree(cached) is not cached


def _endpoint_with_configs(sagemaker: Any, types: dict[str, str]) -> None:
    sagemaker.create_model(
        ModelName="m", PrimaryContainer={"Image": "x", "ModelDataUrl": "s3://b/m.tar.gz"}, ExecutionRoleArn=ROLE
    )
    for config, instance_type in types.items():
        sagemaker.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "InstanceType": instance_type,
                    "InitialInstanceCount": 1,
                }
            ],
        )
    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="old")


def _register(min_capacity: int = 0) -> None:
    boto3.client("application-autoscaling", region_name=REGION).register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId="endpoint/ep/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=min_capacity,
        MaxCapacity=2,
    )


def test_update_endpoint_changing_the_instance_type_of_a_scalable_target_is_refused() -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    _endpoint_with_configs(sagemaker, {"old": "ml.m5.large", "bigger": "ml.m5.xlarge"})
    _register()
    with pytest.raises(sagemaker.exceptions.ClientError) as refused:
        sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="bigger")
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "ml.m5.large to ml.m5.xlarge" in error["Message"] and "DeregisterScalableTarget" in error["Message"]
    assert sagemaker.describe_endpoint(EndpointName="ep")["EndpointConfigName"] == "old"


@pytest.mark.parametrize(("registered", "new_type"), [(False, "ml.m5.xlarge"), (True, "ml.m5.large")])
def test_update_endpoint_is_accepted_without_registration_or_with_the_same_type(
    registered: bool, new_type: str
) -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    _endpoint_with_configs(sagemaker, {"old": "ml.m5.large", "new": new_type})
    if registered:
        _register()
    arn = sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="new")["EndpointArn"]
    endpoint = sagemaker.describe_endpoint(EndpointName="ep")
    # Updating until SageMaker's data plane (the emulator) has the new model; the new config is the pending one.
    assert (endpoint["EndpointArn"], endpoint["EndpointStatus"]) == (arn, "Updating")
    assert endpoint["PendingDeploymentSummary"]["EndpointConfigName"] == "new"
    moto_patches.finish_endpoint_update("123456789012", REGION, "ep")
    endpoint = sagemaker.describe_endpoint(EndpointName="ep")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", "new")
    assert "PendingDeploymentSummary" not in endpoint


def test_an_update_ends_in_service_or_rolls_back_and_none_starts_while_one_is_in_progress() -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    _endpoint_with_configs(sagemaker, {"old": "ml.m5.large", "new": "ml.m5.large"})
    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="new")
    with pytest.raises(sagemaker.exceptions.ClientError, match="Cannot update in-progress endpoint"):
        sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="old")
    done = moto_patches.finish_endpoint_update("123456789012", REGION, "ep")
    assert done == {"EndpointStatus": "InService", "EndpointConfigName": "new"}
    # A failed update (the new model does not load) returns to the config it had, in service, with the reason.
    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="old")
    moto_patches.finish_endpoint_update("123456789012", REGION, "ep", "the model did not load")
    endpoint = sagemaker.describe_endpoint(EndpointName="ep")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", "new")
    assert endpoint["FailureReason"] == "the model did not load"


def test_update_endpoint_refuses_an_unknown_config_and_resets_or_retains_the_desired_count() -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    _endpoint_with_configs(sagemaker, {"old": "ml.m5.large", "new": "ml.m5.large"})
    with pytest.raises(sagemaker.exceptions.ClientError, match="Could not find endpoint configuration"):
        sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="missing")
    from moto.sagemaker.models import sagemaker_backends

    endpoint = sagemaker_backends["123456789012"][REGION].endpoints["ep"]
    endpoint.production_variants[0]["DesiredInstanceCount"] = 0  # as if scaled in to zero
    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="new", RetainAllVariantProperties=True)
    moto_patches.finish_endpoint_update("123456789012", REGION, "ep")
    assert sagemaker.describe_endpoint(EndpointName="ep")["ProductionVariants"][0]["DesiredInstanceCount"] == 0
    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="old")
    moto_patches.finish_endpoint_update("123456789012", REGION, "ep")
    assert sagemaker.describe_endpoint(EndpointName="ep")["ProductionVariants"][0]["DesiredInstanceCount"] == 1


def test_scaling_refusal_covers_a_removed_variant_and_ignores_unregistered_ones() -> None:
    current = [{"VariantName": "A", "InstanceType": "ml.m5.large"}, {"VariantName": "B", "InstanceType": "ml.c5.large"}]
    assert moto_patches.scaling_refusal("ep", current, [current[0]], {"endpoint/ep/variant/B"}) is not None
    assert moto_patches.scaling_refusal("ep", current, [current[0]], {"endpoint/ep/variant/A"}) is None
    assert moto_patches.scaling_refusal("ep", current, current, {"endpoint/other/variant/A"}) is None


def test_a_capacity_change_is_refused_while_the_endpoint_is_not_in_service() -> None:
    """A second UpdateEndpointWeightsAndCapacities while the first's instances start would let target tracking count
    starting instances as capacity and overshoot; AWS refuses updates to an Updating endpoint."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    _endpoint_with_configs(sagemaker, {"old": "ml.m5.large"})

    def capacity(count: int) -> None:
        sagemaker.update_endpoint_weights_and_capacities(
            EndpointName="ep",
            DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": count}],
        )

    capacity(2)
    assert sagemaker.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"
    with pytest.raises(sagemaker.exceptions.ClientError, match="Cannot update in-progress endpoint"):
        capacity(3)
    assert sagemaker.describe_endpoint(EndpointName="ep")["ProductionVariants"][0]["DesiredInstanceCount"] == 2
    moto_patches.record_emulated(
        {"kind": "instance_count", "region": REGION, "endpoint": "ep", "variant": "AllTraffic", "count": 2}
    )
    capacity(3)  # in service again: accepted
    assert sagemaker.describe_endpoint(EndpointName="ep")["ProductionVariants"][0]["DesiredInstanceCount"] == 3


def test_put_metric_alarm_on_an_existing_alarm_keeps_its_state() -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    params: dict[str, Any] = {
        "AlarmName": "a", "Namespace": "AWS/SageMaker", "MetricName": "HasBacklogWithoutCapacity",
        "Statistic": "Average", "Period": 60, "EvaluationPeriods": 2, "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }  # fmt: skip
    cloudwatch.put_metric_alarm(**params)
    assert cloudwatch.describe_alarms(AlarmNames=["a"])["MetricAlarms"][0]["StateValue"] == "INSUFFICIENT_DATA"
    cloudwatch.set_alarm_state(AlarmName="a", StateValue="ALARM", StateReason="Threshold Crossed")
    cloudwatch.put_metric_alarm(**{**params, "Threshold": 2.0})
    alarm = cloudwatch.describe_alarms(AlarmNames=["a"])["MetricAlarms"][0]
    assert (alarm["StateValue"], alarm["StateReason"], alarm["Threshold"]) == ("ALARM", "Threshold Crossed", 2.0)

"""The patches that remove moto's per-request costs change no result: events still match and carry their own
content, messages still expire at their retention period, every service the stack uses still routes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import jsonpath_ng.ext
import pytest
from moto import mock_aws
from moto.backend_index import backend_url_patterns
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from asyncinfer.local import moto_patches

REGION = "us-east-1"


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

"""JSON-protocol calls (x-amz-target) from real boto3 clients mapped to AWS's checks: DynamoDB, EventBridge, SQS,
SageMaker, Application Auto Scaling, CloudWatch."""

from __future__ import annotations

from typing import Any

import pytest

from asyncinfer.local.iam.checks import Check, UnmappedRequest
from asyncinfer.local.iam.requests import needs_body
from tests.unit.iam.captured import ACCOUNT, REGION, mapped, sent

TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Jobs"
KEY = {"pk": {"S": "1"}}


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("get_item", {"Key": KEY, "ConsistentRead": True}),
        ("put_item", {"Item": KEY, "ConditionExpression": "attribute_not_exists(pk)"}),
        ("update_item", {"Key": KEY, "UpdateExpression": "SET a = :a", "ExpressionAttributeValues": {":a": KEY["pk"]}}),
        ("delete_item", {"Key": KEY}),
        ("query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": KEY["pk"]}}),
        ("scan", {"Limit": 1}),
        ("describe_table", {}),
    ],
)
def test_dynamodb_single_table_operations(operation: str, params: dict[str, Any]) -> None:
    request = sent("dynamodb", operation, TableName="Jobs", **params)
    assert needs_body(request, "dynamodb")
    result = mapped(request)
    name = "".join(part.title() for part in operation.split("_"))
    assert result.operation == f"dynamodb:{name}"
    assert result.checks == (Check(f"dynamodb:{name}", TABLE),)


def test_dynamodb_query_of_an_index_checks_the_index() -> None:
    result = mapped(sent("dynamodb", "query", TableName="Jobs", IndexName="by-status", KeyConditionExpression="s = :s",
                         ExpressionAttributeValues={":s": {"S": "x"}}))  # fmt: skip
    assert result.checks == (Check("dynamodb:Query", f"{TABLE}/index/by-status"),)


def test_dynamodb_batch_get_checks_batch_get_item_on_each_table() -> None:
    result = mapped(
        sent("dynamodb", "batch_get_item", RequestItems={"Jobs": {"Keys": [KEY]}, "Other": {"Keys": [KEY]}})
    )
    assert result.checks == (
        Check("dynamodb:BatchGetItem", TABLE),
        Check("dynamodb:BatchGetItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Other"),
    )


def test_dynamodb_transact_write_checks_each_items_own_action() -> None:
    items = [
        {"Put": {"TableName": "Jobs", "Item": KEY}},
        {"Update": {"TableName": "Jobs", "Key": KEY, "UpdateExpression": "SET a = :a",
                    "ExpressionAttributeValues": {":a": KEY["pk"]}}},
        {"ConditionCheck": {"TableName": "Other", "Key": KEY, "ConditionExpression": "attribute_exists(pk)"}},
        {"Delete": {"TableName": "Jobs", "Key": {"pk": {"S": "2"}}}},
        {"Put": {"TableName": "Jobs", "Item": {"pk": {"S": "3"}}}},
    ]  # fmt: skip
    result = mapped(sent("dynamodb", "transact_write_items", TransactItems=items))
    assert result.operation == "dynamodb:TransactWriteItems"
    assert result.checks == (
        Check("dynamodb:PutItem", TABLE),
        Check("dynamodb:UpdateItem", TABLE),
        Check("dynamodb:ConditionCheckItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Other"),
        Check("dynamodb:DeleteItem", TABLE),
    )


def test_dynamodb_transact_get_checks_get_item() -> None:
    result = mapped(sent("dynamodb", "transact_get_items", TransactItems=[{"Get": {"TableName": "Jobs", "Key": KEY}}]))
    assert result.checks == (Check("dynamodb:GetItem", TABLE),)


def test_dynamodb_list_tables_supports_no_resource() -> None:
    assert mapped(sent("dynamodb", "list_tables")).checks == (Check("dynamodb:ListTables", "*"),)


def test_put_events_checks_each_entrys_bus_with_its_source() -> None:
    entries = [
        {"Source": "asyncinfer", "DetailType": "Done", "Detail": "{}", "EventBusName": "results"},
        {"Source": "asyncinfer", "DetailType": "Done", "Detail": "{}", "EventBusName": "results"},
        {"Source": "other", "DetailType": "X", "Detail": "{}",
         "EventBusName": "arn:aws:events:us-east-1:210987654321:event-bus/far"},
        {"Source": "asyncinfer", "DetailType": "Done", "Detail": "{}"},
    ]  # fmt: skip
    result = mapped(sent("events", "put_events", Entries=entries))
    done = {"events:source": "asyncinfer", "events:detail-type": "Done"}
    assert result.operation == "events:PutEvents"
    assert result.checks == (
        Check("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/results", done),
        Check("events:PutEvents", "arn:aws:events:us-east-1:210987654321:event-bus/far",
              {"events:source": "other", "events:detail-type": "X"}),
        Check("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default", done),
    )  # fmt: skip


def test_events_rules_of_a_custom_bus_include_the_bus_in_the_arn() -> None:
    result = mapped(sent("events", "describe_rule", Name="r", EventBusName="results"))
    assert result.checks == (Check("events:DescribeRule", f"arn:aws:events:{REGION}:{ACCOUNT}:rule/results/r"),)


QUEUE_URL = f"http://127.0.0.1:4566/{ACCOUNT}/dead-letters"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:dead-letters"


@pytest.mark.parametrize(
    ("operation", "params", "action"),
    [
        ("send_message", {"MessageBody": "{}"}, "sqs:SendMessage"),
        ("send_message_batch", {"Entries": [{"Id": "1", "MessageBody": "{}"}]}, "sqs:SendMessage"),
        ("receive_message", {"MaxNumberOfMessages": 10}, "sqs:ReceiveMessage"),
        ("delete_message", {"ReceiptHandle": "r"}, "sqs:DeleteMessage"),
        ("delete_message_batch", {"Entries": [{"Id": "1", "ReceiptHandle": "r"}]}, "sqs:DeleteMessage"),
        ("get_queue_attributes", {"AttributeNames": ["All"]}, "sqs:GetQueueAttributes"),
        ("purge_queue", {}, "sqs:PurgeQueue"),
    ],
)
def test_sqs_json_protocol_checks_the_queue_of_the_url(operation: str, params: dict[str, Any], action: str) -> None:
    request = sent("sqs", operation, QueueUrl=QUEUE_URL, **params)
    assert request.headers["x-amz-target"].startswith("AmazonSQS.")
    assert mapped(request).checks == (Check(action, QUEUE),)


def test_sqs_get_queue_url_checks_the_named_queue() -> None:
    assert mapped(sent("sqs", "get_queue_url", QueueName="dead-letters")).checks == (Check("sqs:GetQueueUrl", QUEUE),)


def test_sagemaker_describe_endpoint_lower_cases_the_name_in_the_arn() -> None:
    result = mapped(sent("sagemaker", "describe_endpoint", EndpointName="Async-Endpoint"))
    assert result.operation == "sagemaker:DescribeEndpoint"
    assert result.checks == (
        Check("sagemaker:DescribeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/async-endpoint"),
    )
    config = mapped(sent("sagemaker", "describe_endpoint_config", EndpointConfigName="Cfg"))
    assert config.checks == (
        Check("sagemaker:DescribeEndpointConfig", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/cfg"),
    )
    model = mapped(sent("sagemaker", "describe_model", ModelName="M"))
    assert model.checks == (Check("sagemaker:DescribeModel", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/m"),)


def test_application_autoscaling_carries_namespace_and_dimension() -> None:
    result = mapped(
        sent(
            "application-autoscaling",
            "describe_scalable_targets",
            ServiceNamespace="sagemaker",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        )
    )
    assert result.checks == (
        Check(
            "application-autoscaling:DescribeScalableTargets",
            "*",
            {
                "application-autoscaling:service-namespace": "sagemaker",
                "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
            },
        ),
    )


def test_cloudwatch_put_metric_data_is_cloudwatch_with_the_namespace() -> None:
    request = sent("cloudwatch", "put_metric_data", Namespace="AsyncInfer/Local",
                   MetricData=[{"MetricName": "Backlog", "Value": 1.0}])  # fmt: skip
    assert request.headers["x-amz-target"] == "GraniteServiceVersion20100801.PutMetricData"  # the pinned protocol
    result = mapped(request)
    assert result.operation == "cloudwatch:PutMetricData"
    assert result.checks == (Check("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AsyncInfer/Local"}),)


def test_cloudwatch_alarms_are_checked_by_arn() -> None:
    result = mapped(sent("cloudwatch", "describe_alarms", AlarmNames=["a", "b"]))
    alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:"
    assert result.checks == (
        Check("cloudwatch:DescribeAlarms", f"{alarm}a"),
        Check("cloudwatch:DescribeAlarms", f"{alarm}b"),
    )
    assert mapped(sent("cloudwatch", "describe_alarms")).checks == (Check("cloudwatch:DescribeAlarms", "*"),)


@pytest.mark.parametrize(
    ("service", "operation", "params", "name"),
    [
        ("dynamodb", "create_backup", {"TableName": "Jobs", "BackupName": "backup"}, "dynamodb:CreateBackup"),
        ("events", "put_permission", {"Policy": "{}"}, "events:PutPermission"),
        ("sqs", "list_message_move_tasks", {"SourceArn": QUEUE}, "sqs:ListMessageMoveTasks"),
        ("sagemaker", "create_model", {"ModelName": "m"}, "sagemaker:CreateModel"),
        ("cloudwatch", "put_dashboard", {"DashboardName": "d", "DashboardBody": "{}"}, "cloudwatch:PutDashboard"),
    ],
)
def test_unmapped_json_operations_are_refused_by_name(
    service: str, operation: str, params: dict[str, Any], name: str
) -> None:
    with pytest.raises(UnmappedRequest, match=name):
        mapped(sent(service, operation, **params))


def test_a_json_call_missing_its_resource_is_refused() -> None:
    request = sent("dynamodb", "get_item", TableName="Jobs", Key=KEY)
    from dataclasses import replace

    with pytest.raises(UnmappedRequest, match="dynamodb:GetItem without a TableName"):
        mapped(replace(request, body=b'{"Key": {}}'))
    with pytest.raises(UnmappedRequest, match="not JSON"):
        mapped(replace(request, body=b"{nope"))

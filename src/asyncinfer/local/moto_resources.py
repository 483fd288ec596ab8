"""Creating the template's emulated resources in moto, through its APIs, from their resolved properties.

Parameters resolve to strings: :func:`coerce` converts them to each API member's type, as CloudFormation does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from botocore.model import ListShape, MapShape, Shape, StructureShape

from asyncinfer.local.template import JSONValue, Resolver, Template

if TYPE_CHECKING:
    import boto3
    from botocore.client import BaseClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ServerSideEncryptionConfigurationTypeDef
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

_QUEUE_ATTRIBUTES = {
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "MaximumMessageSize",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
}
_RULE_TARGET_KEYS = {"Id", "Arn", "DeadLetterConfig", "RetryPolicy", "Input", "InputPath"}
# AWS::CloudWatch::Alarm properties that PutMetricAlarm takes under the same name.
_ALARM_KEYS = {
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
}


@dataclass(frozen=True)
class MotoClients:
    """The clients provisioning uses, made once, all pointed at the local AWS APIs."""

    s3: S3Client
    sns: SNSClient
    sqs: SQSClient
    dynamodb: DynamoDBClient
    events: EventBridgeClient
    sagemaker: SageMakerClient
    autoscaling: BaseClient  # application-autoscaling (no type stubs installed)
    cloudwatch: BaseClient  # (no type stubs installed)

    @classmethod
    def of(cls, session: boto3.Session, endpoint_url: str, region: str) -> MotoClients:
        return cls(
            s3=session.client("s3", endpoint_url=endpoint_url, region_name=region),
            sns=session.client("sns", endpoint_url=endpoint_url, region_name=region),
            sqs=session.client("sqs", endpoint_url=endpoint_url, region_name=region),
            dynamodb=session.client("dynamodb", endpoint_url=endpoint_url, region_name=region),
            events=session.client("events", endpoint_url=endpoint_url, region_name=region),
            sagemaker=session.client("sagemaker", endpoint_url=endpoint_url, region_name=region),
            autoscaling=session.client("application-autoscaling", endpoint_url=endpoint_url, region_name=region),
            cloudwatch=session.client("cloudwatch", endpoint_url=endpoint_url, region_name=region),
        )


def coerce(value: JSONValue, shape: Shape | None) -> JSONValue:
    """Parameters resolve to strings; CloudFormation converts them to each property's type, and so must we.

    Walks the botocore input shape of the call, so every service gets the same treatment.
    """
    if shape is None:
        return value
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return {k: coerce(v, shape.members.get(k)) for k, v in value.items()}
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [coerce(v, shape.member) for v in value]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {k: coerce(v, shape.value) for k, v in value.items()}
    if isinstance(value, str):
        kind = shape.type_name
        if kind in {"integer", "long"}:
            return int(value)
        if kind in {"double", "float"}:
            return float(value)
        if kind == "boolean":
            return value.lower() == "true"
    return value


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def call(client: BaseClient, operation: str, **params: JSONValue) -> dict[str, Any]:
    """A client call with its parameters coerced to the operation's input shape (see :func:`coerce`)."""
    model = client.meta.service_model.operation_model(operation)
    method = getattr(client, _snake(operation))
    response: dict[str, Any] = method(**coerce(params, model.input_shape))
    return response


def create(clients: MotoClients, resolver: Resolver, logical: str, kind: str, props: Template) -> None:
    """Create one resource of an emulated type (provision.EMULATED); its physical ids are in ``resolver``."""
    if kind == "AWS::S3::Bucket":
        s3 = clients.s3
        name = resolver.refs[logical]
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if "BucketEncryption" in props:
            # CloudFormation spells the API's ApplyServerSideEncryptionByDefault without "Apply".
            rules: list[JSONValue] = [
                {
                    ("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                    for k, v in rule.items()
                }
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            encryption: ServerSideEncryptionConfigurationTypeDef = {"Rules": rules}
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=encryption)
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
    elif kind == "AWS::SNS::Topic":
        clients.sns.create_topic(Name=resolver.attrs[(logical, "TopicName")])
    elif kind == "AWS::SQS::Queue":
        attributes = {
            cast("QueueAttributeNameType", key): (json.dumps(value) if isinstance(value, dict) else str(value))
            for key, value in props.items()
            if key in _QUEUE_ATTRIBUTES
        }
        url = clients.sqs.create_queue(QueueName=resolver.attrs[(logical, "QueueName")], Attributes=attributes)[
            "QueueUrl"
        ]
        resolver.refs[logical] = url
        resolver.attrs[(logical, "QueueUrl")] = url
    elif kind == "AWS::DynamoDB::Table":
        name = resolver.refs[logical]
        request: Template = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if request["BillingMode"] == "PROVISIONED":
            request["ProvisionedThroughput"] = props.get(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        call(clients.dynamodb, "CreateTable", **request)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            clients.dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    elif kind == "AWS::Events::EventBus":
        clients.events.create_event_bus(Name=resolver.refs[logical])
    elif kind == "AWS::Events::Rule":
        bus = props.get("EventBusName", "default")
        name = resolver.refs[logical]
        clients.events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps(props["EventPattern"]),
            State=props.get("State", "ENABLED"),
        )
        targets = [{k: v for k, v in t.items() if k in _RULE_TARGET_KEYS} for t in props.get("Targets", [])]
        if targets:
            call(clients.events, "PutTargets", Rule=name, EventBusName=bus, Targets=targets)
    elif kind == "AWS::SageMaker::Model":
        call(
            clients.sagemaker,
            "CreateModel",
            ModelName=resolver.attrs[(logical, "ModelName")],
            PrimaryContainer=props["PrimaryContainer"],
            ExecutionRoleArn=props["ExecutionRoleArn"],
        )
    elif kind == "AWS::SageMaker::EndpointConfig":
        request = {
            "EndpointConfigName": resolver.attrs[(logical, "EndpointConfigName")],
            "ProductionVariants": props["ProductionVariants"],
        }
        if "AsyncInferenceConfig" in props:
            request["AsyncInferenceConfig"] = props["AsyncInferenceConfig"]
        call(clients.sagemaker, "CreateEndpointConfig", **request)
    elif kind == "AWS::SageMaker::Endpoint":
        clients.sagemaker.create_endpoint(
            EndpointName=resolver.attrs[(logical, "EndpointName")], EndpointConfigName=props["EndpointConfigName"]
        )
    elif kind == "AWS::ApplicationAutoScaling::ScalableTarget":
        # Registered as on AWS: SageMaker then refuses what AWS refuses under autoscaling
        # (moto_patches.scaling_refusal), and the local stack's autoscaling (endpoint_life.py) reads it.
        target = {k: props[k] for k in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
        call(
            clients.autoscaling,
            "RegisterScalableTarget",
            MinCapacity=props["MinCapacity"],
            MaxCapacity=props["MaxCapacity"],
            **target,
        )
        # CloudFormation's Ref of a scalable target: resource id, dimension and namespace joined by "|".
        resolver.refs[logical] = "|".join(
            str(target[k]) for k in ("ResourceId", "ScalableDimension", "ServiceNamespace")
        )
    elif kind == "AWS::ApplicationAutoScaling::ScalingPolicy":
        resource_id, dimension, namespace = str(props["ScalingTargetId"]).split("|")
        configs = {
            k: props[k]
            for k in ("TargetTrackingScalingPolicyConfiguration", "StepScalingPolicyConfiguration")
            if k in props
        }
        arn = call(
            clients.autoscaling,
            "PutScalingPolicy",
            PolicyName=props["PolicyName"],
            PolicyType=props["PolicyType"],
            ServiceNamespace=namespace,
            ResourceId=resource_id,
            ScalableDimension=dimension,
            **configs,
        )["PolicyARN"]
        resolver.refs[logical] = arn
    elif kind == "AWS::CloudWatch::Alarm":
        # Evaluated, and its actions run, by the local stack's CloudWatch (endpoint_life.py).
        alarm = {k: v for k, v in props.items() if k in _ALARM_KEYS}
        call(clients.cloudwatch, "PutMetricAlarm", AlarmName=resolver.refs[logical], **alarm)

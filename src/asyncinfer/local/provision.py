"""Creates the stack that template.yaml describes in moto, and wires what Lambda and SNS would wire in AWS.

Resources the pipeline's behaviour depends on are created through moto's APIs from their resolved template
properties (moto_resources.py), under the names CloudFormation would give them (physical_ids.py). S3 → function
and SNS → function deliveries are wired through internal SQS queues, with the template's own event filter and filter
policy, for the local Lambda runtime to consume (lambda_wiring.py). The scalable target and its policies are
registered and the alarms created as on AWS, for the local stack's CloudWatch and Application Auto Scaling
(endpoint_life.py) to act on; an alarm on a metric nothing publishes locally (the functions' and the queues') is
listed as not emulated. Roles, their policies, bucket and queue policies and Lambda permissions are collected for
the local stack's IAM (iam/template_policies.py) and enforced there. Everything else (dashboards, log groups) is
listed as not emulated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from asyncinfer.local.cloudwatch_metrics import published
from asyncinfer.local.iam.template_policies import iam_setup
from asyncinfer.local.lambda_wiring import (
    EventSource,
    FunctionSpec,
    function_specs,
    resolved_props,
    wire_s3,
    wire_sns,
)
from asyncinfer.local.moto_resources import MotoClients, create
from asyncinfer.local.physical_ids import ACCOUNT, name_resource
from asyncinfer.local.template import JSONValue, Resolver, Template, parameter_values, transform

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_sagemaker.type_defs import ContainerDefinitionOutputTypeDef

# Created in this order, so that each type's properties can refer to the ones before it.
EMULATED = (
    "AWS::S3::Bucket",
    "AWS::SNS::Topic",
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::Events::EventBus",
    "AWS::Events::Rule",
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Alarm",
)
# An alarm on any other metric is created and evaluated, but its metric never has data locally.
UNPUBLISHED_ALARM = "AWS::CloudWatch::Alarm (its metric is not published locally)"
# What the local stack's IAM (docs/iam.md) does not enforce.
IAM_NOT_ENFORCED = "IAM (not enforced)"
NOT_ENFORCED = (
    "KMS key policies (and KMS)",
    "SCPs, permissions boundaries, session policies",
    "cross-account access",
    "SigV4 signatures (the access key and its session token identify the caller)",
    "ManagedPolicyArns (they grant nothing locally)",
    "SNS retries and redrive after a refused function invocation (the delivery is logged as lost)",
    "EventBridge retries before its dead-letter queue",
    "condition keys the local stack does not compute (they fail closed)",
)
# Read by the local stack itself rather than created in moto.
INTERPRETED = (
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::Lambda::Permission",
    "AWS::Lambda::Function",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::SNS::Subscription",
)


@dataclass
class LocalStack:
    stack_name: str
    region: str
    account: str
    aws_endpoint_url: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    functions: dict[str, FunctionSpec]
    sources: list[EventSource]
    endpoints: list[str]
    model_data_urls: dict[str, str]  # endpoint name → its model's artifact
    # endpoint name → its model's PrimaryContainer Environment, as provisioned (TorchServe/MMS limits come from it)
    model_environments: dict[str, dict[str, str]] = field(default_factory=dict)
    not_emulated: dict[str, list[str]] = field(default_factory=dict)
    iam: dict[str, JSONValue] = field(default_factory=dict)  # the template's roles and resource policies (IamSetup)

    def to_json(self) -> dict[str, JSONValue]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, JSONValue]) -> LocalStack:
        values = dict(data)
        values["functions"] = {k: FunctionSpec(**v) for k, v in data["functions"].items()}
        values["sources"] = [EventSource(**s) for s in data["sources"]]
        return cls(**values)


def resolve_stack(
    sam: Template, parameters: Mapping[str, str], stack: str, region: str
) -> tuple[Resolver, dict[str, Template], list[str]]:
    """The transformed template's resolver (every resource named as CloudFormation would), its resources, and the
    logical ids its conditions enable."""
    cfn = transform(sam, parameters, region)
    pseudo = {
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": stack,
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/{stack}/local",
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NotificationARNs": "",
    }
    resolver = Resolver(cfn, dict(parameters), pseudo)
    resources: dict[str, Template] = cfn["Resources"]
    enabled = [logical for logical in resources if resolver.resource_enabled(logical)]
    for logical in enabled:
        name_resource(resolver, logical, resources[logical], stack, region)
    return resolver, resources, enabled


class Provisioner:
    def __init__(self, session: boto3.Session, endpoint_url: str, root: Path, stack_name: str, region: str) -> None:
        self._clients = MotoClients.of(session, endpoint_url, region)
        self._endpoint_url = endpoint_url
        self._root = root
        self._stack = stack_name
        self._region = region

    def provision(self, sam: Template, overrides: Mapping[str, str]) -> LocalStack:
        parameters = parameter_values(sam, overrides)
        resolver, resources, enabled = resolve_stack(sam, parameters, self._stack, self._region)
        for resource_type in EMULATED:
            for logical in enabled:
                if resources[logical]["Type"] == resource_type:
                    props = resolved_props(resolver, logical, resources[logical])
                    create(self._clients, resolver, logical, resource_type, props)
        functions = function_specs(resolver, resources, enabled, self._root)
        sources = wire_s3(self._clients, resolver, resources, enabled, self._stack) + wire_sns(
            self._clients, resolver, resources, enabled, self._stack
        )
        outputs = {}
        for key, output in resolver.template.get("Outputs", {}).items():
            if "Condition" in output and not resolver.condition(output["Condition"]):
                continue
            outputs[key] = str(resolver.resolve(output["Value"]))
        not_emulated: dict[str, list[str]] = {}
        for logical in enabled:
            kind = resources[logical]["Type"]
            if kind not in EMULATED and kind not in INTERPRETED:
                not_emulated.setdefault(kind, []).append(logical)
            elif kind == "AWS::CloudWatch::Alarm" and not published(resources[logical].get("Properties", {})):
                not_emulated.setdefault(UNPUBLISHED_ALARM, []).append(logical)
        iam = iam_setup(resolver, resources, enabled, ACCOUNT, self._region)
        not_emulated[IAM_NOT_ENFORCED] = list(NOT_ENFORCED)
        endpoints = [
            resolver.get_att(name, "EndpointName")
            for name in enabled
            if resources[name]["Type"] == "AWS::SageMaker::Endpoint"
        ]
        return LocalStack(
            stack_name=self._stack,
            region=self._region,
            account=ACCOUNT,
            aws_endpoint_url=self._endpoint_url,
            outputs=outputs,
            parameters=parameters,
            functions=functions,
            sources=sources,
            endpoints=endpoints,
            model_data_urls=self._model_data_urls(endpoints),
            model_environments=self._model_environments(endpoints),
            not_emulated=not_emulated,
            iam=iam.to_json(),
        )

    def _primary_container(self, endpoint: str) -> ContainerDefinitionOutputTypeDef:
        sagemaker = self._clients.sagemaker
        config_name = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        return sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])["PrimaryContainer"]

    def _model_data_urls(self, endpoints: list[str]) -> dict[str, str]:
        return {endpoint: self._primary_container(endpoint).get("ModelDataUrl", "") for endpoint in endpoints}

    def _model_environments(self, endpoints: list[str]) -> dict[str, dict[str, str]]:
        return {endpoint: dict(self._primary_container(endpoint).get("Environment", {})) for endpoint in endpoints}

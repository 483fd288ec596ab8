"""Creates the stack that template.yaml describes in moto, and wires what Lambda and SNS would wire in AWS.

Resources the pipeline's behaviour depends on are created through moto's APIs from their resolved template
properties. S3 → function and SNS → function deliveries are wired through internal SQS queues, with the
template's own event filter and filter policy, for the local Lambda runtime to consume. Everything else (IAM,
alarms, dashboards, autoscaling, log groups, permissions, bucket and queue policies) is listed as not emulated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asyncinfer.local.template import Resolver, TemplateError, Unresolved, code_path, parameter_values, transform

ACCOUNT = "123456789012"  # moto's default account
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
)
# Read by the local stack itself rather than created in moto.
INTERPRETED = (
    "AWS::Lambda::Function",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::SNS::Subscription",
)


@dataclass
class FunctionSpec:
    """A function of the template, as the local Lambda runtime runs it."""

    logical_id: str
    name: str
    arn: str
    code_dir: str
    layer_dirs: list[str]
    handler: str
    environment: dict[str, str]
    timeout: int = 3
    memory: int = 128
    max_retry_attempts: int = 2
    max_event_age: int = 21600
    on_failure: str | None = None  # destination ARN (SQS)


@dataclass
class EventSource:
    """An internal queue carrying one trigger's deliveries to one function."""

    function: str  # logical id
    kind: str  # "s3" | "sns"
    queue_url: str
    source_arn: str  # bucket ARN, or the subscription ARN Lambda would report


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
    not_emulated: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LocalStack:
        values = dict(data)
        values["functions"] = {k: FunctionSpec(**v) for k, v in data["functions"].items()}
        values["sources"] = [EventSource(**s) for s in data["sources"]]
        return cls(**values)


def coerce(value: Any, shape: Any) -> Any:
    """Parameters resolve to strings; CloudFormation converts them to each property's type, and so must we.

    Walks the botocore input shape of the call, so every service gets the same treatment.
    """
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: coerce(v, shape.members.get(k)) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [coerce(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: coerce(v, shape.value) for k, v in value.items()}
    if isinstance(value, str):
        if kind in {"integer", "long"}:
            return int(value)
        if kind in {"double", "float"}:
            return float(value)
        if kind == "boolean":
            return value.lower() == "true"
    return value


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _name(stack: str, logical_id: str, limit: int = 64, lower: bool = False) -> str:
    name = f"{stack}-{logical_id}"
    return (name.lower() if lower else name)[:limit]


class Provisioner:
    def __init__(self, session: Any, endpoint_url: str, root: Path, stack_name: str, region: str) -> None:
        self._session = session
        self._endpoint_url = endpoint_url
        self._root = root
        self._stack = stack_name
        self._region = region

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self._endpoint_url, region_name=self._region)

    def call(self, service: str, operation: str, **params: Any) -> Any:
        """A client call with its parameters coerced to the operation's input shape (see :func:`coerce`)."""
        client = self.client(service)
        model = client.meta.service_model.operation_model(operation)
        method = getattr(client, _snake(operation))
        return method(**coerce(params, model.input_shape))

    def provision(self, sam: dict[str, Any], overrides: Mapping[str, str]) -> LocalStack:
        parameters = parameter_values(sam, overrides)
        cfn = transform(sam, parameters, self._region)
        pseudo = {
            "AWS::Region": self._region,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": self._stack,
            "AWS::StackId": f"arn:aws:cloudformation:{self._region}:{ACCOUNT}:stack/{self._stack}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": "",
        }
        resolver = Resolver(cfn, parameters, pseudo)
        resources: dict[str, dict[str, Any]] = cfn["Resources"]
        enabled = [logical for logical in resources if resolver.resource_enabled(logical)]
        for logical in enabled:
            self._name_resource(resolver, logical, resources[logical])
        for resource_type in EMULATED:
            for logical in enabled:
                if resources[logical]["Type"] == resource_type:
                    props = self._props(resolver, logical, resources[logical])
                    self._create(resolver, logical, resource_type, props)
        functions = self._functions(resolver, resources, enabled)
        sources = self._wire_s3(resolver, resources, enabled) + self._wire_sns(resolver, resources, enabled)
        outputs = {}
        for key, output in cfn.get("Outputs", {}).items():
            if "Condition" in output and not resolver.condition(output["Condition"]):
                continue
            outputs[key] = str(resolver.resolve(output["Value"]))
        not_emulated: dict[str, list[str]] = {}
        for logical in enabled:
            kind = resources[logical]["Type"]
            if kind not in EMULATED and kind not in INTERPRETED:
                not_emulated.setdefault(kind, []).append(logical)
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
            not_emulated=not_emulated,
        )

    # --- names and attributes, known before anything is created -------------------------------------------------

    def _explicit(self, resolver: Resolver, props: Mapping[str, Any], key: str) -> str | None:
        if key not in props:
            return None
        try:
            return str(resolver.resolve(props[key]))
        except Unresolved:
            return None

    def _name_resource(self, resolver: Resolver, logical: str, resource: Mapping[str, Any]) -> None:
        kind = resource["Type"]
        props = resource.get("Properties", {})
        region, stack = self._region, self._stack
        refs, attrs = resolver.refs, resolver.attrs
        if kind == "AWS::S3::Bucket":
            name = self._explicit(resolver, props, "BucketName") or _name(stack, logical, 63, lower=True)
            refs[logical] = name
            attrs.update(
                {
                    (logical, "Arn"): f"arn:aws:s3:::{name}",
                    (logical, "DomainName"): f"{name}.s3.amazonaws.com",
                    (logical, "RegionalDomainName"): f"{name}.s3.{region}.amazonaws.com",
                }
            )
        elif kind == "AWS::SNS::Topic":
            name = self._explicit(resolver, props, "TopicName") or _name(stack, logical, 256)
            arn = f"arn:aws:sns:{region}:{ACCOUNT}:{name}"
            refs[logical] = arn
            attrs.update({(logical, "TopicArn"): arn, (logical, "TopicName"): name})
        elif kind == "AWS::SQS::Queue":
            name = self._explicit(resolver, props, "QueueName") or _name(stack, logical, 80)
            attrs.update({(logical, "Arn"): f"arn:aws:sqs:{region}:{ACCOUNT}:{name}", (logical, "QueueName"): name})
        elif kind == "AWS::DynamoDB::Table":
            name = self._explicit(resolver, props, "TableName") or _name(stack, logical, 255)
            refs[logical] = name
            attrs[(logical, "Arn")] = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"
            attrs[(logical, "StreamArn")] = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}/stream/local"
        elif kind == "AWS::Events::EventBus":
            name = self._explicit(resolver, props, "Name") or _name(stack, logical, 256)
            refs[logical] = name
            attrs.update(
                {(logical, "Name"): name, (logical, "Arn"): f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{name}"}
            )
        elif kind == "AWS::Events::Rule":
            name = self._explicit(resolver, props, "Name") or _name(stack, logical, 64)
            refs[logical] = name
            attrs[(logical, "Arn")] = f"arn:aws:events:{region}:{ACCOUNT}:rule/{name}"
        elif kind.startswith("AWS::SageMaker::"):
            short = kind.rsplit("::", 1)[1]
            key = {"Model": "ModelName", "EndpointConfig": "EndpointConfigName", "Endpoint": "EndpointName"}.get(short)
            name = (self._explicit(resolver, props, key) if key else None) or _name(stack, logical, 63)
            path = {"Model": "model", "EndpointConfig": "endpoint-config", "Endpoint": "endpoint"}.get(
                short, short.lower()
            )
            refs[logical] = f"arn:aws:sagemaker:{region}:{ACCOUNT}:{path}/{name.lower()}"
            if key:
                attrs[(logical, key)] = name
        elif kind == "AWS::Lambda::Function":
            name = self._explicit(resolver, props, "FunctionName") or _name(stack, logical, 64)
            refs[logical] = name
            attrs[(logical, "Arn")] = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
        elif kind == "AWS::Lambda::LayerVersion":
            refs[logical] = f"arn:aws:lambda:{region}:{ACCOUNT}:layer:{_name(stack, logical)}:1"
        elif kind == "AWS::IAM::Role":
            name = self._explicit(resolver, props, "RoleName") or _name(stack, logical, 64)
            refs[logical] = name
            attrs.update(
                {
                    (logical, "Arn"): f"arn:aws:iam::{ACCOUNT}:role/{name}",
                    (logical, "RoleId"): f"AROA{logical.upper()[:16]}",
                }
            )
        elif kind == "AWS::SNS::Subscription":
            refs[logical] = f"{resolver.resolve(props['TopicArn'])}:{logical}" if "TopicArn" in props else logical
        else:
            # Not emulated: a stable, recognisable placeholder keeps references to it resolvable.
            name = _name(stack, logical)
            refs[logical] = name
            service = kind.split("::")[1].lower()
            attrs[(logical, "Arn")] = f"arn:aws:{service}:{region}:{ACCOUNT}:local/{name}"

    def _props(self, resolver: Resolver, logical: str, resource: Mapping[str, Any]) -> dict[str, Any]:
        try:
            props: dict[str, Any] = resolver.resolve(resource.get("Properties", {})) or {}
        except Unresolved as exc:
            raise TemplateError(f"{logical}: {exc}") from exc
        return props

    # --- creation in moto -----------------------------------------------------------------------------------------

    def _create(self, resolver: Resolver, logical: str, kind: str, props: dict[str, Any]) -> None:
        if kind == "AWS::S3::Bucket":
            s3 = self.client("s3")
            name = resolver.refs[logical]
            s3.create_bucket(Bucket=name)
            if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            if "BucketEncryption" in props:
                # CloudFormation spells the API's ApplyServerSideEncryptionByDefault without "Apply".
                rules = [
                    {
                        ("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                        for k, v in rule.items()
                    }
                    for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
                s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
            if "PublicAccessBlockConfiguration" in props:
                s3.put_public_access_block(
                    Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
                )
        elif kind == "AWS::SNS::Topic":
            self.client("sns").create_topic(Name=resolver.attrs[(logical, "TopicName")])
        elif kind == "AWS::SQS::Queue":
            attributes = {
                key: (json.dumps(value) if isinstance(value, dict) else str(value))
                for key, value in props.items()
                if key
                in {
                    "VisibilityTimeout",
                    "MessageRetentionPeriod",
                    "DelaySeconds",
                    "ReceiveMessageWaitTimeSeconds",
                    "MaximumMessageSize",
                    "RedrivePolicy",
                    "SqsManagedSseEnabled",
                }
            }
            url = self.client("sqs").create_queue(
                QueueName=resolver.attrs[(logical, "QueueName")], Attributes=attributes
            )["QueueUrl"]
            resolver.refs[logical] = url
            resolver.attrs[(logical, "QueueUrl")] = url
        elif kind == "AWS::DynamoDB::Table":
            dynamodb = self.client("dynamodb")
            name = resolver.refs[logical]
            request: dict[str, Any] = {
                "TableName": name,
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": props.get("BillingMode", "PROVISIONED"),
            }
            if request["BillingMode"] == "PROVISIONED":
                request["ProvisionedThroughput"] = props.get(
                    "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
                )
            self.call("dynamodb", "CreateTable", **request)
            ttl = props.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        elif kind == "AWS::Events::EventBus":
            self.client("events").create_event_bus(Name=resolver.refs[logical])
        elif kind == "AWS::Events::Rule":
            events = self.client("events")
            bus = props.get("EventBusName", "default")
            name = resolver.refs[logical]
            events.put_rule(
                Name=name,
                EventBusName=bus,
                EventPattern=json.dumps(props["EventPattern"]),
                State=props.get("State", "ENABLED"),
            )
            targets = [
                {
                    k: v
                    for k, v in t.items()
                    if k in {"Id", "Arn", "DeadLetterConfig", "RetryPolicy", "Input", "InputPath"}
                }
                for t in props.get("Targets", [])
            ]
            if targets:
                self.call("events", "PutTargets", Rule=name, EventBusName=bus, Targets=targets)
        elif kind == "AWS::SageMaker::Model":
            self.call(
                "sagemaker",
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
            self.call("sagemaker", "CreateEndpointConfig", **request)
        elif kind == "AWS::SageMaker::Endpoint":
            self.client("sagemaker").create_endpoint(
                EndpointName=resolver.attrs[(logical, "EndpointName")], EndpointConfigName=props["EndpointConfigName"]
            )

    # --- what Lambda and SNS would do -----------------------------------------------------------------------------

    def _functions(
        self, resolver: Resolver, resources: Mapping[str, Any], enabled: list[str]
    ) -> dict[str, FunctionSpec]:
        layers_by_arn = {
            resolver.refs[name]: str(code_path(resources[name]["Properties"]["Content"], self._root))
            for name in enabled
            if resources[name]["Type"] == "AWS::Lambda::LayerVersion"
        }
        functions: dict[str, FunctionSpec] = {}
        for logical in enabled:
            if resources[logical]["Type"] != "AWS::Lambda::Function":
                continue
            props = self._props(resolver, logical, resources[logical])
            variables = props.get("Environment", {}).get("Variables", {})
            functions[logical] = FunctionSpec(
                logical_id=logical,
                name=resolver.refs[logical],
                arn=resolver.attrs[(logical, "Arn")],
                code_dir=str(code_path(props["Code"], self._root)),
                layer_dirs=[layers_by_arn[arn] for arn in props.get("Layers", []) if arn in layers_by_arn],
                handler=props["Handler"],
                environment={k: str(v) for k, v in variables.items()},
                timeout=int(props.get("Timeout", 3)),
                memory=int(props.get("MemorySize", 128)),
            )
        for logical in enabled:
            if resources[logical]["Type"] != "AWS::Lambda::EventInvokeConfig":
                continue
            props = self._props(resolver, logical, resources[logical])
            target = next((f for f in functions.values() if f.name == props["FunctionName"]), None)
            if target is None:
                raise TemplateError(f"{logical}: no function named {props['FunctionName']}")
            target.max_retry_attempts = int(props.get("MaximumRetryAttempts", 2))
            target.max_event_age = int(props.get("MaximumEventAgeInSeconds", 21600))
            target.on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        return functions

    def _function_by_arn(self, resolver: Resolver, arn: str) -> str:
        for (logical, attribute), value in resolver.attrs.items():
            if attribute == "Arn" and value == arn:
                return logical
        raise TemplateError(f"no function with ARN {arn}")

    def _internal_queue(self, name: str) -> tuple[str, str]:
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name[:80])["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def _wire_s3(self, resolver: Resolver, resources: Mapping[str, Any], enabled: list[str]) -> list[EventSource]:
        """Bucket NotificationConfiguration → Lambda becomes bucket → internal queue with the same event and filter."""
        sources: list[EventSource] = []
        s3 = self.client("s3")
        for logical in enabled:
            if resources[logical]["Type"] != "AWS::S3::Bucket":
                continue
            config = self._props(resolver, logical, resources[logical]).get("NotificationConfiguration", {})
            queue_configs = []
            for index, lambda_config in enumerate(config.get("LambdaConfigurations", [])):
                function = self._function_by_arn(resolver, lambda_config["Function"])
                url, arn = self._internal_queue(f"{self._stack}-trigger-s3-{logical}-{index}")
                queue_config: dict[str, Any] = {"QueueArn": arn, "Events": [lambda_config["Event"]]}
                if lambda_config.get("Filter"):
                    queue_config["Filter"] = {"Key": {"FilterRules": lambda_config["Filter"]["S3Key"]["Rules"]}}
                queue_configs.append(queue_config)
                sources.append(EventSource(function, "s3", url, resolver.attrs[(logical, "Arn")]))
            if queue_configs:
                s3.put_bucket_notification_configuration(
                    Bucket=resolver.refs[logical], NotificationConfiguration={"QueueConfigurations": queue_configs}
                )
        return sources

    def _wire_sns(self, resolver: Resolver, resources: Mapping[str, Any], enabled: list[str]) -> list[EventSource]:
        """Lambda subscriptions become SQS subscriptions with the same filter policy, scope and redrive policy."""
        sources: list[EventSource] = []
        sns = self.client("sns")
        for logical in enabled:
            if resources[logical]["Type"] != "AWS::SNS::Subscription":
                continue
            props = self._props(resolver, logical, resources[logical])
            if props.get("Protocol") != "lambda":
                continue
            function = self._function_by_arn(resolver, props["Endpoint"])
            url, arn = self._internal_queue(f"{self._stack}-trigger-sns-{logical}")
            attributes = {}
            for key in ("FilterPolicy", "FilterPolicyScope", "RedrivePolicy"):
                if key in props:
                    value = props[key]
                    attributes[key] = json.dumps(value) if isinstance(value, dict) else str(value)
            subscription = sns.subscribe(
                TopicArn=props["TopicArn"],
                Protocol="sqs",
                Endpoint=arn,
                Attributes=attributes,
                ReturnSubscriptionArn=True,
            )
            sources.append(EventSource(function, "sns", url, subscription["SubscriptionArn"]))
        return sources

    def _model_data_urls(self, endpoints: list[str]) -> dict[str, str]:
        sagemaker = self.client("sagemaker")
        urls: dict[str, str] = {}
        for endpoint in endpoints:
            config_name = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
            config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
            model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
            urls[endpoint] = model["PrimaryContainer"].get("ModelDataUrl", "")
        return urls

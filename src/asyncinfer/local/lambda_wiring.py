"""What Lambda and SNS would do with the template: its functions as the local Lambda runtime runs them, and their
S3 and SNS triggers wired through internal SQS queues, with the template's own event filter and filter policy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from asyncinfer.local.template import JSONValue, Resolver, Template, TemplateError, Unresolved, code_path

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from asyncinfer.local.moto_resources import MotoClients


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
    kind: Literal["s3", "sns"]
    queue_url: str
    source_arn: str  # bucket ARN, or the subscription ARN Lambda would report


def resolved_props(resolver: Resolver, logical: str, resource: Mapping[str, JSONValue]) -> Template:
    """A resource's properties with every intrinsic resolved (an error names the resource)."""
    try:
        props: Template = resolver.resolve(resource.get("Properties", {})) or {}
    except Unresolved as exc:
        raise TemplateError(f"{logical}: {exc}") from exc
    return props


def function_specs(
    resolver: Resolver, resources: Mapping[str, Template], enabled: list[str], root: Path
) -> dict[str, FunctionSpec]:
    """The template's functions, with their layers and their EventInvokeConfig (retries, on-failure destination)."""
    layers_by_arn = {
        resolver.refs[name]: str(code_path(resources[name]["Properties"]["Content"], root))
        for name in enabled
        if resources[name]["Type"] == "AWS::Lambda::LayerVersion"
    }
    functions: dict[str, FunctionSpec] = {}
    for logical in enabled:
        if resources[logical]["Type"] != "AWS::Lambda::Function":
            continue
        props = resolved_props(resolver, logical, resources[logical])
        variables = props.get("Environment", {}).get("Variables", {})
        functions[logical] = FunctionSpec(
            logical_id=logical,
            name=resolver.refs[logical],
            arn=resolver.attrs[(logical, "Arn")],
            code_dir=str(code_path(props["Code"], root)),
            layer_dirs=[layers_by_arn[arn] for arn in props.get("Layers", []) if arn in layers_by_arn],
            handler=props["Handler"],
            environment={k: str(v) for k, v in variables.items()},
            timeout=int(props.get("Timeout", 3)),
            memory=int(props.get("MemorySize", 128)),
        )
    for logical in enabled:
        if resources[logical]["Type"] != "AWS::Lambda::EventInvokeConfig":
            continue
        props = resolved_props(resolver, logical, resources[logical])
        target = next((f for f in functions.values() if f.name == props["FunctionName"]), None)
        if target is None:
            raise TemplateError(f"{logical}: no function named {props['FunctionName']}")
        target.max_retry_attempts = int(props.get("MaximumRetryAttempts", 2))
        target.max_event_age = int(props.get("MaximumEventAgeInSeconds", 21600))
        target.on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    return functions


def _function_by_arn(resolver: Resolver, arn: str) -> str:
    for (logical, attribute), value in resolver.attrs.items():
        if attribute == "Arn" and value == arn:
            return logical
    raise TemplateError(f"no function with ARN {arn}")


def _internal_queue(sqs: SQSClient, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name[:80])["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def wire_s3(
    clients: MotoClients, resolver: Resolver, resources: Mapping[str, Template], enabled: list[str], stack: str
) -> list[EventSource]:
    """Bucket NotificationConfiguration → Lambda becomes bucket → internal queue with the same event and filter."""
    sources: list[EventSource] = []
    for logical in enabled:
        if resources[logical]["Type"] != "AWS::S3::Bucket":
            continue
        config = resolved_props(resolver, logical, resources[logical]).get("NotificationConfiguration", {})
        queue_configs: list[JSONValue] = []
        for index, lambda_config in enumerate(config.get("LambdaConfigurations", [])):
            function = _function_by_arn(resolver, lambda_config["Function"])
            url, arn = _internal_queue(clients.sqs, f"{stack}-trigger-s3-{logical}-{index}")
            queue_config: Template = {"QueueArn": arn, "Events": [lambda_config["Event"]]}
            if lambda_config.get("Filter"):
                queue_config["Filter"] = {"Key": {"FilterRules": lambda_config["Filter"]["S3Key"]["Rules"]}}
            queue_configs.append(queue_config)
            sources.append(EventSource(function, "s3", url, resolver.attrs[(logical, "Arn")]))
        if queue_configs:
            clients.s3.put_bucket_notification_configuration(
                Bucket=resolver.refs[logical], NotificationConfiguration={"QueueConfigurations": queue_configs}
            )
    return sources


def wire_sns(
    clients: MotoClients, resolver: Resolver, resources: Mapping[str, Template], enabled: list[str], stack: str
) -> list[EventSource]:
    """Lambda subscriptions become SQS subscriptions with the same filter policy, scope and redrive policy."""
    sources: list[EventSource] = []
    for logical in enabled:
        if resources[logical]["Type"] != "AWS::SNS::Subscription":
            continue
        props = resolved_props(resolver, logical, resources[logical])
        if props.get("Protocol") != "lambda":
            continue
        function = _function_by_arn(resolver, props["Endpoint"])
        url, arn = _internal_queue(clients.sqs, f"{stack}-trigger-sns-{logical}")
        attributes: dict[str, str] = {}
        for key in ("FilterPolicy", "FilterPolicyScope", "RedrivePolicy"):
            if key in props:
                value = props[key]
                attributes[key] = json.dumps(value) if isinstance(value, dict) else str(value)
        subscription = clients.sns.subscribe(
            TopicArn=props["TopicArn"],
            Protocol="sqs",
            Endpoint=arn,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        sources.append(EventSource(function, "sns", url, subscription["SubscriptionArn"]))
    return sources

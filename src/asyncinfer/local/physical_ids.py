"""The names and ARNs CloudFormation would give the template's resources, known before any of them is created, so
that every property referring to one resolves (an explicit name in the template wins, as in CloudFormation)."""

from __future__ import annotations

from collections.abc import Mapping

from asyncinfer.local.template import JSONValue, Resolver, Unresolved

ACCOUNT = "123456789012"  # moto's default account


def generated_name(stack: str, logical_id: str, limit: int = 64, lower: bool = False) -> str:
    name = f"{stack}-{logical_id}"
    return (name.lower() if lower else name)[:limit]


def _explicit(resolver: Resolver, props: Mapping[str, JSONValue], key: str) -> str | None:
    if key not in props:
        return None
    try:
        return str(resolver.resolve(props[key]))
    except Unresolved:
        return None


def name_resource(resolver: Resolver, logical: str, resource: Mapping[str, JSONValue], stack: str, region: str) -> None:
    """Record the resource's Ref value and attributes in ``resolver``."""
    kind = resource["Type"]
    props = resource.get("Properties", {})
    refs, attrs = resolver.refs, resolver.attrs
    if kind == "AWS::S3::Bucket":
        name = _explicit(resolver, props, "BucketName") or generated_name(stack, logical, 63, lower=True)
        refs[logical] = name
        attrs.update(
            {
                (logical, "Arn"): f"arn:aws:s3:::{name}",
                (logical, "DomainName"): f"{name}.s3.amazonaws.com",
                (logical, "RegionalDomainName"): f"{name}.s3.{region}.amazonaws.com",
            }
        )
    elif kind == "AWS::SNS::Topic":
        name = _explicit(resolver, props, "TopicName") or generated_name(stack, logical, 256)
        arn = f"arn:aws:sns:{region}:{ACCOUNT}:{name}"
        refs[logical] = arn
        attrs.update({(logical, "TopicArn"): arn, (logical, "TopicName"): name})
    elif kind == "AWS::SQS::Queue":
        name = _explicit(resolver, props, "QueueName") or generated_name(stack, logical, 80)
        attrs.update({(logical, "Arn"): f"arn:aws:sqs:{region}:{ACCOUNT}:{name}", (logical, "QueueName"): name})
    elif kind == "AWS::DynamoDB::Table":
        name = _explicit(resolver, props, "TableName") or generated_name(stack, logical, 255)
        refs[logical] = name
        attrs[(logical, "Arn")] = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"
        attrs[(logical, "StreamArn")] = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}/stream/local"
    elif kind == "AWS::Events::EventBus":
        name = _explicit(resolver, props, "Name") or generated_name(stack, logical, 256)
        refs[logical] = name
        attrs.update({(logical, "Name"): name, (logical, "Arn"): f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{name}"})
    elif kind == "AWS::Events::Rule":
        name = _explicit(resolver, props, "Name") or generated_name(stack, logical, 64)
        refs[logical] = name
        # A rule on a custom bus has the bus in its ARN (what aws:SourceArn carries when it delivers).
        bus = resolver.resolve(props.get("EventBusName", "default"))
        bus_name = str(bus).rsplit("/", 1)[-1] if bus else "default"
        path = f"rule/{name}" if bus_name == "default" else f"rule/{bus_name}/{name}"
        attrs[(logical, "Arn")] = f"arn:aws:events:{region}:{ACCOUNT}:{path}"
    elif kind.startswith("AWS::SageMaker::"):
        short = kind.rsplit("::", 1)[1]
        key = {"Model": "ModelName", "EndpointConfig": "EndpointConfigName", "Endpoint": "EndpointName"}.get(short)
        name = (_explicit(resolver, props, key) if key else None) or generated_name(stack, logical, 63)
        path = {"Model": "model", "EndpointConfig": "endpoint-config", "Endpoint": "endpoint"}.get(short, short.lower())
        refs[logical] = f"arn:aws:sagemaker:{region}:{ACCOUNT}:{path}/{name.lower()}"
        if key:
            attrs[(logical, key)] = name
    elif kind == "AWS::Lambda::Function":
        name = _explicit(resolver, props, "FunctionName") or generated_name(stack, logical, 64)
        refs[logical] = name
        attrs[(logical, "Arn")] = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
    elif kind == "AWS::Lambda::LayerVersion":
        refs[logical] = f"arn:aws:lambda:{region}:{ACCOUNT}:layer:{generated_name(stack, logical)}:1"
    elif kind == "AWS::IAM::Role":
        name = _explicit(resolver, props, "RoleName") or generated_name(stack, logical, 64)
        refs[logical] = name
        attrs.update(
            {
                (logical, "Arn"): f"arn:aws:iam::{ACCOUNT}:role/{name}",
                (logical, "RoleId"): f"AROA{logical.upper()[:16]}",
            }
        )
    elif kind == "AWS::CloudWatch::Alarm":
        name = _explicit(resolver, props, "AlarmName") or generated_name(stack, logical, 255)
        refs[logical] = name
        attrs[(logical, "Arn")] = f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{name}"
    elif kind == "AWS::SNS::Subscription":
        refs[logical] = f"{resolver.resolve(props['TopicArn'])}:{logical}" if "TopicArn" in props else logical
    else:
        # Not emulated: a stable, recognisable placeholder keeps references to it resolvable.
        name = generated_name(stack, logical)
        refs[logical] = name
        service = kind.split("::")[1].lower()
        attrs[(logical, "Arn")] = f"arn:aws:{service}:{region}:{ACCOUNT}:local/{name}"

"""SageMaker calls as AWS authorizes them: the runtime REST API (invocations), the control plane (JSON) and the
Application Auto Scaling calls that scale an endpoint's variants.

SageMaker keeps resource names case-insensitively and lower-cases them in ARNs (``DescribeEndpoint`` of ``MyEndpoint``
answers ``…:endpoint/myendpoint``), so the ARNs checked here are lower-cased as well."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote

from asyncinfer.local.iam.checks import Check, MappedRequest, UnmappedRequest
from asyncinfer.local.iam.protocol_bodies import text

# POST /endpoints/NAME/<invocation kind>
_RUNTIME_PATH = re.compile(r"^/endpoints/([^/]+)/([a-z-]+)/?$")
_RUNTIME_OPERATIONS = {
    "invocations": "InvokeEndpoint",
    "async-invocations": "InvokeEndpointAsync",
    "invocations-response-stream": "InvokeEndpointWithResponseStream",
}
# Control-plane operations on one resource: operation → (parameter naming it, resource type in the ARN).
_CONTROL_OPERATIONS = {
    "DescribeEndpoint": ("EndpointName", "endpoint"),
    "UpdateEndpoint": ("EndpointName", "endpoint"),
    "UpdateEndpointWeightsAndCapacities": ("EndpointName", "endpoint"),
    "DeleteEndpoint": ("EndpointName", "endpoint"),
    "DescribeEndpointConfig": ("EndpointConfigName", "endpoint-config"),
    "DeleteEndpointConfig": ("EndpointConfigName", "endpoint-config"),
    "DescribeModel": ("ModelName", "model"),
    "DeleteModel": ("ModelName", "model"),
}
_CONTROL_ACCOUNT_OPERATIONS = frozenset({"ListEndpoints", "ListEndpointConfigs", "ListModels"})
_AUTOSCALING_OPERATIONS = frozenset(
    {
        "RegisterScalableTarget", "DeregisterScalableTarget", "DescribeScalableTargets", "PutScalingPolicy",
        "DeleteScalingPolicy", "DescribeScalingPolicies", "DescribeScalingActivities", "PutScheduledAction",
        "DeleteScheduledAction", "DescribeScheduledActions",
    }
)  # fmt: skip


def resource_arn(kind: str, name: str, region: str, account: str) -> str:
    """``arn:aws:sagemaker:REGION:ACCOUNT:KIND/name`` with the name lower-cased as SageMaker does."""
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"


def is_runtime_path(path: str) -> bool:
    """Whether a request signed for ``sagemaker`` is a runtime invocation (REST path) rather than a control call."""
    return path.startswith("/endpoints/")


def map_runtime(method: str, path: str, region: str, account: str) -> MappedRequest:
    """``POST /endpoints/NAME/async-invocations`` → sagemaker:InvokeEndpointAsync on the endpoint, and the like."""
    found = _RUNTIME_PATH.match(path)
    operation = _RUNTIME_OPERATIONS.get(found.group(2), "") if found else ""
    if method != "POST" or not found or not operation:
        raise UnmappedRequest(f"sagemaker runtime: {method} {path} is not mapped")
    arn = resource_arn("endpoint", unquote(found.group(1)), region, account)
    return MappedRequest(f"sagemaker:{operation}", (Check(f"sagemaker:{operation}", arn),))


def control_checks(operation: str, params: Mapping[str, object], region: str, account: str) -> tuple[Check, ...]:
    """The checks of one SageMaker control-plane call."""
    action = f"sagemaker:{operation}"
    if operation in _CONTROL_OPERATIONS:
        parameter, kind = _CONTROL_OPERATIONS[operation]
        return (Check(action, resource_arn(kind, text(params, parameter, action), region, account)),)
    if operation == "ListTags":
        return (Check(action, text(params, "ResourceArn", action)),)
    if operation in _CONTROL_ACCOUNT_OPERATIONS:
        return (Check(action, "*"),)
    raise UnmappedRequest(f"{action} is not mapped to IAM checks")


def autoscaling_checks(operation: str, params: Mapping[str, object]) -> tuple[Check, ...]:
    """Application Auto Scaling calls: checked on ``*`` (a scalable target's ARN holds an id AWS generates, which the
    request does not carry), with the service namespace and scalable dimension as condition keys when given."""
    if operation not in _AUTOSCALING_OPERATIONS:
        raise UnmappedRequest(f"application-autoscaling:{operation} is not mapped to IAM checks")
    context = {
        key: str(params[field])
        for field, key in (
            ("ServiceNamespace", "application-autoscaling:service-namespace"),
            ("ScalableDimension", "application-autoscaling:scalable-dimension"),
        )
        if isinstance(params.get(field), str)
    }
    return (Check(f"application-autoscaling:{operation}", "*", context),)

"""Changing the endpoint's InstanceType on a deployed stack, which AWS refuses while autoscaling is on.

SageMaker refuses UpdateEndpoint when it would change the instance type of a variant registered as a scalable
target (SageMaker developer guide, "Update endpoints that use auto scaling"), so CloudFormation would roll the whole
update back. In one update CloudFormation removes a resource only after updating the others: turning AutoScaling off
in the same deploy does not help. ``asyncinfer deploy`` therefore refuses the change and names the three deploys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import boto3


def deployed_parameters(session: boto3.Session, stack_name: str) -> dict[str, str] | None:
    """The deployed stack's parameter values (DescribeStacks), or None when there is no such stack."""
    from botocore.exceptions import ClientError

    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])}


def refusal(stack_name: str, deployed: Mapping[str, str] | None, overrides: Mapping[str, str]) -> str | None:
    """Why the deploy would fail on AWS because of autoscaling, or None.

    A parameter absent from ``overrides`` keeps its deployed value (sam deploy passes UsePreviousValue for it). A
    stack deployed before the AutoScaling parameter existed has autoscaling on.
    """
    if deployed is None or "InstanceType" not in overrides:
        return None
    current, wanted = deployed.get("InstanceType"), overrides["InstanceType"]
    if current is None or current == wanted or deployed.get("AutoScaling", "enabled") != "enabled":
        return None
    base = f"asyncinfer --stack-name {stack_name} deploy"
    return (
        f"AWS refuses to change the instance type ({current} to {wanted}) of an endpoint variant registered with "
        "Application Auto Scaling, and the stack update would roll back. Deploy three times:\n"
        f"  1. {base} --parameter AutoScaling=disabled    (removes the scalable target and its policies)\n"
        f"  2. {base} --parameter AutoScaling=disabled --parameter InstanceType={wanted}\n"
        f"  3. {base} --parameter AutoScaling=enabled"
    )

"""On the local stack, as on AWS, the template's scalable target is registered, and UpdateEndpoint refuses a new
instance type for the variant while it is (SageMaker developer guide, "Update endpoints that use auto scaling")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncinfer.local.stack import RunningStack
from tests.support import local_stack


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with local_stack(tmp_path_factory.mktemp("stack")) as stack:
        yield stack


def _config_like_the_current_one(running: RunningStack, name: str, instance_type: str | None) -> str:
    """A new EndpointConfig that differs from the endpoint's only in its InstanceType, as CloudFormation creates."""
    assert running.stack is not None
    sagemaker = running.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=running.stack.outputs["EndpointName"])
    current = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variants = [{**v, "InstanceType": instance_type or v["InstanceType"]} for v in current["ProductionVariants"]]
    sagemaker.create_endpoint_config(
        EndpointConfigName=name, ProductionVariants=variants, AsyncInferenceConfig=current["AsyncInferenceConfig"]
    )
    return name


def test_the_templates_scalable_target_and_policies_are_registered(running: RunningStack) -> None:
    assert running.stack is not None
    endpoint = running.stack.outputs["EndpointName"]
    autoscaling = running.client("application-autoscaling")
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [
        (f"endpoint/{endpoint}/variant/AllTraffic", 0, 2)
    ]
    policies = autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert sorted(p["PolicyType"] for p in policies) == ["StepScaling", "TargetTrackingScaling"]
    # Registered and driven by the local stack's autoscaling (endpoint_life.py): no longer listed as not emulated.
    assert "AWS::ApplicationAutoScaling::ScalableTarget" not in running.stack.not_emulated


def test_update_endpoint_with_another_instance_type_is_refused_while_registered(running: RunningStack) -> None:
    assert running.stack is not None
    sagemaker = running.client("sagemaker")
    endpoint = running.stack.outputs["EndpointName"]
    before = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    bigger = _config_like_the_current_one(running, "bigger", "ml.m5.xlarge")
    with pytest.raises(sagemaker.exceptions.ClientError) as refused:
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=bigger)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "registered as a scalable target" in refused.value.response["Error"]["Message"]
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == before


def test_update_endpoint_keeping_the_instance_type_is_accepted(running: RunningStack) -> None:
    assert running.stack is not None
    sagemaker = running.client("sagemaker")
    endpoint = running.stack.outputs["EndpointName"]
    same = _config_like_the_current_one(running, "same-type", None)
    sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=same)
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == same


def test_with_autoscaling_disabled_nothing_is_registered_and_the_instance_type_can_change(
    tmp_path: Path,
) -> None:
    with local_stack(tmp_path, parameters={"AutoScaling": "disabled"}) as stack:
        assert stack.stack is not None
        targets = stack.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")
        assert targets["ScalableTargets"] == []
        bigger = _config_like_the_current_one(stack, "bigger", "ml.m5.xlarge")
        stack.client("sagemaker").update_endpoint(
            EndpointName=stack.stack.outputs["EndpointName"], EndpointConfigName=bigger
        )
        endpoint = stack.client("sagemaker").describe_endpoint(EndpointName=stack.stack.outputs["EndpointName"])
        assert endpoint["EndpointConfigName"] == bigger

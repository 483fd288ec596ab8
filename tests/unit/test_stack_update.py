"""What a parameter change does to the local stack, decided as CloudFormation decides it (no AWS call)."""

from __future__ import annotations

from typing import Any

import pytest

from asyncinfer.local.stack_update import UpdateRefused, plan_update, refers_to
from asyncinfer.local.template import TemplateError, load_sam, parameter_values
from tests.support import ROOT

NEW_URL = "s3://sagemaker-us-east-1-123456789012/async-inference-pipeline/models/abc/model.tar.gz"


@pytest.fixture(scope="module")
def sam() -> Any:
    return load_sam(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def current(sam: Any) -> dict[str, str]:
    return parameter_values(sam, {})


def test_a_new_model_replaces_model_and_config_and_updates_the_endpoint(sam: Any, current: dict[str, str]) -> None:
    plan = plan_update(sam, "s", "us-east-1", current, {"ModelDataUrl": NEW_URL})
    assert plan.replaced == ["Model", "EndpointConfig"]
    assert plan.endpoint_updated == ["Endpoint"]
    assert plan.parameters["ModelDataUrl"] == NEW_URL
    # The execution role's policy follows the URL (ReadCustomModelArtifact): updated in place, then enforced.
    assert plan.policies_changed == ["SageMakerExecutionPolicy"]
    assert plan.not_applied == []
    assert plan.previous_parameters == current


def test_a_config_only_change_keeps_the_model(sam: Any, current: dict[str, str]) -> None:
    plan = plan_update(sam, "s", "us-east-1", current, {"MaxConcurrentInvocationsPerInstance": "8"})
    assert plan.replaced == ["EndpointConfig"]
    assert plan.endpoint_updated == ["Endpoint"]


def test_the_same_parameters_change_nothing(sam: Any, current: dict[str, str]) -> None:
    plan = plan_update(sam, "s", "us-east-1", current, dict(current))
    assert plan.empty and not plan.not_applied


@pytest.mark.parametrize(
    ("override", "named"), [({"LogLevel": "DEBUG"}, "Function"), ({"AutoScaling": "disabled"}, "ScalableTarget")]
)
def test_changes_the_running_stack_cannot_apply_are_refused_by_name(
    sam: Any, current: dict[str, str], override: dict[str, str], named: str
) -> None:
    with pytest.raises(UpdateRefused, match=named):
        plan_update(sam, "s", "us-east-1", current, override)


@pytest.mark.parametrize(
    "override",
    [
        {"ModelDataUrl": "https://bucket/model.tar.gz"},
        {"MaxConcurrentInvocationsPerInstance": "0"},
        {"MaxConcurrentInvocationsPerInstance": "nan"},  # float() takes it, and NaN passes every bound
        {"MaxConcurrentInvocationsPerInstance": "1e1"},
        {"Nope": "1"},
    ],
)
def test_values_cloudformation_refuses_are_refused(sam: Any, current: dict[str, str], override: dict[str, str]) -> None:
    with pytest.raises(TemplateError):
        plan_update(sam, "s", "us-east-1", current, override)


def test_references_are_found_in_ref_getatt_and_sub() -> None:
    assert refers_to({"Ref": "Model"}, "Model")
    assert refers_to({"a": [{"Fn::GetAtt": ["Model", "ModelName"]}]}, "Model")
    assert refers_to({"Fn::GetAtt": "Model.ModelName"}, "Model")
    assert refers_to({"Fn::Sub": "arn:${Model.Arn}/x"}, "Model")
    assert refers_to({"Fn::Sub": ["${Model}", {}]}, "Model")
    assert not refers_to({"Ref": "ModelBucket"}, "Model")
    assert not refers_to({"Fn::Sub": "${ModelBucket}"}, "Model")


def test_replacing_a_custom_named_model_is_refused_as_cloudformation_refuses_it(
    sam: Any, current: dict[str, str]
) -> None:
    import copy

    named = copy.deepcopy(sam)
    named["Resources"]["Model"]["Properties"]["ModelName"] = "my-model"
    with pytest.raises(UpdateRefused, match="custom-named resource requires replacing"):
        plan_update(named, "s", "us-east-1", current, {"ModelDataUrl": NEW_URL})

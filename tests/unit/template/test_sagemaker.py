"""The SageMaker model, endpoint configuration and endpoint, and the scaling to zero and back."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from asyncinfer.model.framework_limits import DEFAULT_MAX_REQUEST_BYTES, limits_for
from tests.unit.template.support import (
    REGISTRIES,
    Resolver,
    depends_on,
)


# ----------------------------------------------------------------------------------------------------------- SageMaker
def test_default_image_is_the_regions_builtin_xgboost(raw: dict[str, Any], resources: dict[str, Any]) -> None:
    image = resources["Model"]["Properties"]["PrimaryContainer"]["Image"]
    assert Resolver(raw).resolve(image) == "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    assert Resolver(raw, region="cn-north-1").resolve(image) == (
        "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1"
    )


def test_registry_mapping_is_well_formed(raw: dict[str, Any]) -> None:
    mapping = raw["Mappings"]["XGBoostRegistry"]
    assert len(mapping) >= 20
    for region, entry in mapping.items():
        assert re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", region), region
        assert set(entry) == {"Account"}
        assert re.fullmatch(r"\d{12}", entry["Account"]), (region, entry)
    assert mapping["us-east-1"]["Account"] == "683313688378"


def test_registry_mapping_equals_the_reference_list(raw: dict[str, Any]) -> None:
    registries = json.loads(REGISTRIES.read_text())
    assert registries["repository"] == "sagemaker-xgboost"
    assert registries["tag"] == "1.7-1"
    mapping = {region: entry["Account"] for region, entry in raw["Mappings"]["XGBoostRegistry"].items()}
    assert mapping == registries["registries"]


def test_endpoint_config_waits_for_the_role_policy(resources: dict[str, Any]) -> None:
    assert "SageMakerExecutionPolicy" in depends_on(resources["EndpointConfig"])
    assert "SageMakerExecutionPolicy" in depends_on(resources["Model"])
    assert resources["Model"]["Properties"]["ExecutionRoleArn"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
    assert resources["Endpoint"]["Properties"]["EndpointConfigName"] == {
        "Fn::GetAtt": ["EndpointConfig", "EndpointConfigName"]
    }


def test_async_inference_config(raw: dict[str, Any], resources: dict[str, Any]) -> None:
    properties = resources["EndpointConfig"]["Properties"]
    (variant,) = properties["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["InitialInstanceCount"] >= 1, "AWS minimum; zero is reached through autoscaling"
    assert variant["InstanceType"] == {"Ref": "InstanceType"}
    assert variant["ModelName"] == {"Fn::GetAtt": ["Model", "ModelName"]}
    config = properties["AsyncInferenceConfig"]
    assert config["ClientConfig"] == {
        "MaxConcurrentInvocationsPerInstance": {"Ref": "MaxConcurrentInvocationsPerInstance"}
    }
    output = Resolver(raw).resolve(config["OutputConfig"])
    # Outputs and failures go to the output bucket, which triggers nothing.
    assert output["S3OutputPath"] == "s3://<OutputBucket>/output/"
    assert output["S3FailurePath"] == "s3://<OutputBucket>/failure/"
    assert output["NotificationConfig"]["SuccessTopic"] == "<SuccessTopic>"
    assert output["NotificationConfig"]["ErrorTopic"] == "<ErrorTopic>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("none", None),
        ("success", ["SUCCESS_NOTIFICATION_TOPIC"]),
        ("error", ["ERROR_NOTIFICATION_TOPIC"]),
        ("both", ["SUCCESS_NOTIFICATION_TOPIC", "ERROR_NOTIFICATION_TOPIC"]),
    ],
)
def test_include_inference_response_in(
    raw: dict[str, Any], resources: dict[str, Any], value: str, expected: list[str] | None
) -> None:
    assert value in raw["Parameters"]["IncludeInferenceResponseIn"]["AllowedValues"]
    config = resources["EndpointConfig"]["Properties"]["AsyncInferenceConfig"]
    notification = Resolver(raw, IncludeInferenceResponseIn=value).resolve(config)["OutputConfig"]["NotificationConfig"]
    assert notification.get("IncludeInferenceResponseIn") == expected


@pytest.mark.parametrize(
    ("framework", "environment"),
    [
        ("none", None),
        (
            "TorchServe",
            {
                "TS_MAX_REQUEST_SIZE": "100000000",
                "TS_MAX_RESPONSE_SIZE": "100000000",
                "TS_DEFAULT_RESPONSE_TIMEOUT": "1000",
            },
        ),
        (
            "MMS",
            {
                "MMS_MAX_REQUEST_SIZE": "2000000000",
                "MMS_MAX_RESPONSE_SIZE": "2000000000",
                "MMS_DEFAULT_RESPONSE_TIMEOUT": "900",
            },
        ),
    ],
)
def test_model_server_framework_environment(
    raw: dict[str, Any], resources: dict[str, Any], framework: str, environment: dict[str, str] | None
) -> None:
    container = Resolver(raw, ModelServerFramework=framework).resolve(
        resources["Model"]["Properties"]["PrimaryContainer"]
    )
    assert container.get("Environment") == environment
    # What the local model server enforces comes from that Environment: the raised limits, not the defaults.
    limits = limits_for(framework, container.get("Environment") or {})
    if environment is None:
        assert limits is None
    else:
        assert limits is not None
        request, response, timeout = limits.variables
        assert limits.max_request_bytes == int(environment[request]) > DEFAULT_MAX_REQUEST_BYTES
        assert limits.max_response_bytes == int(environment[response])
        assert limits.response_timeout_seconds == float(environment[timeout])


@pytest.mark.parametrize("framework", ["none", "TorchServe", "MMS"])
def test_an_inference_program_is_named_to_the_container_with_any_framework(
    raw: dict[str, Any], resources: dict[str, Any], framework: str
) -> None:
    container = resources["Model"]["Properties"]["PrimaryContainer"]
    without = Resolver(raw, ModelServerFramework=framework).resolve(container).get("Environment") or {}
    named = Resolver(raw, ModelServerFramework=framework, InferenceProgram="inference.py").resolve(container)
    # The scikit-learn container finds the script only through these two; the framework's limits stay as they were.
    assert named["Environment"] == {
        **without,
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    }


# ----------------------------------------------------------------------------------------------------------- scaling
def test_scales_to_zero_and_back(raw: dict[str, Any], resources: dict[str, Any]) -> None:
    assert raw["Parameters"]["MinInstances"]["Default"] == 0
    target = resources["ScalableTarget"]["Properties"]
    assert target["MinCapacity"] == {"Ref": "MinInstances"}
    assert target["MaxCapacity"] == {"Ref": "MaxInstances"}
    assert target["ServiceNamespace"] == "sagemaker"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target["ResourceId"] == {"Fn::Sub": "endpoint/${Endpoint.EndpointName}/variant/AllTraffic"}

    endpoint_dimension = [{"Name": "EndpointName", "Value": {"Fn::GetAtt": ["Endpoint", "EndpointName"]}}]
    tracking = resources["BacklogTargetTrackingPolicy"]["Properties"]
    assert tracking["PolicyType"] == "TargetTrackingScaling"
    assert tracking["ScalingTargetId"] == {"Ref": "ScalableTarget"}
    configuration = tracking["TargetTrackingScalingPolicyConfiguration"]
    assert configuration["TargetValue"] == {"Ref": "TargetBacklogPerInstance"}
    assert configuration.get("DisableScaleIn", False) is False, "scale-in is what reaches zero"
    metric = configuration["CustomizedMetricSpecification"]
    assert metric["MetricName"] == "ApproximateBacklogSizePerInstance"
    assert metric["Namespace"] == "AWS/SageMaker"
    assert metric["Dimensions"] == endpoint_dimension

    step = resources["ScaleOutFromZeroPolicy"]["Properties"]
    assert step["PolicyType"] == "StepScaling"
    assert step["ScalingTargetId"] == {"Ref": "ScalableTarget"}
    step_configuration = step["StepScalingPolicyConfiguration"]
    assert step_configuration["AdjustmentType"] == "ChangeInCapacity"
    assert step_configuration["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]

    alarm = resources["HasBacklogWithoutCapacityAlarm"]["Properties"]
    assert alarm["Namespace"] == "AWS/SageMaker"
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity"
    assert alarm["Dimensions"] == endpoint_dimension
    assert alarm["AlarmActions"] == [{"Ref": "ScaleOutFromZeroPolicy"}]
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"

"""On the local stack, as on AWS, the template's scalable target is registered, and UpdateEndpoint refuses a new
instance type for the variant while it is (SageMaker developer guide, "Update endpoints that use auto scaling")."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from async_pipeline import s3_uris
from click.testing import CliRunner, Result

from asyncinfer.local.stack import RunningStack
from asyncinfer.model import demo
from tests.support import local_stack


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    # Instances that start and stop at once: the tests scale the variant themselves (_scale).
    with local_stack(tmp_path_factory.mktemp("stack"), instance_start_seconds=0, instance_stop_seconds=0) as stack:
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
    assert _in_service(running, endpoint)["EndpointConfigName"] == same  # once the endpoint emulator took it


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
        assert _in_service(stack, stack.stack.outputs["EndpointName"])["EndpointConfigName"] == bigger


def _in_service(running: RunningStack, endpoint: str, timeout: float = 30.0) -> dict[str, Any]:
    """DescribeEndpoint once the update in progress is over (as CloudFormation waits)."""
    sagemaker = running.client("sagemaker")
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sagemaker.describe_endpoint(EndpointName=endpoint)
        if described["EndpointStatus"] != "Updating" or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


# --- asyncinfer deploy against the running local stack (a new model, a failed one, a rollback) -------------------


def _deploy(running: RunningStack, *args: str) -> Result:
    from asyncinfer.cli import main

    env = {"ASYNCINFER_STATE_DIR": str(running.config.state_dir)}
    return CliRunner().invoke(main, ["deploy", *args], env=env, catch_exceptions=False)


def _served(running: RunningStack) -> tuple[str, str, str]:
    """The endpoint's status, config and its model's artifact, as DescribeEndpoint and friends say."""
    assert running.stack is not None
    sagemaker = running.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=running.stack.outputs["EndpointName"])
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    return endpoint["EndpointStatus"], endpoint["EndpointConfigName"], model["PrimaryContainer"]["ModelDataUrl"]


def _scale(running: RunningStack, endpoint: str, instances: int) -> None:
    """What Application Auto Scaling does: the variant's desired count in the control plane; the local stack's
    instances follow (at once in this module) and the endpoint is InService again. An update with
    RetainAllVariantProperties keeps that count (0 here: nothing wakes the endpoint before the low alarm's 15
    minutes, which no test here waits for)."""
    sagemaker = running.client("sagemaker")
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": instances}],
    )
    deadline = time.monotonic() + 10
    while True:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
        current = described["ProductionVariants"][0].get("CurrentInstanceCount")
        if described["EndpointStatus"] == "InService" and current == instances:
            break
        assert time.monotonic() < deadline, f"the endpoint did not reach {instances} instance(s): {described}"
        time.sleep(0.1)
    assert running.emulator.stats(endpoint)["instances"] == instances


def _model_name(running: RunningStack) -> str:
    assert running.stack is not None
    sagemaker = running.client("sagemaker")
    config = sagemaker.describe_endpoint(EndpointName=running.stack.outputs["EndpointName"])["EndpointConfigName"]
    name: str = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]
    return name


def _infer(running: RunningStack, payload: bytes, *, wait: bool = True) -> str:
    """InvokeEndpointAsync on a staged copy of ``payload``; the output object's URI (waited for unless not)."""
    assert running.stack is not None
    bucket = running.stack.outputs["OutputBucketName"]
    key = f"staging/{uuid.uuid4().hex}.csv"
    running.client("s3").put_object(Bucket=bucket, Key=key, Body=payload)
    answer = (
        boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=running.config.region)
        .client("sagemaker-runtime", endpoint_url=running.sagemaker_runtime_url)
        .invoke_endpoint_async(
            EndpointName=running.stack.outputs["EndpointName"],
            InputLocation=f"s3://{bucket}/{key}",
            ContentType="text/csv",
            InvocationTimeoutSeconds=60,
        )
    )
    if wait:
        _read(running, answer["OutputLocation"])
    return answer["OutputLocation"]


def _read(running: RunningStack, uri: str, timeout: float = 30.0) -> bytes:
    bucket, key = s3_uris.parse_uri(uri)
    deadline = time.monotonic() + timeout
    while True:
        try:
            body: bytes = running.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            return body
        except running.client("s3").exceptions.NoSuchKey:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _predictions(body: bytes) -> np.ndarray:  # type: ignore[type-arg]
    return np.loadtxt(io.BytesIO(body), delimiter=",", ndmin=1)


def test_a_new_model_replaces_model_and_config_and_serves_the_requests_still_queued(
    running: RunningStack, tmp_path: Path
) -> None:
    assert running.stack is not None
    endpoint = running.stack.outputs["EndpointName"]
    rows = demo.make_input_rows(3, seed=5)
    other = demo.train_demo_model(seed=99, base_score=0.8)
    expected_before, expected_after = demo.predict_rows(demo.train_demo_model(), rows), demo.predict_rows(other, rows)
    assert not np.allclose(expected_before, expected_after), (
        "the two models must disagree for the test to mean anything"
    )
    np.testing.assert_allclose(
        _predictions(_read(running, _infer(running, demo.rows_to_csv(rows)))), expected_before, rtol=1e-6
    )
    _, old_config, _ = _served(running)

    old_model = _model_name(running)
    _scale(running, endpoint, 0)  # a request waits in the queue through the update
    queued = _infer(running, demo.rows_to_csv(rows), wait=False)
    notifications = running.emulator.stats(endpoint)["notifications_published"]
    artifact = demo.build_model_artifact(tmp_path / "model.tar.gz", booster=other)
    result = _deploy(running, "--model-file", str(artifact))
    assert result.exit_code == 0, result.output
    status, new_config, url = _served(running)
    assert status == "InService" and new_config != old_config
    assert url.startswith("s3://sagemaker-us-east-1-123456789012/async-inference-pipeline/models/")
    assert url.endswith("/model.tar.gz") and "uploaded" in result.output
    # SageMaker's TestNotification to each topic (the handlers ignore it), and nothing else yet.
    assert running.emulator.stats(endpoint)["notifications_published"] == notifications + 2
    # The request stayed queued through the update (the variant kept its 0 instances); the instance that starts
    # next runs the new model, which serves it, as it serves every new one.
    assert running.emulator.stats(endpoint)["queued"] == 1
    _scale(running, endpoint, 1)
    np.testing.assert_allclose(_predictions(_read(running, queued)), expected_after, rtol=1e-6)
    np.testing.assert_allclose(
        _predictions(_read(running, _infer(running, demo.rows_to_csv(rows)))), expected_after, rtol=1e-6
    )
    # CloudFormation's cleanup: the replaced config and model are gone.
    sagemaker = running.client("sagemaker")
    assert old_config not in {c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]}
    assert old_model not in {m["ModelName"] for m in sagemaker.list_models()["Models"]}

    # Deploying the same artifact again uploads nothing and changes nothing.
    again = _deploy(running, "--model-file", str(artifact))
    assert again.exit_code == 0, again.output
    assert "already uploaded" in again.output and "no change" in again.output
    assert _served(running)[1] == new_config


def test_a_model_that_does_not_load_rolls_the_update_back(running: RunningStack, tmp_path: Path) -> None:
    before = _served(running)
    broken = tmp_path / "model.tar.gz"
    broken.write_bytes(b"not a gzip-compressed tar")
    result = _deploy(running, "--model-file", str(broken))
    assert result.exit_code == 1
    assert "could not be started" in result.output and "gzip" in result.output
    assert _served(running) == before  # back on its config, InService, still the previous model
    sagemaker = running.client("sagemaker")
    configs = {c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]}
    models = {m["ModelName"] for m in sagemaker.list_models()["Models"]}
    assert before[1] in configs and len(models) == 1, "the failed update's model and config were deleted"


def test_rolling_back_is_deploying_the_previous_url(running: RunningStack, tmp_path: Path) -> None:
    previous = _served(running)[2]
    rows = demo.make_input_rows(2, seed=6)
    before = _predictions(_read(running, _infer(running, demo.rows_to_csv(rows))))
    other = demo.train_demo_model(seed=7, base_score=0.2)
    artifact = demo.build_model_artifact(tmp_path / "model.tar.gz", booster=other)
    assert _deploy(running, "--model-file", str(artifact)).exit_code == 0
    assert _served(running)[2] != previous
    np.testing.assert_allclose(
        _predictions(_read(running, _infer(running, demo.rows_to_csv(rows)))), demo.predict_rows(other, rows), rtol=1e-6
    )
    result = _deploy(running, "--model-data-url", previous)
    assert result.exit_code == 0, result.output
    assert _served(running)[2] == previous
    np.testing.assert_allclose(_predictions(_read(running, _infer(running, demo.rows_to_csv(rows)))), before, rtol=1e-6)


def test_a_parameter_change_alone_keeps_the_deployed_model(running: RunningStack) -> None:
    _, config, url = _served(running)
    result = _deploy(running, "--parameter", "MaxConcurrentInvocationsPerInstance=8")
    assert result.exit_code == 0, result.output
    assert "uploaded" not in result.output and "replaced: EndpointConfig;" in result.output
    _, new_config, new_url = _served(running)
    assert (new_config != config, new_url) == (True, url)
    sagemaker = running.client("sagemaker")
    described = sagemaker.describe_endpoint_config(EndpointConfigName=new_config)
    assert described["AsyncInferenceConfig"]["ClientConfig"]["MaxConcurrentInvocationsPerInstance"] == 8


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        ("LogLevel=DEBUG", "Restart it with the parameter"),
        ("InstanceType=ml.m5.xlarge", "registered as a scalable target"),
        ("ModelDataUrl=s3://x/y", "--model-data-url"),
        ("MaxConcurrentInvocationsPerInstance=0", "must be at least"),
    ],
)
def test_what_the_local_stack_or_aws_refuses_changes_nothing(
    running: RunningStack, parameter: str, message: str
) -> None:
    before = _served(running)
    sagemaker = running.client("sagemaker")
    configs = {c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]}
    result = _deploy(running, "--model-data-url", before[2], "--parameter", parameter)
    assert result.exit_code != 0
    assert message in result.output
    assert _served(running) == before
    assert {c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]} == configs

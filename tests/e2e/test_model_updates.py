"""A new model reaches the endpoint: `asyncinfer deploy` with another artifact changes the predictions of the files
dropped after it, and deploying the previous ModelDataUrl brings the old ones back (locally, or on the deployed stack
AWS_SAM_STACK_NAME names: there each deploy is a `sam deploy`, minutes long)."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner, Result

from asyncinfer import target
from asyncinfer.model import demo
from tests.support import ResultCollector

TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "1800" if os.environ.get("AWS_SAM_STACK_NAME") else "120"))


def _deploy(stack: target.Target, *args: str) -> Result:
    from asyncinfer.cli import main

    if stack.state_dir is not None:
        return CliRunner().invoke(main, ["deploy", *args], env={"ASYNCINFER_STATE_DIR": str(stack.state_dir)})
    return CliRunner().invoke(main, ["--stack-name", stack.name, "--region", stack.region, "deploy", *args])


def _model_data_url(stack: target.Target) -> str:
    sagemaker = stack.client("sagemaker")
    config = sagemaker.describe_endpoint(EndpointName=stack.outputs["EndpointName"])["EndpointConfigName"]
    variant = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
    url: str = sagemaker.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]["ModelDataUrl"]
    return url


def _predicted(stack: target.Target, results: ResultCollector, rows: Any) -> Any:
    key = f"e2e/{uuid.uuid4().hex[:8]}/model-update.csv"
    stack.client("s3").put_object(Bucket=stack.outputs["InputBucketName"], Key=key, Body=demo.rows_to_csv(rows))
    events = results.wait_for([key], TIMEOUT)[key]
    assert events, f"no result event for {key} within {TIMEOUT} s"
    detail = events[0].detail
    assert detail["status"] == "COMPLETED", detail
    bucket, _, output = detail["outputLocation"].removeprefix("s3://").partition("/")
    body = stack.client("s3").get_object(Bucket=bucket, Key=output)["Body"].read()
    return np.loadtxt(io.BytesIO(body), delimiter=",", ndmin=1)


def test_predictions_change_with_the_model_and_come_back_on_rollback(
    stack: target.Target, results: ResultCollector, tmp_path: Path
) -> None:
    rows = demo.make_input_rows(4, seed=31)
    current = demo.predict_rows(demo.train_demo_model(), rows)
    other = demo.train_demo_model(seed=99, base_score=0.8)
    assert not np.allclose(current, demo.predict_rows(other, rows)), "the two models must disagree"
    np.testing.assert_allclose(_predicted(stack, results, rows), current, rtol=1e-6)
    previous = _model_data_url(stack)

    deployed = _deploy(stack, "--model-file", str(demo.build_model_artifact(tmp_path / "model.tar.gz", booster=other)))
    try:
        assert deployed.exit_code == 0, deployed.output
        assert _model_data_url(stack) != previous
        np.testing.assert_allclose(_predicted(stack, results, rows), demo.predict_rows(other, rows), rtol=1e-6)
    finally:
        rolled_back = _deploy(stack, "--model-data-url", previous)
    assert rolled_back.exit_code == 0, rolled_back.output
    assert _model_data_url(stack) == previous
    np.testing.assert_allclose(_predicted(stack, results, rows), current, rtol=1e-6)


def test_a_dry_run_changes_nothing(stack: target.Target, tmp_path: Path) -> None:
    before = _model_data_url(stack)
    artifact = demo.build_model_artifact(tmp_path / "model.tar.gz", booster=demo.train_demo_model(seed=5))
    result = _deploy(stack, "--dry-run", "--model-file", str(artifact))
    assert result.exit_code == 0, result.output
    assert "would upload" in result.output
    if stack.is_local:  # on AWS the dry run prints the sam commands instead
        assert "would replace: Model, EndpointConfig" in result.output
    assert _model_data_url(stack) == before

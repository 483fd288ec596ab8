"""The image demo end to end on a local stack: ContainerImage selects the script-mode stand-in, the digits artifact
is put at ModelDataUrl, PNGs dropped in the input bucket come back as the digits drawn, a bad one as the model's
error. One small stack of its own (it needs another ContainerImage and artifact than the shared ones)."""

from __future__ import annotations

import json

import pytest

from asyncinfer import job_results, target
from asyncinfer.cli.demo import use_digits_model
from asyncinfer.local.stack import LocalConfig, read_state
from asyncinfer.model import digits
from tests.samples import ROOT
from tests.support import ResultCollector, local_stack


def test_pngs_come_back_as_predicted_digits(tmp_path_factory: pytest.TempPathFactory) -> None:
    state_dir = tmp_path_factory.mktemp("digits-stack")
    probe = LocalConfig(root=ROOT, state_dir=state_dir)
    use_digits_model(probe)
    with local_stack(
        state_dir, parameters=probe.parameters, demo_model=probe.demo_model, retry_delays=(0.2, 0.2)
    ) as running:
        assert running.model_server == "script"
        state = read_state(state_dir)
        assert state["model_server"] == "script" and "ScriptMode" in state["not_emulated"]
        stack = target.local(state_dir)
        collector = ResultCollector(stack)
        try:
            s3 = stack.client("s3")
            bucket = stack.outputs["InputBucketName"]
            drawn = {f"digits/{i}.png": (digit, png) for i, (digit, png) in enumerate(digits.held_out_pngs(3))}
            for key, (_, png) in drawn.items():
                s3.put_object(Bucket=bucket, Key=key, Body=png)
            s3.put_object(Bucket=bucket, Key="digits/broken.png", Body=b"not a png")
            events = collector.wait_for([*drawn, "digits/broken.png"], timeout=60)
        finally:
            collector.stop()
        predicted = {}
        for key in drawn:
            (event,) = events[key]
            assert event.status == "COMPLETED", event.detail
            response = event.detail.get("inferenceResponse") or {}
            data, _ = job_results.prediction(
                s3, response.get("content"), response.get("encoding"), event.detail.get("outputLocation")
            )
            assert data is not None
            predicted[key] = json.loads(data)["digit"]
        assert sum(predicted[key] == digit for key, (digit, _) in drawn.items()) >= 2
        failed = events["digits/broken.png"][-1]
        assert failed.status == "FAILED"
        assert "the body is not a PNG image" in str(failed.detail.get("failureReason")), failed.detail

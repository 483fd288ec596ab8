"""The demo model, its artifact, and loading it: from a file, a folder, S3 (moto), and failing to."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
import xgboost as xgb
from moto import mock_aws
from moto.server import ThreadedMotoServer

from asyncinfer.model import demo
from asyncinfer.model.artifact import ModelLoadError
from asyncinfer.model.server import ModelServer, start_model_server
from tests.unit.model.support import (
    csv_scores,
    expected,
    invoke_http,
    request,
)

# --- the demo model and its artifact ----------------------------------------------------------------------------------


def test_artifact_holds_only_xgboost_model_in_json(artifact: Path) -> None:
    with tarfile.open(artifact, "r:gz") as tar:
        assert tar.getnames() == [demo.MODEL_FILENAME]
        member = tar.extractfile(demo.MODEL_FILENAME)
        assert member is not None
        model = json.loads(member.read())
    params = model["learner"]["learner_model_param"]
    # The explicit base_score that keeps xgboost 1.7 and 3.x in agreement, in 3.x's vector notation.
    assert params["base_score"] == "[5E-1]"
    assert params["num_feature"] == str(demo.N_FEATURES)
    assert model["learner"]["objective"]["name"] == "binary:logistic"


def test_artifact_is_reproducible(artifact: Path, tmp_path: Path) -> None:
    again = demo.build_model_artifact(tmp_path / "again.tar.gz")
    assert again.read_bytes() == artifact.read_bytes()


def test_demo_model_has_signal(booster: xgb.Booster) -> None:
    x, y = demo.make_training_data(n_rows=2000, seed=99)  # fresh draws, not the training rows
    scores = expected(booster, x)
    accuracy = float(np.mean((scores > 0.5) == (y == 1)))
    assert accuracy > 0.7
    assert float(scores.std()) > 0.15  # scores spread over (0, 1), not bunched near one value


# --- model loading failures -------------------------------------------------------------------------------------------


def _bad_artifact(path: Path, payload: bytes) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(demo.MODEL_FILENAME)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize("kind", ["missing", "corrupt-model", "not-a-tarball"])
def test_model_load_failure_fails_ping_and_answers_500(tmp_path: Path, kind: str) -> None:
    if kind == "missing":
        uri = tmp_path / "absent.tar.gz"
    elif kind == "corrupt-model":
        uri = _bad_artifact(tmp_path / "model.tar.gz", b"this is not a model")
    else:
        uri = tmp_path / "model.tar.gz"
        uri.write_bytes(b"\x1f\x8b not really gzip")
    srv = ModelServer(uri, port=0)
    with srv:
        srv.start(wait=False)
        with pytest.raises(ModelLoadError):
            srv.wait_until_ready(timeout=30)
        ping = request(srv.url, "GET", "/ping")
        assert ping.status == 500
        reply = invoke_http(srv.url, demo.make_csv_payload(1))
        assert reply.status == 500
        assert reply.body.startswith(b"Unable to load model:")


def test_start_model_server_raises_on_load_failure(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        start_model_server(tmp_path / "absent.tar.gz", port=0)


def test_local_directory_and_bare_file_sources(artifact: Path, tmp_path: Path, booster: xgb.Booster) -> None:
    with tarfile.open(artifact, "r:gz") as tar:
        tar.extractall(tmp_path / "model", filter="data")
    rows = demo.make_input_rows(3, seed=12)
    for source in (tmp_path / "model", tmp_path / "model" / demo.MODEL_FILENAME):
        with start_model_server(source, port=0) as srv:
            reply = invoke_http(srv.url, demo.rows_to_csv(rows))
        np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))


# --- S3 ---------------------------------------------------------------------------------------------------------------


@mock_aws
def test_loads_from_s3_with_moto(artifact: Path, booster: xgb.Booster) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(artifact), "models", "demo/model.tar.gz")
    rows = demo.make_input_rows(10, seed=13)
    with start_model_server("s3://models/demo/model.tar.gz", port=0) as srv:
        reply = invoke_http(srv.url, demo.rows_to_csv(rows))
    np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))


@mock_aws
def test_missing_s3_object_is_a_load_failure() -> None:
    boto3.client("s3").create_bucket(Bucket="models")
    srv = ModelServer("s3://models/absent/model.tar.gz", port=0)
    with srv:
        srv.start(wait=False)
        with pytest.raises(ModelLoadError, match=re.escape("could not download s3://models/absent/model.tar.gz")):
            srv.wait_until_ready(timeout=30)
        assert request(srv.url, "GET", "/ping").status == 500


def test_loads_from_moto_server_through_aws_endpoint_url(
    artifact: Path, booster: xgb.Booster, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    try:
        host, port = moto_server.get_host_and_port()
        # The server has no endpoint setting of its own: boto3 takes it from the environment.
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="models")
        s3.upload_file(str(artifact), "models", "model.tar.gz")
        rows = demo.make_input_rows(4, seed=14)
        with start_model_server("s3://models/model.tar.gz", port=0) as srv:
            reply = invoke_http(srv.url, demo.rows_to_csv(rows))
        np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))
    finally:
        moto_server.stop()


# --- the real container's xgboost (1.7.6) -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def xgboost_176_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An interpreter with xgboost 1.7.6: $ASYNCINFER_XGB176_PYTHON, or a throwaway venv built from PyPI (uv: about
    2-6 s and 470 MB on this project's machines; removed afterwards so pytest's kept temp dirs stay small).
    """
    from asyncinfer.model.crosscheck import create_reference_env, find_reference_base_python

    preset = os.environ.get("ASYNCINFER_XGB176_PYTHON")
    if preset:
        yield preset
        return
    if find_reference_base_python() is None:
        pytest.skip("no Python 3.9-3.12 to install xgboost 1.7.6 into")
    venv = tmp_path_factory.mktemp("xgb176") / "venv"
    try:
        yield str(create_reference_env(venv))
    finally:
        shutil.rmtree(venv, ignore_errors=True)


@pytest.mark.slow
def test_artifact_predicts_the_same_under_xgboost_176(
    xgboost_176_python: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from asyncinfer.model.crosscheck import REFERENCE_XGBOOST_VERSION, crosscheck, main

    result = crosscheck(xgboost_176_python, rows=300)
    assert result.reference_xgboost == REFERENCE_XGBOOST_VERSION
    assert len(result.local) == len(result.reference) == 300
    assert result.passed, result.summary()
    assert result.max_abs_diff <= 1e-6
    # The command-line entry point agrees.
    assert main(["--python", xgboost_176_python, "--rows", "50"]) == 0
    assert capsys.readouterr().out.startswith("PASS: 50 rows")


@pytest.mark.slow
def test_without_explicit_base_score_xgboost_176_disagrees(xgboost_176_python: str) -> None:
    from asyncinfer.model.crosscheck import crosscheck

    # Why demo.BASE_SCORE exists: 1.7 cannot read 3.x's "[4.9E-1]"-style base_score and uses 0.5 instead.
    result = crosscheck(xgboost_176_python, rows=300, with_base_score=False)
    assert not result.passed
    assert result.max_abs_diff > 1e-3
    assert result.reference_base_score == "5E-1"

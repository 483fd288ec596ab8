"""The local XGBoost 1.7-1 container stand-in and the demo model, over real HTTP on 127.0.0.1.

Expected predictions always come from a Booster loaded straight from the artifact's ``xgboost-model`` (not through
the server's own loading code), so a test passes only if the server predicts what xgboost predicts.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import boto3
import numpy as np
import pytest
import xgboost as xgb
from moto import mock_aws
from moto.server import ThreadedMotoServer

from asyncinfer.model import demo
from asyncinfer.model.artifact import LoadedModel, ModelLoadError
from asyncinfer.model.inference import InvocationResult, invoke
from asyncinfer.model.server import ModelServer, PortInUseError, main, start_model_server

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    content_type: str | None = None,
    accept: str | None = None,
    timeout: float = 30.0,
) -> Reply:
    """One request with exactly the headers given (urllib would add a form Content-Type to every POST)."""
    host_port = url.removeprefix("http://")
    conn = http.client.HTTPConnection(host_port, timeout=timeout)
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def invoke_http(url: str, body: bytes, content_type: str | None = "text/csv", accept: str | None = None) -> Reply:
    return request(url, "POST", "/invocations", body, content_type=content_type, accept=accept)


def csv_scores(body: bytes) -> np.ndarray:
    """The 1.7-1 CSV output: one float32 per line (each printed as its shortest repr, so parsing is exact)."""
    text = body.decode()
    assert text.endswith("\n")
    return np.array([np.float32(line) for line in text.splitlines()], dtype=np.float32)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.build_model_artifact(tmp_path_factory.mktemp("artifact"))


@pytest.fixture(scope="module")
def booster(artifact: Path) -> xgb.Booster:
    with tarfile.open(artifact, "r:gz") as tar:
        member = tar.extractfile(demo.MODEL_FILENAME)
        assert member is not None
        data = member.read()
    loaded = xgb.Booster()
    loaded.load_model(bytearray(data))
    return loaded


@pytest.fixture(scope="module")
def server(artifact: Path) -> Iterator[ModelServer]:
    with start_model_server(artifact, port=0) as running:
        yield running


def expected(booster: xgb.Booster, rows: np.ndarray) -> np.ndarray:
    return np.asarray(booster.predict(xgb.DMatrix(rows), validate_features=False), dtype=np.float32)


# --- the demo model and its artifact --------------------------------------------------------------------------------


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


# --- /ping -----------------------------------------------------------------------------------------------------------


def test_ping_is_503_before_load_and_200_after(artifact: Path) -> None:
    with ModelServer(artifact, port=0) as srv:
        srv.start(load=False)
        before = request(srv.url, "GET", "/ping")
        assert before.status == 503
        assert before.body == b"model is not loaded yet"
        srv.load_model()
        after = request(srv.url, "GET", "/ping")
        assert after.status == 200
        assert after.body == b""
        assert after.headers["Content-Length"] == "0"
        assert srv.state == "ready"


def test_invocation_during_load_waits_for_the_model(artifact: Path, booster: xgb.Booster) -> None:
    rows = demo.make_input_rows(3, seed=5)
    with ModelServer(artifact, port=0) as srv:
        srv.start(load=False)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(invoke_http, srv.url, demo.rows_to_csv(rows))
            time.sleep(0.2)
            assert not pending.done()
            srv.load_model()
            reply = pending.result(timeout=10)
    assert reply.status == 200
    np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))


def test_execution_parameters(server: ModelServer) -> None:
    reply = request(server.url, "GET", "/execution-parameters")
    assert reply.status == 200
    assert json.loads(reply.body) == {
        "MaxConcurrentTransforms": os.cpu_count(),
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def test_unknown_path_is_404(server: ModelServer) -> None:
    assert request(server.url, "GET", "/nope").status == 404
    assert request(server.url, "POST", "/nope", b"x").status == 404


# --- content types ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/csv", "text/csv; charset=utf-8", "text/csv;label_size=1", "TEXT/CSV"])
def test_csv_predictions_equal_booster(server: ModelServer, booster: xgb.Booster, content_type: str) -> None:
    rows = demo.make_input_rows(25, seed=1, missing_fraction=0.15)
    reply = invoke_http(server.url, demo.rows_to_csv(rows), content_type)
    assert reply.status == 200, reply.body
    np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_csv_delimiter_is_sniffed(server: ModelServer, booster: xgb.Booster, delimiter: str) -> None:
    rows = demo.make_input_rows(4, seed=2, missing_fraction=0.2)
    reply = invoke_http(server.url, demo.rows_to_csv(rows, delimiter=delimiter) + b"\n")
    assert reply.status == 200, reply.body
    np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))


def test_csv_with_fewer_columns_is_accepted_as_missing(server: ModelServer, booster: xgb.Booster) -> None:
    # The real container does the same: xgboost only refuses *more* columns than the model has.
    narrow = demo.make_input_rows(3, seed=3, n_features=demo.N_FEATURES - 1)
    padded = np.hstack([narrow, np.full((3, 1), np.nan)])
    reply = invoke_http(server.url, demo.rows_to_csv(narrow))
    assert reply.status == 200
    np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, padded))


@pytest.mark.parametrize("content_type", ["text/libsvm", "text/x-libsvm", "libsvm", None])
def test_libsvm_predictions_equal_booster(server: ModelServer, booster: xgb.Booster, content_type: str | None) -> None:
    # No Content-Type at all means libsvm, as in the container.
    rows = demo.make_input_rows(25, seed=4, missing_fraction=0.15)
    rows[:, -1] = np.where(np.isnan(rows[:, -1]), 0.5, rows[:, -1])  # keep the width: the last column is present
    reply = invoke_http(server.url, demo.rows_to_libsvm(rows), content_type)
    assert reply.status == 200, reply.body
    np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))


def test_libsvm_label_tokens_are_ignored(server: ModelServer, booster: xgb.Booster) -> None:
    rows = demo.make_input_rows(2, seed=6)
    labelled = b"\n".join(b"1 " + line for line in demo.rows_to_libsvm(rows).split(b"\n"))
    reply = invoke_http(server.url, labelled, "text/libsvm")
    np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))


# --- Accept ----------------------------------------------------------------------------------------------------------


def test_accept_text_csv_one_prediction_per_line(server: ModelServer, booster: xgb.Booster) -> None:
    rows = demo.make_input_rows(3, seed=8)
    reply = invoke_http(server.url, demo.rows_to_csv(rows), accept="text/csv")
    assert reply.headers["Content-Type"] == "text/csv; charset=utf-8"  # Flask adds the charset to text/*
    # str(np.float32): the shortest repr that round-trips the float32 (what numpy.savetxt(fmt="%s") prints).
    assert reply.body.decode() == "".join(f"{score!s}\n" for score in expected(booster, rows))
    assert reply.headers["Content-Length"] == str(len(reply.body))
    assert reply.headers.get("Transfer-Encoding") is None


def test_accept_json(server: ModelServer, booster: xgb.Booster) -> None:
    rows = demo.make_input_rows(3, seed=9)
    reply = invoke_http(server.url, demo.rows_to_csv(rows), accept="application/json")
    assert reply.headers["Content-Type"] == "application/json"
    assert json.loads(reply.body) == {"predictions": [{"score": s} for s in expected(booster, rows).tolist()]}


def test_accept_jsonlines(server: ModelServer, booster: xgb.Booster) -> None:
    rows = demo.make_input_rows(3, seed=10)
    reply = invoke_http(server.url, demo.rows_to_csv(rows), accept="application/jsonlines")
    assert reply.headers["Content-Type"] == "application/jsonlines"
    lines = reply.body.decode().splitlines()
    assert [json.loads(line) for line in lines] == [{"score": s} for s in expected(booster, rows).tolist()]


@pytest.mark.parametrize("accept", [None, "*/*", ""])
def test_missing_accept_defaults_to_csv(server: ModelServer, accept: str | None) -> None:
    reply = invoke_http(server.url, demo.make_csv_payload(2), accept=accept)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/csv; charset=utf-8"


def test_accept_parameters_are_ignored(server: ModelServer) -> None:
    reply = invoke_http(server.url, demo.make_csv_payload(2), accept="Application/JSON; charset=utf-8")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"


def test_default_accept_from_environment(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/jsonlines")
    with start_model_server(artifact, port=0) as srv:
        reply = invoke_http(srv.url, demo.make_csv_payload(2), accept="*/*")
    assert reply.headers["Content-Type"] == "application/jsonlines"
    assert len(reply.body.decode().splitlines()) == 2


def test_unsupported_default_accept_is_refused_at_construction(artifact: Path) -> None:
    with pytest.raises(ValueError, match="default Accept"):
        ModelServer(artifact, default_accept="application/xml")


# --- errors ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", demo.rejected_requests(), ids=lambda case: case.name)
def test_rejected_requests(server: ModelServer, case: demo.RejectedRequest) -> None:
    reply = invoke_http(server.url, case.body, case.content_type, case.accept)
    assert reply.status == case.expected_status, reply.body
    assert reply.headers.get("Transfer-Encoding") is None
    if case.expected_status == 204:
        assert reply.body == b""
    else:
        assert reply.headers["Content-Length"] == str(len(reply.body))
        assert reply.body  # the container always says why


def test_feature_count_error_carries_xgboost_message(server: ModelServer) -> None:
    wide = demo.rows_to_csv(demo.make_input_rows(1, n_features=demo.N_FEATURES + 2))
    reply = invoke_http(server.url, wide)
    assert reply.status == 400
    text = reply.body.decode()
    assert text.startswith("Unable to evaluate payload provided:")
    assert f"({demo.N_FEATURES} vs. {demo.N_FEATURES + 2})" in text
    assert "Stack trace" not in text


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/libsvm; charset=utf-8", "application/x-recordio-protobuf", "application/x-parquet", ""],
)
def test_unsupported_content_types_are_415(server: ModelServer, content_type: str) -> None:
    assert invoke_http(server.url, demo.make_csv_payload(1), content_type).status == 415


@pytest.mark.parametrize("body", [b"   \n  ", b"\xff\xfe,1,2", b"1,2,abc,4,5,6"])
def test_unparsable_csv_is_415(server: ModelServer, body: bytes) -> None:
    assert invoke_http(server.url, body, "text/csv").status == 415


@pytest.mark.parametrize("body", [b"not libsvm at all", b"0:x 1:2", b"-1:1.0"])
def test_unparsable_libsvm_is_415(server: ModelServer, body: bytes) -> None:
    assert invoke_http(server.url, body, "text/libsvm").status == 415


def test_checks_run_in_the_containers_order() -> None:
    def broken_model() -> LoadedModel:
        raise ModelLoadError("boom")

    def run(body: bytes, content_type: str, accept: str) -> InvocationResult:
        return invoke(body, content_type, accept, broken_model)

    # A bad payload is reported before a broken model, and a broken model before a bad Accept.
    assert run(b"", "bad/type", "bad/accept").status == 204
    assert run(b"1,2", "bad/type", "bad/accept").status == 415
    assert run(b"1,2", "text/csv", "bad/accept").status == 500


def test_request_larger_than_limit_is_413(artifact: Path) -> None:
    srv = ModelServer(artifact, port=0, max_content_length=1024)
    with srv:
        srv.start()
        reply = invoke_http(srv.url, demo.make_csv_payload(100))
        assert reply.status == 413
        assert invoke_http(srv.url, demo.make_csv_payload(2)).status == 200


def test_chunked_request_body_is_read(server: ModelServer, booster: xgb.Booster) -> None:
    rows = demo.make_input_rows(5, seed=11)
    payload = demo.rows_to_csv(rows)
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    try:
        conn.request("POST", "/invocations", body=iter([payload[:10], payload[10:]]), encode_chunked=True,
                     headers={"Content-Type": "text/csv", "Transfer-Encoding": "chunked"})  # fmt: skip
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200
    np.testing.assert_array_equal(csv_scores(body), expected(booster, rows))


def test_keep_alive_connection_serves_several_requests(server: ModelServer) -> None:
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    try:
        for _ in range(3):
            conn.request("POST", "/invocations", body=demo.make_csv_payload(2), headers={"Content-Type": "text/csv"})
            response = conn.getresponse()
            assert response.status == 200
            response.read()
            conn.request("GET", "/ping")
            ping = conn.getresponse()
            assert ping.status == 200
            ping.read()
    finally:
        conn.close()


# --- model loading failures ------------------------------------------------------------------------------------------


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


# --- S3 --------------------------------------------------------------------------------------------------------------


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


# --- concurrency -----------------------------------------------------------------------------------------------------


def test_concurrent_invocations_and_ping_during_long_ones(artifact: Path, booster: xgb.Booster) -> None:
    latency, workers = 0.6, 8
    inputs = [demo.make_input_rows(20, seed=100 + i) for i in range(workers)]
    with start_model_server(artifact, port=0, latency_seconds=latency) as srv:
        ping_times: list[float] = []
        done = threading.Event()

        def ping_loop() -> None:
            while not done.is_set():
                started = time.monotonic()
                assert request(srv.url, "GET", "/ping", timeout=2).status == 200
                ping_times.append(time.monotonic() - started)
                time.sleep(0.05)

        pinger = threading.Thread(target=ping_loop)
        pinger.start()
        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            replies = list(pool.map(lambda rows: invoke_http(srv.url, demo.rows_to_csv(rows)), inputs))
        elapsed = time.monotonic() - started
        done.set()
        pinger.join()
    for rows, reply in zip(inputs, replies, strict=True):
        assert reply.status == 200
        np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))
    # Served in parallel: one after another would take workers * latency = 4.8 s.
    assert elapsed < latency * workers / 2
    # /ping answered throughout, well inside SageMaker's 2 s ping timeout.
    assert len(ping_times) >= 3
    assert max(ping_times) < 0.5


# --- lifecycle and CLI -----------------------------------------------------------------------------------------------


def test_stop_closes_the_port_and_removes_the_unpacked_model(artifact: Path) -> None:
    srv = start_model_server(artifact, port=0)
    url = srv.url
    model_files = srv.get_model().files
    assert all(path.exists() for path in model_files)
    # An idle keep-alive connection must not keep stop() waiting.
    idle = http.client.HTTPConnection(url.removeprefix("http://"), timeout=5)
    idle.request("GET", "/ping")
    idle.getresponse().read()
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 3
    idle.close()
    with pytest.raises(OSError, match="refused"):
        request(url, "GET", "/ping", timeout=2)
    assert not any(path.exists() for path in model_files)
    srv.stop()  # idempotent


def test_port_in_use_is_a_clear_error(artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port}: the port is already in use"):
            ModelServer(artifact, port=port).start()
        assert main(["--model-uri", str(artifact), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: cannot listen on 127.0.0.1:{port}: the port is already in use\n"


def test_cli_serves_until_sigterm(artifact: Path, booster: xgb.Booster) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "asyncinfer.model.server", "--model-uri", str(artifact), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("model server listening on http://127.0.0.1:"), line + (
            proc.stderr.read() if proc.stderr else ""
        )
        url = line.split()[4]
        rows = demo.make_input_rows(2, seed=15)
        reply = invoke_http(url, demo.rows_to_csv(rows))
        np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- the real container's xgboost (1.7.6) ---------------------------------------------------------------------------


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

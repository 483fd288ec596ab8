"""The container server itself: /ping while loading, concurrent invocations, stopping, and its command line."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from asyncinfer.model import demo
from asyncinfer.model.server import ModelServer, PortInUseError, main, start_model_server
from tests.unit.model.support import (
    SRC,
    csv_scores,
    expected,
    invoke_http,
    request,
)

# --- /ping ------------------------------------------------------------------------------------------------------------


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


# --- concurrency ------------------------------------------------------------------------------------------------------


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


# --- lifecycle and CLI ------------------------------------------------------------------------------------------------


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

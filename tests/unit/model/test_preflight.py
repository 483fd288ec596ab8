"""``asyncinfer preflight`` (preflight.py, cli/preflight.py) against small fake containers and the model stand-in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from click.testing import CliRunner

from asyncinfer.cli import main
from asyncinfer.model.framework_limits import DEFAULT_MAX_REQUEST_BYTES, limits_for
from asyncinfer.model.server import start_model_server
from asyncinfer.preflight import Preflight, Settings, payload_of_size


class _Fake(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    chunked = False
    max_request = 1 << 30
    delay = 0.0
    refused_types: frozenset[str] = frozenset()

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/ping" else 404, b"")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if len(body) > self.max_request:
            self._answer(413, b"")
        elif self.headers["Content-Type"] in self.refused_types:
            self._answer(415, b"unsupported content type")
        else:
            time.sleep(self.delay)
            self._answer(200, b"0.5\n")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        if self.chunked and status == 200:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _fake(**behaviour: object) -> Iterator[str]:
    handler = type("Handler", (_Fake,), behaviour)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _settings(**changes: object) -> Settings:
    values: dict[str, object] = {
        "max_payload_bytes": 10_000,
        "invocation_timeout_seconds": 5.0,
        "content_types": ("text/csv",),
        "accept": "text/csv",
    }
    return Settings(**{**values, **changes})  # type: ignore[arg-type]


def _failed(checks: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {check.name: check.fix for check in checks if not check.passed}


def test_a_well_behaved_container_passes_every_check() -> None:
    with _fake() as url:
        checks = Preflight(url, _settings(content_types=("text/csv", "text/libsvm"))).run()
    assert [c.name for c in checks] == [
        "/ping",
        "Content-Length",
        "response time",
        "payload of 10000 bytes",
        "Content-Type text/csv",
        "Content-Type text/libsvm",
    ]
    assert _failed(checks) == {}


def test_a_chunked_response_fails_with_its_fix() -> None:
    with _fake(chunked=True) as url:
        failed = _failed(Preflight(url, _settings()).run())
    assert "Content-Length" in failed["Content-Length"]


def test_an_undersized_request_limit_fails_and_names_the_variable() -> None:
    ts = limits_for("TorchServe", {"TS_MAX_REQUEST_SIZE": "100000000"})
    with _fake(max_request=DEFAULT_MAX_REQUEST_BYTES) as url:
        failed = _failed(Preflight(url, _settings(max_payload_bytes=7_000_000, framework_limits=ts)).run())
    assert list(failed) == ["payload of 7000000 bytes"]
    assert "TS_MAX_REQUEST_SIZE" in failed["payload of 7000000 bytes"]


def test_slow_answers_and_refused_content_types_fail() -> None:
    with _fake(delay=0.3, refused_types=frozenset({"application/json"})) as url:
        settings = _settings(invocation_timeout_seconds=0.2, content_types=("text/csv", "application/json"))
        failed = _failed(Preflight(url, settings).run())
    assert "InvocationTimeoutSeconds" in failed["response time"]
    assert "DefaultContentType" in failed["Content-Type application/json"]


def test_a_framework_timeout_below_the_invocation_timeout_fails() -> None:
    short = limits_for("MMS", {"MMS_DEFAULT_RESPONSE_TIMEOUT": "60"})
    with _fake() as url:
        failed = _failed(Preflight(url, _settings(invocation_timeout_seconds=900, framework_limits=short)).run())
    assert failed == {"response time": "raise MMS_DEFAULT_RESPONSE_TIMEOUT to at least 900"}


def test_payloads_are_exactly_the_size_asked_and_stay_csv() -> None:
    body = payload_of_size(b"1,2,3", 1001)
    assert len(body) == 1001 and set(body.split(b"\n")) <= {b"1,2,3", b""}


def test_the_stand_in_with_torchserves_default_limit_fails_preflight(artifact: Path) -> None:
    with start_model_server(artifact, framework_limits=limits_for("TorchServe", {})) as server:
        failed = _failed(Preflight(server.url, _settings(max_payload_bytes=DEFAULT_MAX_REQUEST_BYTES + 1)).run())
    assert list(failed) == [f"payload of {DEFAULT_MAX_REQUEST_BYTES + 1} bytes"]


def test_the_command_prints_the_table_and_exits_1_on_a_failure() -> None:
    runner = CliRunner()
    with _fake(chunked=True) as url:
        result = runner.invoke(
            main,
            [
                "preflight",
                "--container-url",
                url,
                "--parameter",
                "ModelServerFramework=TorchServe",
                "--max-payload-bytes",
                "1000",
            ],
            env={"COLUMNS": "200"},
            catch_exceptions=False,
        )
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "Content-Length" in result.output
    assert "1 check(s) failed: Content-Length" in result.output
    with _fake() as url:
        result = runner.invoke(main, ["preflight", "--container-url", url, "--max-payload-bytes", "1000"])
    assert result.exit_code == 0, result.output

"""The SageMaker inference container's HTTP contract: GET /ping, POST /invocations, GET /execution-parameters.

``/ping`` answers 200 with an empty body once the model is loaded (503 while it loads, 500 if loading failed);
``/invocations`` follows :mod:`asyncinfer.model.inference`. Every response that has a body carries
``Content-Length`` (SageMaker's async platform rejects chunked container responses); 204 carries none, as HTTP
requires. What is served comes from a :class:`ContainerApp` (server.py's ModelServer, for either container).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Literal, Protocol, cast

from asyncinfer.http_serving import BodyTooLarge, KeepAliveHandler, LoopbackServer, MalformedBody
from asyncinfer.model.framework_limits import FrameworkLimits, check_response
from asyncinfer.model.inference import ERROR_CONTENT_TYPE, InvocationResult

State = Literal["not-loaded", "loading", "ready", "failed"]
MAX_DISCARD_BYTES = 1_000_000_000  # an async endpoint's largest input


class ContainerApp(Protocol):
    """What the HTTP front needs of the container: its model's state, its limits, and the model."""

    @property
    def state(self) -> State: ...

    @property
    def load_error(self) -> str | None: ...

    max_content_length: int
    #: TorchServe's or MMS's limits when the Model runs one (they replace max_content_length), else None.
    framework_limits: FrameworkLimits | None
    default_accept: str
    latency_seconds: float

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> InvocationResult: ...

    def simulate_latency(self) -> None: ...


class ContainerHTTPServer(LoopbackServer):
    def __init__(self, address: tuple[str, int], app: ContainerApp) -> None:
        self.app = app
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        super().__init__(address, _Handler)

    @property
    def in_flight(self) -> int:
        """Invocations being answered now (an instance retired after an update finishes these first)."""
        return self._in_flight

    def _count(self, delta: int) -> None:
        with self._in_flight_lock:
            self._in_flight += delta


class _Handler(KeepAliveHandler):
    server_version = "asyncinfer-xgboost/1.7-1"
    # Idle keep-alive connections and stalled uploads give up after this many seconds.
    timeout = 120

    @property
    def _server(self) -> ContainerHTTPServer:
        return cast(ContainerHTTPServer, self.server)

    def _send(self, status: int, body: bytes = b"", content_type: str | None = ERROR_CONTENT_TYPE) -> None:
        self.send_response(status)
        if status != 204:
            if content_type is not None:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _read_body(self, limit: int) -> bytes | None:
        """The request body, or None after answering 413/400 (the connection is then closed)."""
        try:
            return self.read_body(limit)
        except MalformedBody as exc:
            self.close_connection = True
            self._send(400, b"Bad chunked encoding" if exc.framing == "chunked" else b"Bad Content-Length")
        except BodyTooLarge:
            if self._server.app.framework_limits is not None and self._discard_sized_body():
                # Netty (TorchServe, MMS) reads and drops an oversized keep-alive request, then answers 413 with
                # no body: the client sees the status rather than a connection cut mid-upload.
                self._send(413, b"", None)
                return None
            self.close_connection = True  # the rest of the body is not read, so the connection cannot be reused
            self._send(413, b"Request Entity Too Large")
        return None

    def _discard_sized_body(self) -> bool:
        """Read and drop a Content-Length body (up to the 1 GB an async input may be); False if there is none."""
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_DISCARD_BYTES:
            return False
        remaining = int(length)
        while remaining:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                self.close_connection = True
                return True
            remaining -= len(chunk)
        return True

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        app = self._server.app
        if path == "/ping":
            state = app.state
            if state == "ready":
                self._send(200)
            elif state == "failed":
                self._send(500, f"Unable to load model: {app.load_error}".encode())
            else:
                self._send(503, b"model is not loaded yet")
        elif path == "/execution-parameters":
            params = {
                "MaxConcurrentTransforms": os.cpu_count() or 1,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": app.max_content_length // (1024 * 1024),
            }
            self._send(200, json.dumps(params).encode(), "application/json")
        else:
            self._send(404, b"Not Found")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        app = self._server.app
        if path != "/invocations":
            # Drain the body so that the connection stays usable.
            if self._read_body(app.max_content_length) is not None:
                self._send(404, b"Not Found")
            return
        self._server._count(1)
        limits = app.framework_limits
        try:
            body = self._read_body(limits.max_request_bytes if limits is not None else app.max_content_length)
            if body is None:
                return
            started = time.monotonic()
            result = app.invoke(body, self.headers.get("Content-Type"), self.headers.get("Accept"))
            if result.status == 200 and app.latency_seconds > 0:
                app.simulate_latency()
            failure = None if limits is None else check_response(limits, time.monotonic() - started, len(result.body))
            if failure is not None:
                self._send(failure.status, failure.body, "application/json")
            else:
                self._send(result.status, result.body, result.content_type)
        finally:
            self._server._count(-1)

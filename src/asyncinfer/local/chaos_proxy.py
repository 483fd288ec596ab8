"""A proxy between the endpoint emulator and the model container that misbehaves on purpose (fault injection).

Per ``POST /invocations``, with the rates of the fault plan:

* ``container-down``: the container dies: this call and every other one in flight are cut without an answer, the
  port refuses connections for 2-5 s, then the container is back (the emulator keeps queued requests waiting while
  nothing listens, as SageMaker takes an unhealthy instance out of service);
* ``container-5xx``: the container answers 500 with a short message;
* ``container-timeout``: the container stalls longer than InvocationTimeoutSeconds (``stall_seconds``), so the
  emulator gives up on it.

Everything else (``/ping`` included) is passed to the real container unchanged.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast
from urllib.parse import urlsplit

from asyncinfer.faults import FaultInjector

logger = logging.getLogger(__name__)

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], proxy: ChaosProxy) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        logger.debug("chaos proxy: connection from %s ended badly", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60

    @property
    def _proxy(self) -> ChaosProxy:
        return cast(_Server, self.server).proxy

    def log_message(self, format: str, *args: object) -> None:
        return

    def setup(self) -> None:
        super().setup()
        self._proxy._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._proxy._track(self.connection, add=False)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _forward(self, body: bytes | None) -> None:
        proxy = self._proxy
        host, port = proxy.upstream()
        conn = http.client.HTTPConnection(host, port, timeout=300)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            self._answer(response.status, data, response.getheaders())
        except (OSError, http.client.HTTPException):  # refused, reset, or a malformed/truncated answer
            self.close_connection = True
            self._answer(502, b"chaos proxy: the model container did not answer", [("Content-Type", "text/plain")])
        finally:
            conn.close()

    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        body = self._body()
        proxy = self._proxy
        if not self.path.rstrip("/").endswith("/invocations"):
            self._forward(body)
            return
        faults = proxy.injector
        if not proxy.dying and faults.fire("container-down", counted=False):
            seconds = faults.uniform("container-down", 2.0, 5.0)
            faults.open_window("container-down", seconds)  # counted as an episode
            self.close_connection = True
            proxy.die(seconds)
            return
        if faults.fire("container-5xx"):
            message = b"injected fault: the model server failed while handling the request"
            self._answer(500, message, [("Content-Type", "text/plain")])
            return
        if faults.fire("container-timeout"):
            self.close_connection = True
            time.sleep(proxy.stall_seconds)  # the emulator gives up first and hangs up
            with contextlib.suppress(OSError):
                self._answer(500, b"injected fault: too late", [("Content-Type", "text/plain")])
            return
        self._forward(body)


class ChaosProxy:
    """Listens on ``host:port`` (0: any free port) and forwards to ``upstream_url`` with the container faults.
    ``upstream_url`` may be a function returning the URL (read per request: an endpoint update moves the model)."""

    def __init__(
        self,
        upstream_url: str | Callable[[], str],
        injector: FaultInjector,
        host: str = "127.0.0.1",
        port: int = 0,
        stall_seconds: float = 3,
    ) -> None:
        self._upstream = upstream_url
        self.upstream()  # an invalid URL fails now
        self.injector = injector
        self.stall_seconds = stall_seconds
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()
        self._stopped = False
        self._dying = False

    def upstream(self) -> tuple[str, int]:
        """The model container's host and port now."""
        url = self._upstream() if callable(self._upstream) else self._upstream
        parts = urlsplit(url)
        if not parts.hostname:
            raise ValueError(f"invalid container URL {url!r}")
        return parts.hostname, parts.port or 80

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def dying(self) -> bool:
        return self._dying

    def start(self) -> str:
        self._listen()
        return self.url

    def _listen(self) -> None:
        server = _Server((self._host, self._port), self)
        self._port = int(server.server_address[1])
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="chaos-proxy", daemon=True
        )
        with self._lock:
            if self._stopped:  # stop() ran while this listener was being made (a restart racing it)
                server.server_close()
                return
            self._server, self._thread = server, thread
        thread.start()

    def _track(self, sock: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._open.add(sock)
            else:
                self._open.discard(sock)

    def _close_listener(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            connections = list(self._open)
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)
        with self._lock:  # and those accepted while the listener was shutting down
            connections += [sock for sock in self._open if sock not in connections]
        for sock in connections:  # the process is gone: so are its connections
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def die(self, seconds: float) -> None:
        """The container process dies now and is back (listening again) after ``seconds``."""
        with self._lock:
            if self._dying or self._stopped:
                return
            self._dying = True

        def down_and_up() -> None:
            self._close_listener()
            time.sleep(seconds)
            with self._lock:
                self._dying = False
                if self._stopped:
                    return
            for _ in range(50):  # the port may linger for a moment
                try:
                    self._listen()
                    return
                except OSError:
                    time.sleep(0.1)
            logger.error("chaos proxy: could not listen on port %s again", self._port)

        threading.Thread(target=down_and_up, name="chaos-proxy-restart", daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._close_listener()

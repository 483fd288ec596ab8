"""moto in its own process, serving the local stack's AWS APIs over keep-alive connections.

``python -m asyncinfer.local.moto_server --host H --port P`` applies :mod:`moto_patches`, listens, prints
``READY <port>`` and serves until its standard input closes: the stack that started it holds the other end, so the
server never outlives it, whatever way it ends. Running apart from the stack gives moto a core of its own.

moto's own server (werkzeug's development server) closes the connection after every answer, so every request paid
a TCP handshake and a new thread, and then waited 10 ms for stray bytes. :class:`KeepAliveMotoHandler` answers
HTTP/1.1 with keep-alive and ``TCP_NODELAY`` (without it Nagle's algorithm delays small answers by tens of ms),
reads exactly the body each request declares, and keeps moto's handling of headers with underscores (S3 metadata).
It also counts each request's CPU time by operation, for ``make bench`` (``GET /_asyncinfer/requests``).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import ThreadedWSGIServer

from asyncinfer.http_serving import send_response
from asyncinfer.local import moto_patches
from asyncinfer.local.iam import control as iam_control
from asyncinfer.local.iam import moto_deliveries
from asyncinfer.local.iam.authorizer import Verdict
from asyncinfer.local.iam.checks import HttpRequest
from asyncinfer.local.iam.requests import caller_of, needs_body

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

READY = "READY"
STATS_PATH = "/_asyncinfer/requests"
_NO_BODY_STATUSES = frozenset({204, 304})
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding"})
_HEAD_BYTES = 512
_OWN_PATHS = frozenset({STATS_PATH, moto_patches.ENDPOINT_UPDATE_PATH, moto_patches.EMULATED_PATH})


class BoundedBody(io.RawIOBase):
    """A request body of exactly ``length`` bytes on the connection's stream; :meth:`drain` reads what the
    application left, so the next request on the connection starts where it should."""

    def __init__(self, stream: io.BufferedIOBase, length: int) -> None:
        super().__init__()
        self._stream = stream
        self._left = length
        self.head = b""  # the first bytes read, which name the operation of form-encoded requests

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        data = self._stream.read(min(len(buffer), self._left))
        if not data:
            raise ConnectionError("the client closed the connection in the middle of the request body")
        buffer[: len(data)] = data
        self._left -= len(data)
        if len(self.head) < _HEAD_BYTES:
            self.head += data[: _HEAD_BYTES - len(self.head)]
        return len(data)

    def drain(self) -> None:
        while self.read(65536):
            pass


class RequestCosts:
    """CPU time (the handling thread's) and count of requests, by service and operation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = defaultdict(int)
        self._cpu: dict[str, float] = defaultdict(float)

    def add(self, operation: str, cpu_seconds: float) -> None:
        with self._lock:
            self._counts[operation] += 1
            self._cpu[operation] += cpu_seconds

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {op: {"requests": self._counts[op], "cpu_ms": self._cpu[op] * 1000} for op in sorted(self._counts)}


def operation_of(environ: WSGIEnvironment, body_head: bytes = b"") -> str:
    """``service:Operation``: the JSON services' target header, the query services' ``Action`` (in the query string
    or at the start of a form-encoded body), else (S3, the REST services) the method and the path's depth."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/") if "Credential=" in auth else []
    service = scope[3] if len(scope) > 3 else "?"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service}:{str(target).rsplit('.', 1)[-1]}"
    action = parse_qs(str(environ.get("QUERY_STRING", ""))).get("Action")
    if not action and str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body_head.decode("utf-8", "replace")).get("Action")
    if action:
        return f"{service}:{action[0]}"
    path = str(environ.get("PATH_INFO", "")).strip("/")
    depth = "object" if "/" in path else ("bucket" if path else "service")
    return f"{service}:{environ.get('REQUEST_METHOD', '?')} {depth}"


class KeepAliveMotoHandler(MotoRequestHandler):
    """moto's request handler with HTTP/1.1 keep-alive, ``TCP_NODELAY`` and per-request CPU accounting."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120  # an idle keep-alive connection is closed after this many seconds

    def make_environ(self) -> WSGIEnvironment:
        environ = super().make_environ()
        if not environ.get("wsgi.input_terminated"):  # chunked bodies end by themselves (werkzeug's DechunkedInput)
            environ["wsgi.input"] = BoundedBody(self.rfile, int(environ.get("CONTENT_LENGTH") or 0))
        return environ

    def run_wsgi(self) -> None:
        started = time.thread_time()
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            environ = self.make_environ()
        except ValueError:
            self.close_connection = True
            self.send_error(400, "Malformed Content-Length")
            return
        self.environ = environ
        server = self.server
        assert isinstance(server, MotoServer)
        path = environ["PATH_INFO"]
        own = path in _OWN_PATHS or path in iam_control.PATHS
        received = environ["wsgi.input"]
        try:
            if path == STATS_PATH:
                self._answer_json(server.costs.snapshot())
            elif own and not self._may_control(environ):
                self._answer_json({"Error": "the local stack's private paths are not for a role's credentials"}, 403)
            elif path == moto_patches.ENDPOINT_UPDATE_PATH:
                self._finish_endpoint_update(environ)
            elif path in iam_control.PATHS:
                self._iam_control(environ, path)
            elif own:
                self._record_emulated(environ)
            else:
                verdict = self._authorize(environ)
                if verdict.denial is not None:
                    send_response(self, verdict.denial)
                else:
                    self._respond(server.app, environ, verdict)
            body = environ["wsgi.input"]
            if isinstance(body, BoundedBody):
                body.drain()
            else:
                while body.read(65536):
                    pass
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            if not own:
                head = received.head if isinstance(received, BoundedBody) else b""
                server.costs.add(operation_of(environ, head), time.thread_time() - started)

    def _may_control(self, environ: WSGIEnvironment) -> bool:
        server = self.server
        assert isinstance(server, MotoServer)
        authorizer = server.iam.authorizer
        return authorizer is None or authorizer.may_control(self._http_request(environ))

    def _http_request(self, environ: WSGIEnvironment) -> HttpRequest:
        headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = str(environ[key])
        raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", ""))
        path, _, query = raw.partition("?")
        return HttpRequest(str(environ["REQUEST_METHOD"]), path, query, headers)

    def _authorize(self, environ: WSGIEnvironment) -> Verdict:
        """IAM's verdict on the request (reads the body first when the mapping needs it, and puts it back)."""
        server = self.server
        assert isinstance(server, MotoServer)
        authorizer = server.iam.authorizer
        if authorizer is None or authorizer.mode == "off":
            return Verdict()
        request = self._http_request(environ)
        caller = caller_of(request)
        if caller is not None and needs_body(request, caller.service):
            body = environ["wsgi.input"].read()
            environ["wsgi.input"] = io.BytesIO(body)
            request = HttpRequest(request.method, request.path, request.query, request.headers, body)
        return authorizer.authorize_http(request)

    def _iam_control(self, environ: WSGIEnvironment, path: str) -> None:
        server = self.server
        assert isinstance(server, MotoServer)
        try:
            data = environ["wsgi.input"].read() or b"{}"
            self._answer_json(server.iam.handle(path, json.loads(data)))
        except (iam_control.ControlError, KeyError, ValueError, TypeError) as exc:
            self._answer_json({"Error": f"IAM: {exc!r}"}, status=400)

    def _respond(self, app: WSGIApplication, environ: WSGIEnvironment, verdict: Verdict | None = None) -> None:
        answer: list[tuple[str, list[tuple[str, str]]]] = []
        early: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
        ) -> Callable[[bytes], object]:
            answer[:] = [(status, headers)]
            return early.append  # the legacy write() callable: its data goes before the iterable's

        try:
            result: Iterable[bytes] = app(environ, start_response)
        except Exception:
            logger.exception("moto failed on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            self.close_connection = True
            self.send_error(500, "Internal error in moto")
            return
        try:
            status, headers = answer[0]
            code = int(status.split(" ", 1)[0])
            declared = next((v for k, v in headers if k.lower() == "content-length"), None)
            if code == 404 and verdict is not None and verdict.when_missing is not None:
                instead = verdict.when_missing()  # S3 answers 403 to a caller that may not list the bucket
                if instead is not None:
                    send_response(self, instead)
                    return
            head_only = environ["REQUEST_METHOD"] == "HEAD" or code in _NO_BODY_STATUSES or code < 200
            chunks: Iterable[bytes] = result
            if declared is None and not head_only:  # frame the answer ourselves: buffer it to know its length
                try:
                    whole = b"".join([*early, *result])
                except Exception:
                    logger.exception(
                        "moto failed answering %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
                    )
                    self.close_connection = True
                    self.send_error(500, "Internal error in moto")
                    return
                early, chunks = [], [whole]
                headers = [*headers, ("Content-Length", str(len(whole)))]
            self.send_response(code, status.split(" ", 1)[1] if " " in status else "")
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if not head_only:
                for data in (*early, *chunks):
                    if data:
                        self.wfile.write(data)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _finish_endpoint_update(self, environ: WSGIEnvironment) -> None:
        """The endpoint emulator ends an UpdateEndpoint (moto_patches.finish_endpoint_update)."""
        try:
            request = json.loads(environ["wsgi.input"].read() or b"{}")
            answer = moto_patches.finish_endpoint_update(
                request["Account"], request["Region"], request["EndpointName"], request.get("FailureReason")
            )
        except (ValueError, KeyError) as exc:
            self._answer_json({"Error": f"cannot finish the update: {exc!r}"}, status=400)
            return
        self._answer_json(answer)

    def _record_emulated(self, environ: WSGIEnvironment) -> None:
        """The local stack's endpoint and autoscaling tell moto what they did (moto_patches.record_emulated)."""
        try:
            answer = moto_patches.record_emulated(json.loads(environ["wsgi.input"].read() or b"{}"))
        except (KeyError, ValueError, TypeError) as exc:
            self._answer_json({"Error": f"cannot record it: {exc!r}"}, status=400)
            return
        self._answer_json(answer)

    def _answer_json(self, payload: object, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request is noise at thousands of requests per minute

    def log_error(self, format: str, *args: object) -> None:
        if format.startswith("Request timed out"):
            return  # an idle keep-alive connection closed on its timeout: routine, not an error
        super().log_error(format, *args)


class MotoServer(ThreadedWSGIServer):
    """moto's dispatcher behind the keep-alive handler."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port, DomainDispatcherApplication(create_backend_app), handler=KeepAliveMotoHandler)
        self.costs = RequestCosts()
        self.iam = iam_control.IamControl()


def serve(host: str, port: int, ready: IO[str], stop_on: IO[bytes] | None) -> None:
    """Serve until ``stop_on`` reaches its end (or forever when None); say ``READY <port>`` on ``ready``."""
    moto_patches.apply()
    server = MotoServer(host, port)
    moto_deliveries.apply(server.iam)
    if stop_on is not None:

        def watch() -> None:
            while stop_on.read(1):
                pass
            os._exit(0)  # the stack is gone (or said stop): nothing here needs a graceful end

        threading.Thread(target=watch, name="moto-parent-watch", daemon=True).start()
    print(f"{READY} {server.server_address[1]}", file=ready, flush=True)
    if ready is sys.stdout:
        # Nobody reads standard output after READY: what moto prints there later (an unknown host) goes to the log,
        # not into a pipe that would fill up and block the request holding moto's dispatcher lock.
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    server.serve_forever(poll_interval=0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    serve(args.host, args.port, sys.stdout, sys.stdin.buffer)


if __name__ == "__main__":
    main()

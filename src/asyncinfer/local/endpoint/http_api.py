"""The endpoint's HTTP front: ``POST /endpoints/{name}/async-invocations`` as botocore's rest-json client expects it.

Reads the body (``Content-Length`` or chunked), parses the request (:mod:`.protocol`), hands it to
``acceptor.accept`` and frames the answer: 202 with the result locations, or an error in the rest-json form.
Any other path or method is an ``UnknownOperationException``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, cast

from asyncinfer.http_serving import (
    BodyTooLarge,
    KeepAliveHandler,
    LoopbackServer,
    MalformedBody,
    RequestGate,
    send_response,
)
from asyncinfer.local.endpoint.protocol import (
    H_ERROR_TYPE,
    H_FAILURE_LOCATION,
    H_OUTPUT_LOCATION,
    H_REQUEST_ID,
    MAX_INLINE_BODY,
    ApiError,
    InvokeParams,
    endpoint_name_from_path,
    parse_invoke_request,
    validation_error,
)

if TYPE_CHECKING:
    from asyncinfer.local.endpoint.requests import InvocationRequest

logger = logging.getLogger(__name__)

# Bodies above this are refused without being read (the limit is 128,000 bytes; below this we read and validate, so
# the answer lists every violation, and the connection stays usable).
READ_LIMIT = 8 * 1024 * 1024


class Acceptor(Protocol):
    def accept(self, params: InvokeParams) -> InvocationRequest:
        """Queue a validated request and return it (its locations are the answer); raise :class:`ApiError` to
        answer with an error instead."""
        ...


class _Server(LoopbackServer):
    def __init__(self, address: tuple[str, int], acceptor: Acceptor, gate: RequestGate | None) -> None:
        self.acceptor = acceptor
        self.gate = gate
        super().__init__(address, _Handler)


class _Handler(KeepAliveHandler):
    server_version = "asyncinfer-sagemaker-runtime"
    timeout = 60  # idle keep-alive connections give up

    @property
    def _acceptor(self) -> Acceptor:
        return cast(_Server, self.server).acceptor

    def _header(self, name: str) -> str | None:
        # http.server decodes header bytes as latin-1; botocore sends non-ASCII values as UTF-8.
        raw = self.headers.get(name)
        if raw is None:
            return None
        try:
            return raw.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return raw

    def _send(self, status: int, payload: Mapping[str, str], headers: Mapping[str, str | None] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header(H_REQUEST_ID, str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            if value is not None:
                # send_header encodes latin-1; sending the UTF-8 bytes keeps non-ASCII locations intact.
                self.send_header(name, value.encode("utf-8").decode("latin-1"))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, error: ApiError) -> None:
        self._send(error.status, {"message": error.message}, {H_ERROR_TYPE: error.code})

    def _read_body(self) -> bytes | None:
        """The request body; None after answering (too large, or malformed framing: the connection then closes)."""
        try:
            return self.read_body(READ_LIMIT)
        except MalformedBody as exc:
            self.close_connection = True
            self._send_error(ApiError(400, "SerializationException", str(exc)))
        except BodyTooLarge:
            self.close_connection = True  # the rest of the body is not read, so the connection cannot be reused
            self._send_error(
                validation_error(
                    "1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have "
                    f"length less than or equal to {MAX_INLINE_BODY}"
                )
            )
        return None

    def _unknown_operation(self) -> None:
        error = ApiError(404, "UnknownOperationException", f"No operation matches {self.command} {self.path}.")
        self._send_error(error)

    def _refused(self) -> bool:
        """Answers and returns True when the gate (IAM) refuses the request, as SageMaker's front end would."""
        gate = cast(_Server, self.server).gate
        if gate is None:
            return False
        path, _, query = self.path.partition("?")
        refusal = gate.refusal(self.command, path, query, {k.lower(): v for k, v in self.headers.items()})
        if refusal is None:
            return False
        send_response(self, refusal)
        return True

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None or self._refused():
            return
        name = endpoint_name_from_path(self.path)
        if name is None:
            self._unknown_operation()
            return
        try:
            params = parse_invoke_request(name, self._header, body)
            request = self._acceptor.accept(params)
        except ApiError as error:
            self._send_error(error)
            return
        self._send(
            202,
            {"InferenceId": request.inference_id},
            {H_OUTPUT_LOCATION: request.output_location, H_FAILURE_LOCATION: request.failure_location},
        )

    def _other_method(self) -> None:
        if self._read_body() is not None:
            self._unknown_operation()

    do_GET = do_PUT = do_DELETE = do_PATCH = _other_method


class RuntimeApiServer:
    """The HTTP front on ``host:port`` (0: any free port), served on a daemon thread."""

    def __init__(
        self, acceptor: Acceptor, host: str = "127.0.0.1", port: int = 0, gate: RequestGate | None = None
    ) -> None:
        self._acceptor = acceptor
        self._gate = gate
        self._address = (host, port)
        self._bound = (host, port)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def url(self) -> str | None:
        return self._url

    def start(self) -> str:
        """Listen and serve; return the base URL (for AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME)."""
        httpd = _Server(self._address, self._acceptor, self._gate)
        raw_host, port = httpd.server_address[:2]
        host = raw_host.decode() if isinstance(raw_host, bytes) else str(raw_host)
        shown = f"[{host}]" if ":" in host else host
        self._url = f"http://{shown}:{port}"
        self._bound = (host, int(port))
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.5}, name="sagemaker-runtime-http", daemon=True
        )
        self._thread.start()
        logger.info("SageMaker runtime emulator listening on %s", self._url)
        return self._url

    def stop(self) -> None:
        """Stop serving and cut the open connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            self._shutdown(httpd)
            httpd.cut_connections()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def _shutdown(self, httpd: _Server) -> None:
        # serve_forever() notices shutdown() only when its select() returns: a connection wakes it at once instead of
        # after poll_interval (the woken handler just reads EOF).
        stopper = threading.Thread(target=httpd.shutdown, name="sagemaker-runtime-shutdown", daemon=True)
        stopper.start()
        while stopper.is_alive():
            with contextlib.suppress(OSError):
                socket.create_connection(self._bound, timeout=0.2).close()
            stopper.join(0.05)

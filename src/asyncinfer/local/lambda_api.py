"""Lambda's Invoke API for the local runtime, so tools reach local functions as they reach deployed ones.

``POST /2015-03-31/functions/{FunctionName}/invocations`` with ``X-Amz-Invocation-Type`` ``Event`` (202, queued
with Lambda's asynchronous semantics), ``RequestResponse`` (200, the result; ``X-Amz-Function-Error`` on error) or
``DryRun`` (204). ``FunctionName`` may be a name or an ARN, with or without a qualifier. Reached through
``AWS_ENDPOINT_URL_LAMBDA`` (or ``endpoint_url``), like every local service.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

from asyncinfer.http_serving import (
    BodyTooLarge,
    KeepAliveHandler,
    LoopbackServer,
    MalformedBody,
    RequestGate,
    send_response,
)
from asyncinfer.local.lambda_environment import Payload
from asyncinfer.local.lambda_runtime import AsyncInvoker, FunctionRunner

PREFIX = "/2015-03-31/functions/"


MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit (6 MB)


class LambdaApi:
    def __init__(
        self,
        runners: Mapping[str, FunctionRunner],
        invoker: AsyncInvoker,
        host: str,
        port: int,
        gate: RequestGate | None = None,
    ) -> None:
        self._gate = gate  # IAM: the caller needs lambda:InvokeFunction on the function
        self._by_name = {runner.spec.name: logical for logical, runner in runners.items()}
        self._runners = runners
        self._invoker = invoker
        api = self

        class Handler(KeepAliveHandler):
            # Keep-alive and TCP_NODELAY, like the stack's other servers (every answer has a Content-Length).
            timeout = 60  # an idle keep-alive connection is closed after this many seconds

            def log_message(self, format: str, *args: object) -> None:  # quiet, like the other local services
                return

            def do_POST(self) -> None:
                api._handle(self)

        self._server = LoopbackServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="lambda-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.cut_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _function(self, path: str) -> str | None:
        if not path.startswith(PREFIX) or not path.endswith("/invocations"):
            return None
        name = unquote(path[len(PREFIX) : -len("/invocations")].split("?", maxsplit=1)[0])
        if name.startswith("arn:"):
            name = name.split(":")[6]  # arn:aws:lambda:region:account:function:NAME[:qualifier]
        return self._by_name.get(name.split(":")[0])

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        logical = self._function(request.path)
        assert isinstance(request, KeepAliveHandler)
        try:
            # Chunked or sized: a body left half-read would be taken for the next request on the connection.
            body = request.read_body(MAX_PAYLOAD_BYTES) or b"{}"
        except (BodyTooLarge, MalformedBody) as exc:
            request.close_connection = True
            too_large = isinstance(exc, BodyTooLarge)
            self._reply(
                request,
                413 if too_large else 400,
                {"Type": "User", "message": "Request must be smaller than 6291456 bytes" if too_large else str(exc)},
                {"x-amzn-ErrorType": "RequestTooLargeException" if too_large else "InvalidRequestContentException"},
            )
            return
        if self._gate is not None:
            path, _, query = request.path.partition("?")
            headers = {k.lower(): v for k, v in request.headers.items()}
            refusal = self._gate.refusal(request.command, path, query, headers)
            if refusal is not None:
                send_response(request, refusal)
                return
        if logical is None:
            self._reply(
                request,
                404,
                {"Type": "User", "Message": f"Function not found: {request.path}"},
                {"x-amzn-ErrorType": "ResourceNotFoundException"},
            )
            return
        try:
            event: Payload = json.loads(body or b"{}")
        except ValueError:
            self._reply(
                request,
                400,
                {"Type": "User", "message": "Could not parse request body into json"},
                {"x-amzn-ErrorType": "InvalidRequestContentException"},
            )
            return
        kind = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind == "DryRun":
            self._reply(request, 204, None, {})
        elif kind == "Event":
            self._invoker.submit(logical, event)
            self._reply(request, 202, None, {})
        else:
            result = self._runners[logical].invoke(event, str(uuid.uuid4()))
            if result.ok:
                self._reply(request, 200, result.result, {"X-Amz-Executed-Version": "$LATEST"})
            else:
                payload = {
                    "errorMessage": result.error_message,
                    "errorType": result.error_type,
                    "stackTrace": result.stack_trace,
                }
                self._reply(request, 200, payload, {"X-Amz-Function-Error": "Unhandled"})

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, payload: Payload, headers: Mapping[str, str]) -> None:
        data = b"" if status in (202, 204) else json.dumps(payload).encode()  # Event and DryRun answer no body
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

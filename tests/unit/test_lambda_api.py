"""The local Lambda Invoke API over keep-alive connections: every request's body is read whole, however framed."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from asyncinfer.local.lambda_api import PREFIX, LambdaApi
from asyncinfer.local.ports import free_ports


@dataclass
class _Spec:
    name: str


@dataclass
class _Runner:
    spec: _Spec


@dataclass
class _Invoker:
    submitted: list[tuple[str, Any]] = field(default_factory=list)

    def submit(self, logical: str, event: Any) -> None:
        self.submitted.append((logical, event))


@pytest.fixture
def api() -> Iterator[tuple[LambdaApi, _Invoker]]:
    invoker = _Invoker()
    served = LambdaApi({"Fn": _Runner(_Spec("my-fn"))}, invoker, "127.0.0.1", free_ports(1)[0])  # type: ignore[dict-item,arg-type]
    served.start()
    yield served, invoker
    served.stop()


def _event(connection: http.client.HTTPConnection, body: Any, *, chunked: bool = False) -> http.client.HTTPResponse:
    path, headers = f"{PREFIX}my-fn/invocations", {"X-Amz-Invocation-Type": "Event"}
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    connection.request("POST", path, body=body, headers=headers, encode_chunked=chunked)
    response = connection.getresponse()
    response.read()
    return response


def test_a_chunked_invoke_is_read_whole_and_the_next_one_on_the_connection_too(api: tuple[LambdaApi, _Invoker]) -> None:
    served, invoker = api
    port = int(served.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    first = _event(connection, iter([b'{"a": ', b"1}"]), chunked=True)
    second = _event(connection, json.dumps({"b": 2}).encode())
    assert (first.status, second.status) == (202, 202)
    assert first.getheader("Content-Length") == "0"  # Event invocations answer no body, as Lambda does
    assert invoker.submitted == [("Fn", {"a": 1}), ("Fn", {"b": 2})]
    connection.close()


def test_a_payload_over_the_limit_is_refused_with_lambdas_error(
    api: tuple[LambdaApi, _Invoker], monkeypatch: pytest.MonkeyPatch
) -> None:
    from asyncinfer.local import lambda_api

    monkeypatch.setattr(lambda_api, "MAX_PAYLOAD_BYTES", 10)
    served, invoker = api
    port = int(served.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", f"{PREFIX}my-fn/invocations", body=b'{"x": "' + b"y" * 20 + b'"}')
    response = connection.getresponse()
    assert response.status == 413
    assert response.getheader("x-amzn-ErrorType") == "RequestTooLargeException"
    assert invoker.submitted == []
    connection.close()

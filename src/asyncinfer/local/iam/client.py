"""The stack process's end of :mod:`asyncinfer.local.iam.control`: calls into moto's process over HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from asyncinfer.local.iam import control
from asyncinfer.local.iam.checks import Check
from asyncinfer.local.iam.identities import RoleCredentials
from asyncinfer.local.iam.template_policies import IamSetup

# One keep-alive connection per thread and server: the endpoint asks for every InvokeEndpointAsync and the pollers
# for every batch, and a new connection (and a new thread in moto's server) each time cost more than the decision.
_connections = threading.local()


def _connection(netloc: str, timeout: float) -> http.client.HTTPConnection:
    pool: dict[str, http.client.HTTPConnection] = _connections.__dict__.setdefault("pool", {})
    if netloc not in pool:
        pool[netloc] = http.client.HTTPConnection(netloc, timeout=timeout)
    return pool[netloc]


def _call(aws_endpoint_url: str, path: str, payload: Mapping[str, Any] | None = None, timeout: float = 10.0) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    netloc = urlsplit(aws_endpoint_url).netloc
    headers = {"Content-Type": "application/json"}
    for attempt in (1, 2):  # a kept connection the server closed (idle timeout) is opened again, once
        connection = _connection(netloc, timeout)
        try:
            connection.request("POST" if data is not None else "GET", path, data, headers)
            answer = connection.getresponse()
            body = answer.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            _connections.pool.pop(netloc, None)
            if attempt == 2:
                raise
            continue
        if answer.status >= 400:
            raise OSError(f"{path}: {answer.status} {body[:200]!r}")
        return json.loads(body)
    raise AssertionError("unreachable")


def configure(
    aws_endpoint_url: str,
    setup: IamSetup,
    credentials: Sequence[RoleCredentials],
    mode: str,
    log_path: Path | None,
) -> dict[str, Any]:
    payload = {
        "setup": setup.to_json(),
        "credentials": [c.to_json() for c in credentials],
        "mode": mode,
        "log_path": str(log_path) if log_path else None,
    }
    answer: dict[str, Any] = _call(aws_endpoint_url, control.CONFIGURE, payload)
    return answer


def replace_policies(aws_endpoint_url: str, setup: IamSetup) -> None:
    """The running stack's policies after an update (same identities, same decision log)."""
    _call(aws_endpoint_url, control.POLICIES, {"setup": setup.to_json()})


def authorize_request(
    aws_endpoint_url: str, method: str, path: str, query: str, headers: Mapping[str, str], service: str
) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """None when allowed; else the denial to answer (status, headers, body). ``service``: the signing name the
    server answering the request requires."""
    payload = {
        "request": {"method": method, "path": path, "query": query, "headers": dict(headers)},
        "service": service,
    }
    answer = _call(aws_endpoint_url, control.AUTHORIZE_REQUEST, payload)
    if answer["allowed"]:
        return None
    headers_out = [(str(k), str(v)) for k, v in answer["headers"]]
    return int(answer["status"]), headers_out, base64.b64decode(answer["body"])


def authorize_service(aws_endpoint_url: str, service: str, operation: str, checks: Sequence[Check]) -> list[str]:
    """The denials (empty when allowed) of a delivery ``service`` makes."""
    payload = {
        "service": service,
        "operation": operation,
        "checks": [{"action": c.action, "resource": c.resource, "context": dict(c.context)} for c in checks],
    }
    answer = _call(aws_endpoint_url, control.AUTHORIZE_SERVICE, payload)
    return [str(m) for m in answer["messages"]]


def report(aws_endpoint_url: str) -> dict[str, Any]:
    answer: dict[str, Any] = _call(aws_endpoint_url, control.REPORT)
    return answer


def decisions(aws_endpoint_url: str) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = _call(aws_endpoint_url, control.DECISIONS)["seen"]
    return answer

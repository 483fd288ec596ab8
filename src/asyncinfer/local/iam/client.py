"""The stack process's end of :mod:`asyncinfer.local.iam.control`: calls into moto's process over HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib import request

from asyncinfer.local.iam import control
from asyncinfer.local.iam.checks import Check
from asyncinfer.local.iam.identities import RoleCredentials
from asyncinfer.local.iam.template_policies import IamSetup


def _call(aws_endpoint_url: str, path: str, payload: Mapping[str, Any] | None = None, timeout: float = 10.0) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    call = request.Request(
        aws_endpoint_url.rstrip("/") + path,
        data,
        {"Content-Type": "application/json"},
        method="POST" if data is not None else "GET",
    )
    with request.urlopen(call, timeout=timeout) as answer:
        return json.loads(answer.read())


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

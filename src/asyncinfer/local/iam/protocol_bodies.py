"""The operation and parameters of a request to a service whose body names them: AWS JSON (``x-amz-target``), AWS
query (form body ``Action=…``) and Smithy RPC v2 CBOR (operation in the path; body not decoded)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from asyncinfer.local.iam.checks import UnmappedRequest

_CBOR_PATH_PARTS = 5  # "", "service", NAME, "operation", OPERATION


@dataclass(frozen=True)
class Call:
    """One API call: its operation name and its top-level parameters (query-protocol keys stay flattened, e.g.
    ``MetricData.member.1.MetricName``)."""

    operation: str
    params: Mapping[str, object] = field(default_factory=dict)
    protocol: str = "json"  # "json", "query" or "cbor"


def decode(headers: Mapping[str, str], body: bytes, path: str) -> Call:
    """The call a request makes; UnmappedRequest when it names no operation or its body cannot be read."""
    target = headers.get("x-amz-target")
    if target:
        return _json_call(target, body)
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded") or body.startswith(b"Action="):
        return _query_call(body)
    parts = path.split("/")
    if len(parts) == _CBOR_PATH_PARTS and parts[1] == "service" and parts[3] == "operation":
        # Parameters stay unread: checks needing one (cloudwatch:namespace) then fail closed, with this protocol named.
        return Call(parts[4], {}, "cbor")
    raise UnmappedRequest("request names no operation (no x-amz-target, no query Action, no RPC v2 path)")


def _json_call(target: str, body: bytes) -> Call:
    operation = target.rpartition(".")[2]
    if not operation:
        raise UnmappedRequest(f"x-amz-target {target!r} names no operation")
    try:
        params = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnmappedRequest(f"{operation}: body is not JSON ({exc})") from exc
    if not isinstance(params, dict):
        raise UnmappedRequest(f"{operation}: body is not a JSON object")
    return Call(operation, params, "json")


def _query_call(body: bytes) -> Call:
    try:
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise UnmappedRequest(f"query body is not UTF-8 ({exc})") from exc
    operation = params.pop("Action", "")
    if not operation:
        raise UnmappedRequest("query body names no Action")
    params.pop("Version", None)
    return Call(operation, params, "query")


def text(params: Mapping[str, object], name: str, operation: str) -> str:
    """A required string parameter; UnmappedRequest naming the operation when it is missing or not a string."""
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise UnmappedRequest(f"{operation} without a {name}")
    return value


def members(params: Mapping[str, object], name: str) -> list[Mapping[str, object]]:
    """A list-of-structures parameter, from JSON (a list) or query (``Name.member.N.Field`` keys)."""
    value = params.get(name)
    if isinstance(value, list):
        return [item for item in value if isinstance(item, Mapping)]
    found: dict[str, dict[str, object]] = {}
    prefix = f"{name}.member."
    for key, item in params.items():
        if key.startswith(prefix):
            index, _, rest = key[len(prefix) :].partition(".")
            found.setdefault(index, {})[rest] = item
    return [found[index] for index in sorted(found, key=lambda n: int(n) if n.isdigit() else 0)]

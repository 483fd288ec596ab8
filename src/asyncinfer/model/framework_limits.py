"""The request size, response size and response timeout a TorchServe or MMS model server enforces inside the
container, as the Model's Environment (``TS_*`` / ``MMS_*``) sets them, and the status codes it answers with.

Sources (see docs/local-stack.md, "Model server framework limits"):

* TorchServe documents ``max_request_size`` / ``max_response_size`` (default 6553500 bytes) and
  ``default_response_timeout`` (default 120 s); ``TS_<PROPERTY>`` environment variables set them.
* MMS documents ``default_response_timeout`` (120 s); its 6553500-byte size defaults are in its ConfigManager
  source, not its docs (UNVERIFIED as documented).
* A request over the limit: 413 (Netty's HttpObjectAggregator, empty body). A response over the limit, or no
  answer within the timeout: the worker is restarted and the request answered 500 "Worker died." (read from the
  WorkerThread source; UNVERIFIED against a running container).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args

Framework = Literal["none", "TorchServe", "MMS"]
FRAMEWORKS: Final[tuple[str, ...]] = get_args(Framework)

DEFAULT_MAX_REQUEST_BYTES: Final = 6_553_500
DEFAULT_MAX_RESPONSE_BYTES: Final = 6_553_500
DEFAULT_RESPONSE_TIMEOUT_SECONDS: Final = 120.0
JAVA_INT_MAX: Final = 2**31 - 1  # both servers read the sizes as Java ints

REQUEST_TOO_LARGE_STATUS: Final = 413
WORKER_DIED_STATUS: Final = 500

_PREFIX: Final[dict[str, str]] = {"TorchServe": "TS", "MMS": "MMS"}


class FrameworkLimitError(ValueError):
    """The Model's Environment sets a limit the model server would not start with (message names the variable)."""


@dataclass(frozen=True, slots=True)
class FrameworkLimits:
    framework: Framework
    max_request_bytes: int
    max_response_bytes: int
    response_timeout_seconds: float

    @property
    def variables(self) -> tuple[str, str, str]:
        """The environment variables that raise these limits (request, response, timeout)."""
        return variable_names(self.framework)


@dataclass(frozen=True, slots=True)
class FrameworkFailure:
    """What the model server answers instead of the model's response."""

    status: int
    body: bytes
    reason: str


def variable_names(framework: str) -> tuple[str, str, str]:
    prefix = _PREFIX[framework]
    return (f"{prefix}_MAX_REQUEST_SIZE", f"{prefix}_MAX_RESPONSE_SIZE", f"{prefix}_DEFAULT_RESPONSE_TIMEOUT")


def _positive_int(environment: Mapping[str, str], name: str, default: int) -> int:
    raw = environment.get(name)
    if raw is None:
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise FrameworkLimitError(f"{name}={raw!r} is not a whole number") from None
    if not 0 < value <= JAVA_INT_MAX:
        raise FrameworkLimitError(f"{name}={raw!r} must be between 1 and {JAVA_INT_MAX}")
    return value


def limits_for(framework: str, environment: Mapping[str, str]) -> FrameworkLimits | None:
    """The limits of ``framework`` (the template's ``ModelServerFramework``) under the Model's ``environment``;
    None for ``none`` (the container's own server, whose limits are its own). Raises FrameworkLimitError."""
    if framework == "none":
        return None
    if framework not in _PREFIX:
        raise FrameworkLimitError(f"ModelServerFramework={framework!r} is not one of {', '.join(FRAMEWORKS)}")
    request, response, timeout = variable_names(framework)
    return FrameworkLimits(
        framework=framework,  # type: ignore[arg-type]  # checked against _PREFIX above
        max_request_bytes=_positive_int(environment, request, DEFAULT_MAX_REQUEST_BYTES),
        max_response_bytes=_positive_int(environment, response, DEFAULT_MAX_RESPONSE_BYTES),
        response_timeout_seconds=float(_positive_int(environment, timeout, int(DEFAULT_RESPONSE_TIMEOUT_SECONDS))),
    )


def _worker_died(reason: str) -> FrameworkFailure:
    # Both servers' error body: {"code": ..., "type": ..., "message": ...}
    body = {"code": WORKER_DIED_STATUS, "type": "InternalServerException", "message": "Worker died."}
    return FrameworkFailure(WORKER_DIED_STATUS, json.dumps(body).encode(), reason)


def check_response(limits: FrameworkLimits, elapsed_seconds: float, response_bytes: int) -> FrameworkFailure | None:
    """What the server answers for a model response of ``response_bytes`` that took ``elapsed_seconds``: None when
    it passes the response through."""
    if elapsed_seconds >= limits.response_timeout_seconds:
        return _worker_died(
            f"the model did not answer within {limits.variables[2]}={limits.response_timeout_seconds:g}s"
        )
    if response_bytes > limits.max_response_bytes:
        return _worker_died(
            f"the response ({response_bytes} bytes) is over {limits.variables[1]}={limits.max_response_bytes}"
        )
    return None

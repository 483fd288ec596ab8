"""TorchServe's and MMS's own limits in the local model server (model/framework_limits.py): defaults, the values the
Model's Environment raises them to, and the status codes the user sees on AWS."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from asyncinfer.local.endpoint.container import ContainerCall
from asyncinfer.local.model_hosting import ModelFleet
from asyncinfer.model import demo
from asyncinfer.model.framework_limits import (
    DEFAULT_MAX_REQUEST_BYTES,
    FrameworkLimitError,
    FrameworkLimits,
    check_response,
    limits_for,
)
from asyncinfer.model.server import start_model_server

ROWS = demo.rows_to_csv(demo.make_input_rows(3, seed=1))


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    reply = ContainerCall(url).invoke(body, {"Content-Type": "text/csv", "Accept": "text/csv"}, 30.0)
    assert reply.has_content_length
    return reply.status, reply.body


def _padded(size: int) -> bytes:
    """Valid CSV of exactly ``size`` bytes: the rows, then blank lines."""
    return ROWS + b"\n" * (size - len(ROWS))


@pytest.mark.parametrize(("framework", "prefix"), [("TorchServe", "TS"), ("MMS", "MMS")])
def test_defaults_when_the_environment_sets_nothing_and_its_values_when_it_does(framework: str, prefix: str) -> None:
    default = limits_for(framework, {})
    assert default == FrameworkLimits(framework, 6_553_500, 6_553_500, 120.0)  # type: ignore[arg-type]
    raised = limits_for(
        framework,
        {
            f"{prefix}_MAX_REQUEST_SIZE": "100000000",
            f"{prefix}_MAX_RESPONSE_SIZE": "200",
            f"{prefix}_DEFAULT_RESPONSE_TIMEOUT": "900",
            "TS_MAX_REQUEST_SIZE" if prefix == "MMS" else "MMS_MAX_REQUEST_SIZE": "1",  # the other server's: ignored
        },
    )
    assert raised == FrameworkLimits(framework, 100_000_000, 200, 900.0)  # type: ignore[arg-type]
    assert limits_for("none", {"TS_MAX_REQUEST_SIZE": "1"}) is None


@pytest.mark.parametrize("value", ["", "6.5MB", "0", "-1", str(2**31)])
def test_a_value_the_server_would_not_start_with_is_a_clear_error(value: str) -> None:
    with pytest.raises(FrameworkLimitError, match="TS_MAX_REQUEST_SIZE"):
        limits_for("TorchServe", {"TS_MAX_REQUEST_SIZE": value})
    with pytest.raises(FrameworkLimitError, match="ModelServerFramework"):
        limits_for("Triton", {})


def test_response_over_the_limit_or_too_late_is_the_servers_500() -> None:
    limits = FrameworkLimits("TorchServe", 10, 100, 2.0)
    assert check_response(limits, 1.9, 100) is None
    late = check_response(limits, 2.0, 1)
    big = check_response(limits, 0.1, 101)
    assert late is not None and late.status == 500 and "TS_DEFAULT_RESPONSE_TIMEOUT" in late.reason
    assert big is not None and big.status == 500 and "TS_MAX_RESPONSE_SIZE" in big.reason
    assert json.loads(big.body)["message"] == "Worker died."


def test_the_default_request_limit_answers_413_and_the_raised_one_serves(artifact: Path) -> None:
    size = DEFAULT_MAX_REQUEST_BYTES + 1
    with start_model_server(artifact, framework_limits=limits_for("TorchServe", {})) as default:
        assert _post(default.url, _padded(DEFAULT_MAX_REQUEST_BYTES))[0] == 200
        assert _post(default.url, _padded(size))[0] == 413
    raised = limits_for("TorchServe", {"TS_MAX_REQUEST_SIZE": "100000000"})
    with start_model_server(artifact, framework_limits=raised) as served:
        # Above the XGBoost container's own 6 MiB: the framework's limit replaces it.
        status, body = _post(served.url, _padded(7 * 1024 * 1024))
        assert status == 200 and len(body.splitlines()) == 3


def test_a_large_response_and_a_slow_model_are_answered_500(artifact: Path) -> None:
    small = limits_for("MMS", {"MMS_MAX_RESPONSE_SIZE": "8"})
    with start_model_server(artifact, framework_limits=small) as server:
        status, body = _post(server.url, ROWS)
        assert status == 500 and json.loads(body)["message"] == "Worker died."
    slow = limits_for("MMS", {"MMS_DEFAULT_RESPONSE_TIMEOUT": "1"})
    with start_model_server(artifact, framework_limits=slow, latency_seconds=30.0) as server:
        started = time.monotonic()
        assert _post(server.url, ROWS)[0] == 500
        assert time.monotonic() - started < 5, "the server gives up at its timeout, not after the model"


def test_the_fleet_gives_every_container_the_provisioned_limits(artifact: Path) -> None:
    fleet = ModelFleet(None, framework_limits=limits_for("TorchServe", {"TS_MAX_RESPONSE_SIZE": "8"}))  # type: ignore[arg-type]
    try:
        url = fleet.start("ep", str(artifact), 0)
        assert _post(url, ROWS)[0] == 500
    finally:
        fleet.stop()

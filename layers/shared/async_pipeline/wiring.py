"""Builds the domain objects from the function's environment, once per container (lazily, on first use), and
wraps handlers in their observability.

Variables are listed in docs/design.md and set by template.yaml. A missing one is a deployment error: it fails
the invocation with its name rather than with a KeyError deep inside a handler.

Cold start: a handler module imports boto3 (every path needs it, and it is the floor every Python function pays),
the Powertools Logger and Metrics, and the few modules of its own path. The X-Ray SDK is imported only where
tracing is on (see :func:`tracing_enabled`); clients are made on first use.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from async_pipeline.clock import Clock
from async_pipeline.jobs import JobStore
from async_pipeline.result_events import EventPublisher

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

    from async_pipeline.submission import Submitter

# Leases end a little after Lambda's hard stop of the invocation that holds them: past that, its owner is dead.
LEASE_MARGIN_MS = 2000


class ConfigurationError(RuntimeError):
    """The function's environment lacks a variable the template should have set."""


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


def require(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set (template.yaml sets it on the function)")
    return value


def _optional_int(name: str) -> int | None:
    value = os.environ.get(name, "")
    if not value:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigurationError(f"environment variable {name}={value!r} is not an integer") from exc


@cache
def client(service: str) -> Any:
    """One client per service per container. Imported here so a cold start pays boto3 only once, on first use."""
    import boto3
    from botocore.config import Config

    if service == "sagemaker-runtime":
        # Adaptive mode backs off on ThrottlingException and 503s and then rate-limits this container's calls.
        # Four attempts (exponential back-off, full jitter: at most 1 + 2 + 4 s) fit the function's 30 s timeout;
        # a longer burst fails the record, and Lambda's own retries (1 and 2 minutes later) take over.
        config = Config(retries={"mode": "adaptive", "total_max_attempts": 4}, connect_timeout=5, read_timeout=10)
    else:
        config = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=5, read_timeout=10)
    return boto3.client(service, config=config)  # type: ignore[call-overload]


@cache
def job_store() -> JobStore:
    days = _optional_int("JOB_RETENTION_DAYS") or 30
    return JobStore(client("dynamodb"), require("JOBS_TABLE_NAME"), retention_seconds=days * 86400)


@cache
def publisher() -> EventPublisher:
    return EventPublisher(client("events"), require("EVENT_BUS_NAME"))


@cache
def submitter() -> Submitter:
    from async_pipeline.staging import StagingPlace
    from async_pipeline.submission import Settings, Submitter

    try:
        staging = StagingPlace.from_uri(require("STAGING_LOCATION"))
    except ValueError as exc:
        raise ConfigurationError(f"environment variable STAGING_LOCATION: {exc}") from exc
    settings = Settings(
        endpoint_name=require("ENDPOINT_NAME"),
        default_content_type=os.environ.get("DEFAULT_CONTENT_TYPE") or "application/octet-stream",
        accept=os.environ.get("DEFAULT_ACCEPT") or None,
        request_ttl_seconds=_optional_int("REQUEST_TTL_SECONDS"),
        invocation_timeout_seconds=_optional_int("INVOCATION_TIMEOUT_SECONDS"),
        staging=staging,
    )
    return Submitter(settings, job_store(), client("s3"), client("sagemaker-runtime"), publisher())


# Every per-container cache above: what :func:`reset` clears.
_CACHED = (client, job_store, publisher, submitter)


def reset() -> None:
    """Forget every cached client and domain object: the next use builds them again, from the environment and
    the boto3 setup of that moment (tests and benchmarks enter and leave AWS mocks)."""
    for cached in _CACHED:
        cached.cache_clear()


def clock(context: LambdaContext) -> Clock:
    """Wall time plus the end of this invocation's leases (its deadline, plus a margin)."""
    now_ms = int(time.time() * 1000)
    return Clock(now_s=time.time, deadline_ms=now_ms + context.get_remaining_time_in_millis() + LEASE_MARGIN_MS)


_TRUE = frozenset({"1", "y", "yes", "t", "true", "on"})
Handler = TypeVar("Handler", bound=Callable[..., Any])


def tracing_enabled() -> bool:
    """Whether Powertools' Tracer would record traces here, by its own rules, without importing the X-Ray SDK.

    ``Tracer()`` imports ``aws_xray_sdk`` even when it is disabled (about 20 ms, an eighth of boto3), so where it
    would be disabled (``POWERTOOLS_TRACE_DISABLED``, outside Lambda, under ``sam local``) it is never created.
    """
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE:
        return False
    in_lambda = bool(os.environ.get("LAMBDA_TASK_ROOT"))
    emulated = bool(os.environ.get("AWS_SAM_LOCAL") or os.environ.get("AWS_CHALICE_CLI_MODE"))
    return in_lambda and not emulated


def instrument(handler: Handler, *, logger: Logger, metrics: Metrics) -> Handler:
    """The handler with Powertools around it: JSON logs with the Lambda context, EMF metrics flushed after every
    invocation, and (where tracing is on) an X-Ray subsegment for the handler and one per AWS call.

    The Tracer patches botocore only: those are the calls this code makes (``patch_all`` would import and patch
    every library it knows, for nothing).
    """
    wrapped: Callable[..., Any] = metrics.log_metrics(handler)
    if tracing_enabled():
        from aws_lambda_powertools import Tracer

        wrapped = Tracer(patch_modules=["botocore"]).capture_lambda_handler(wrapped)
    return cast("Handler", logger.inject_lambda_context(wrapped))

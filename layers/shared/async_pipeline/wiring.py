"""Builds the domain objects from the function's environment, once per container (lazily, on first use).

Variables are listed in docs/design.md and set by template.yaml. A missing one is a deployment error: it fails
the invocation with its name rather than with a KeyError deep inside a handler.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any, Protocol

from async_pipeline.completion import Clock
from async_pipeline.jobs import JobStore
from async_pipeline.result_events import EventPublisher
from async_pipeline.submission import Settings, Submitter

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
    settings = Settings(
        endpoint_name=require("ENDPOINT_NAME"),
        default_content_type=os.environ.get("DEFAULT_CONTENT_TYPE") or "application/octet-stream",
        accept=os.environ.get("DEFAULT_ACCEPT") or None,
        request_ttl_seconds=_optional_int("REQUEST_TTL_SECONDS"),
        invocation_timeout_seconds=_optional_int("INVOCATION_TIMEOUT_SECONDS"),
    )
    return Submitter(settings, job_store(), client("s3"), client("sagemaker-runtime"), publisher())


def clock(context: LambdaContext) -> Clock:
    """Wall time plus the end of this invocation's leases (its deadline, plus a margin)."""
    now_ms = int(time.time() * 1000)
    return Clock(now_s=time.time, deadline_ms=now_ms + context.get_remaining_time_in_millis() + LEASE_MARGIN_MS)

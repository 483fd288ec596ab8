"""Crash faults inside a Lambda worker process (``crash-after-invoke``, ``crash-after-job-write``), as botocore hooks.

Standard library only at import time: the worker imports this before the handler (cold start); boto3 is imported
only when a plan asks for these faults.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from asyncinfer.faults.catalogue import WORKER_FAULTS, FaultPlan
from asyncinfer.faults.injector import FaultInjector

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import UpdateItemInputTypeDef

ENV_VAR = "ASYNCINFER_FAULTS"  # the plan, as JSON, for the worker processes
WORKER_ID_VAR = "ASYNCINFER_WORKER_ID"  # which execution environment a worker is ("Function:3"), for its draws
_TERMINAL_WRITE = "asyncinfer_terminal_write"  # the request context's flag between the two UpdateItem hooks


def terminal_job_write(params: UpdateItemInputTypeDef) -> bool:
    """Whether an UpdateItem is a job's terminal transition (JobStore.finish): status set to COMPLETED or FAILED
    together with eventPending."""
    expression = str(params.get("UpdateExpression", ""))
    value = params.get("ExpressionAttributeValues", {}).get(":status")
    status = value.get("S") if isinstance(value, Mapping) else None
    return "eventPending = :true" in expression and status in ("COMPLETED", "FAILED")


def install_worker_faults(report: Callable[[str], object], environ: Mapping[str, str] | None = None) -> bool:
    """Crash faults inside a Lambda worker process, as botocore hooks on boto3's default session (the one the
    handlers' ``boto3.client`` calls use). Call before the handler is imported. ``report(name)`` is called just
    before the process dies. Returns whether anything was installed."""
    raw = (environ if environ is not None else os.environ).get(ENV_VAR)
    if not raw:
        return False
    plan = FaultPlan.from_json(json.loads(raw)).only(WORKER_FAULTS)
    if not plan:
        return False
    import boto3

    # One generator per execution environment: the runtime numbers them per function, in start order.
    injector = FaultInjector(plan, salt=os.environ.get(WORKER_ID_VAR) or f"{os.getpid()}")
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    events = boto3.DEFAULT_SESSION.events

    def crash(name: str) -> None:
        report(name)
        os._exit(137)  # as the kernel's OOM killer would: no cleanup, no reply

    # botocore calls its event handlers with keyword arguments only, more of them than a handler names.
    def after_invoke(http_response: object, **_: object) -> None:
        if 200 <= getattr(http_response, "status_code", 0) < 300 and injector.fire("crash-after-invoke"):
            crash("crash-after-invoke")

    def remember_params(params: UpdateItemInputTypeDef, context: dict[str, object], **_: object) -> None:
        context[_TERMINAL_WRITE] = terminal_job_write(params)

    def after_update(http_response: object, context: Mapping[str, object], **_: object) -> None:
        if (
            context.get(_TERMINAL_WRITE)
            and getattr(http_response, "status_code", 0) == 200
            and injector.fire("crash-after-job-write")
        ):
            crash("crash-after-job-write")

    if plan.on("crash-after-invoke"):
        events.register("after-call.sagemaker-runtime.InvokeEndpointAsync", after_invoke)
    if plan.on("crash-after-job-write"):
        events.register("before-parameter-build.dynamodb.UpdateItem", remember_params)
        events.register("after-call.dynamodb.UpdateItem", after_update)
    return True

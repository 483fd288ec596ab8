"""Fault injection for the local stack: what AWS may do to the pipeline, on demand, reproducibly.

Every fault lives in the local stack only (the Lambda runtime, the endpoint emulator, a proxy in front of the model
container, the worker processes); the handlers and the shared layer run unchanged, exactly as deployed.

A fault has a name, a rate (the probability per opportunity: per delivery, per request, per write) and a place:

==========================  ====================================================================================
``dup-s3``                  the Lambda runtime delivers an S3 event twice: at once (the two run concurrently) or
                            0.2-5 s later
``dup-sns``                 the same for SNS deliveries (success and error notifications)
``late-delivery``           an S3 or SNS delivery is held back 1-6 s, so that later ones overtake it
``container-5xx``           the model container answers 500
``container-timeout``       the model container stalls past InvocationTimeoutSeconds
``container-down``          the model container dies (the calls in flight are cut), refuses connections for 2-5 s,
                            and comes back
``throttle``                InvokeEndpointAsync answers ThrottlingException (400); one time in five instead, a
                            ServiceUnavailable (503) burst of 1-3 s starts
``endpoint-outage``         InvokeEndpointAsync answers ServiceUnavailable (503) for 30-45 s: longer than the
                            client's retries and the local runtime's (1 s and 2 s apart, a crashed or timed-out
                            one after Timeout + 3 s), so the submissions it catches end in the dead-letter queue
``crash-after-invoke``      the submitter's process dies right after InvokeEndpointAsync returned, before its job
                            write
``crash-after-job-write``   a function's process dies right after its terminal job write, before the result event
``ttl-expiry``              the endpoint has no instance for 2-4 s and the requests queued meanwhile expire, as if
                            RequestTTLSeconds had passed
``output-write-refused``    the output bucket refuses the endpoint's writes for 2-5 s
==========================  ====================================================================================

``--faults all`` turns every fault on at its default rate; ``--faults dup-s3,throttle=0.2`` some of them (a rate
after ``=``). Random draws come from one generator per fault, seeded from the plan's seed and the fault's name, so a
run draws the same sequence of decisions (which request gets which one depends on thread timing).

This module imports nothing beyond the standard library: the worker processes import it before the handler.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ENV_VAR = "ASYNCINFER_FAULTS"  # the plan, as JSON, for the worker processes
WORKER_ID_VAR = "ASYNCINFER_WORKER_ID"  # which execution environment a worker is ("Function:3"), for its draws


@dataclass(frozen=True)
class Fault:
    name: str
    rate: float  # default probability per opportunity
    per: str  # what an opportunity is
    where: str  # which piece of the local stack injects it
    description: str


CATALOGUE: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault(
            "dup-s3",
            0.10,
            "S3 delivery",
            "Lambda runtime (trigger poller)",
            "an S3 event is delivered twice: at once (both run concurrently) or 0.2-5 s later",
        ),
        Fault(
            "dup-sns",
            0.10,
            "SNS delivery",
            "Lambda runtime (trigger poller)",
            "an SNS notification is delivered twice: at once (both run concurrently) or 0.2-5 s later",
        ),
        Fault(
            "late-delivery",
            0.10,
            "S3 or SNS delivery",
            "Lambda runtime (trigger poller)",
            "a delivery is held back 1-6 s, so later ones overtake it (late and out of order)",
        ),
        Fault(
            "container-5xx",
            0.03,
            "model call",
            "chaos proxy before the model container",
            "the model container answers 500",
        ),
        Fault(
            "container-timeout",
            0.02,
            "model call",
            "chaos proxy before the model container",
            "the model container stalls past InvocationTimeoutSeconds",
        ),
        Fault(
            "container-down",
            0.005,
            "model call",
            "chaos proxy before the model container",
            "the model container dies (calls in flight are cut), refuses connections for 2-5 s, then is back",
        ),
        Fault(
            "throttle",
            0.05,
            "InvokeEndpointAsync",
            "endpoint emulator (HTTP layer)",
            "ThrottlingException (400); one time in five a ServiceUnavailable (503) burst of 1-3 s instead",
        ),
        Fault(
            "endpoint-outage",
            0.0005,
            "InvokeEndpointAsync",
            "endpoint emulator (HTTP layer)",
            "ServiceUnavailable (503) for 30-45 s, outlasting the client's and the local Lambda's retries",
        ),
        Fault(
            "crash-after-invoke",
            0.03,
            "InvokeEndpointAsync by a function",
            "Lambda worker process",
            "the submitter's process dies after InvokeEndpointAsync returned, before its job write",
        ),
        Fault(
            "crash-after-job-write",
            0.03,
            "terminal job write",
            "Lambda worker process",
            "a function's process dies after its terminal job write, before the result event",
        ),
        Fault(
            "ttl-expiry",
            0.002,
            "accepted request",
            "endpoint emulator (instances, TTL clock)",
            "no instance for 2-4 s; the requests queued meanwhile expire as if RequestTTLSeconds had passed",
        ),
        Fault(
            "output-write-refused",
            0.005,
            "output write",
            "endpoint emulator (S3 writes)",
            "the output bucket refuses the endpoint's writes for 2-5 s",
        ),
    )
}

# Faults that need something of the stack's configuration.
WORKER_FAULTS = frozenset({"crash-after-invoke", "crash-after-job-write"})
CONTAINER_FAULTS = frozenset({"container-5xx", "container-timeout", "container-down"})


def stack_parameters(plan: FaultPlan, overrides: Mapping[str, str]) -> dict[str, str]:
    """Template parameter overrides a plan needs on the local stack, unless the user set them: with
    ``container-timeout`` a 2 s InvocationTimeoutSeconds, so that a stalled container costs seconds, not 15 minutes."""
    parameters = dict(overrides)
    if plan.on("container-timeout"):
        parameters.setdefault("InvocationTimeoutSeconds", "2")
    return parameters


class FaultSpecError(ValueError):
    """A --faults value that names no fault or has a bad rate; the message says which."""


@dataclass(frozen=True)
class FaultPlan:
    """Which faults are on, at which rate, and the seed of their random draws."""

    rates: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0

    @classmethod
    def parse(cls, spec: str | None, seed: int = 0) -> FaultPlan:
        """``all``, ``none`` (or empty), or ``name[=rate],…``; ``all,throttle=0.2`` changes one rate of all."""
        rates: dict[str, float] = {}
        for raw in (spec or "").split(","):
            item = raw.strip()
            if not item or item == "none":
                continue
            name, sep, value = item.partition("=")
            name = name.strip()
            if name == "all":
                if sep:
                    raise FaultSpecError("'all' takes no rate")
                rates.update({f.name: f.rate for f in CATALOGUE.values()})
                continue
            if name not in CATALOGUE:
                known = ", ".join(CATALOGUE)
                raise FaultSpecError(f"unknown fault {name!r} (known: all, {known})")
            if sep:
                try:
                    rate = float(value)
                except ValueError:
                    raise FaultSpecError(f"{name}: rate {value!r} is not a number") from None
                if not 0.0 <= rate <= 1.0:
                    raise FaultSpecError(f"{name}: rate {rate} is not between 0 and 1")
            else:
                rate = CATALOGUE[name].rate
            rates[name] = rate
        return cls({name: rates[name] for name in CATALOGUE if name in rates}, seed)

    def __bool__(self) -> bool:
        return any(rate > 0 for rate in self.rates.values())

    def on(self, name: str) -> bool:
        return self.rates.get(name, 0.0) > 0

    def rate(self, name: str) -> float:
        return self.rates.get(name, 0.0)

    def only(self, names: frozenset[str]) -> FaultPlan:
        return FaultPlan({k: v for k, v in self.rates.items() if k in names}, self.seed)

    def describe(self) -> str:
        return ",".join(f"{name}={rate:g}" for name, rate in self.rates.items()) or "none"

    def to_json(self) -> dict[str, Any]:
        return {"rates": dict(self.rates), "seed": self.seed}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultPlan:
        return cls({str(k): float(v) for k, v in dict(data.get("rates", {})).items()}, int(data.get("seed", 0)))


class FaultInjector:
    """The random draws and counters of a plan, shared by the pieces of one local stack (thread-safe).

    ``fire(name)`` draws for one opportunity and counts a hit; windows (``open_window``/``window_open``) model the
    faults that last a while (a 503 burst, a dead container, a bucket refusing writes).
    """

    def __init__(self, plan: FaultPlan, salt: str = "") -> None:
        self.plan = plan
        self._lock = threading.Lock()
        self._random = {name: random.Random(f"{plan.seed}:{name}:{salt}") for name in CATALOGUE}
        self._counts: Counter[str] = Counter()
        self._windows: dict[str, float] = {}

    def on(self, name: str) -> bool:
        return self.plan.on(name)

    def fire(self, name: str, *, counted: bool = True) -> bool:
        """One opportunity for fault ``name``: True (and, if ``counted``, counted) when it strikes."""
        probability = self.plan.rate(name)
        if probability <= 0:
            return False
        with self._lock:
            hit = self._random[name].random() < probability
            if hit and counted:
                self._counts[name] += 1
        return hit

    def uniform(self, name: str, low: float, high: float) -> float:
        with self._lock:
            return self._random[name].uniform(low, high)

    def chance(self, name: str, probability: float) -> bool:
        """A further draw from the fault's generator (not counted): e.g. which flavour a hit takes."""
        with self._lock:
            return self._random[name].random() < probability

    def count(self, name: str, n: int = 1) -> None:
        """Count a hit drawn elsewhere (in a worker process) or an effect of a window (a refused call)."""
        with self._lock:
            self._counts[name] += n

    def open_window(self, name: str, seconds: float) -> bool:
        """Start a period of fault ``name`` (counted as ``name:episodes``); False if one is already on."""
        now = time.monotonic()
        with self._lock:
            if self._windows.get(name, 0.0) > now:
                return False
            self._windows[name] = now + seconds
            self._counts[f"{name}:episodes"] += 1
        return True

    def window_open(self, name: str) -> bool:
        with self._lock:
            return self._windows.get(name, 0.0) > time.monotonic()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))


# --- in the Lambda worker process -----------------------------------------------------------------------------------


def _terminal_job_write(params: Mapping[str, Any]) -> bool:
    """Whether an UpdateItem is a job's terminal transition (JobStore.finish): status set to COMPLETED or FAILED
    together with eventPending."""
    expression = str(params.get("UpdateExpression", ""))
    status = params.get("ExpressionAttributeValues", {}).get(":status", {}).get("S")
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

    def after_invoke(http_response: Any, **_: Any) -> None:
        if 200 <= getattr(http_response, "status_code", 0) < 300 and injector.fire("crash-after-invoke"):
            crash("crash-after-invoke")

    def remember_params(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["asyncinfer_terminal_write"] = _terminal_job_write(params)

    def after_update(http_response: Any, context: Mapping[str, Any], **_: Any) -> None:
        if (
            context.get("asyncinfer_terminal_write")
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


# --- in the endpoint emulator -----------------------------------------------------------------------------------------


class EndpointFaults:
    """The emulator's hooks for ``throttle``, ``endpoint-outage``, ``output-write-refused`` and ``ttl-expiry``.

    ``emulator`` is an :class:`asyncinfer.local.sagemaker_runtime.AsyncEndpointEmulator` (not imported here, to keep
    this module light for the worker processes).
    """

    # Larger than any RequestTTLSeconds InvokeEndpointAsync accepts (21600): every queued request expires.
    TTL_JUMP_SECONDS = 21_601.0

    def __init__(self, injector: FaultInjector, emulator: Any) -> None:
        self._faults = injector
        self._emulator = emulator
        self._stopping = threading.Event()
        self._episode: threading.Thread | None = None
        self._lock = threading.Lock()

    def install(self) -> None:
        if self._faults.on("throttle") or self._faults.on("endpoint-outage"):
            self._emulator.before_accept = self.before_accept
        if self._faults.on("output-write-refused"):
            self._emulator.before_write = self.before_write
        if self._faults.on("ttl-expiry"):
            self._emulator.on_event = self.on_event

    def before_accept(self, params: Any) -> None:
        """InvokeEndpointAsync's answer before the request is looked at: ThrottlingException, or 503 in a burst."""
        from asyncinfer.local.sagemaker_protocol import ApiError

        faults, name = self._faults, "endpoint-outage"
        if not faults.window_open(name) and faults.fire(name, counted=False):
            faults.open_window(name, faults.uniform(name, 30.0, 45.0))
        if faults.window_open(name):
            faults.count(name)
            raise ApiError(503, "ServiceUnavailable", "The service is unavailable. Please try again later.")
        name = "throttle"
        if not faults.window_open(name) and faults.fire(name, counted=False):
            if not faults.chance(name, 0.2):
                faults.count(name)
                raise ApiError(400, "ThrottlingException", "Rate exceeded")
            faults.open_window(name, faults.uniform(name, 1.0, 3.0))
        if faults.window_open(name):
            faults.count(name)
            raise ApiError(503, "ServiceUnavailable", "The service is unavailable. Please try again later.")

    def before_write(self, location: str, kind: str) -> None:
        """The output bucket refuses every write for a while (outputs and failure objects alike)."""
        from botocore.exceptions import ClientError

        faults, name = self._faults, "output-write-refused"
        if kind == "output" and not faults.window_open(name) and faults.fire(name, counted=False):
            faults.open_window(name, faults.uniform(name, 2.0, 5.0))
        if faults.window_open(name):
            faults.count(name)
            error = {"Error": {"Code": "AccessDenied", "Message": f"Access Denied (injected fault) writing {location}"}}
            raise ClientError(error, "PutObject")  # type: ignore[arg-type]

    def on_event(self, event: Any) -> None:
        if event.kind != "accepted":
            return
        with self._lock:  # stop() sets _stopping then joins under this lock: no episode may start after it
            if self._stopping.is_set():
                return
            busy = self._episode is not None and self._episode.is_alive()
            if busy or not self._faults.fire("ttl-expiry", counted=False):
                return
            self._episode = threading.Thread(
                target=self._ttl_episode, args=(event.endpoint_name,), name="fault-ttl-expiry", daemon=True
            )
            self._episode.start()

    def _ttl_episode(self, endpoint_name: str) -> None:
        """No instance for 2-4 s; then what is queued expires, as if its RequestTTLSeconds had passed; scale back."""
        faults, name, emulator = self._faults, "ttl-expiry", self._emulator
        faults.open_window(name, 0.0)  # counts the episode
        instances = int(emulator.stats(endpoint_name)["instances"])
        emulator.set_instance_count(endpoint_name, 0)
        try:
            self._stopping.wait(faults.uniform(name, 2.0, 4.0))
            expired = int(emulator.sweep_expired(endpoint_name, ahead_seconds=self.TTL_JUMP_SECONDS))
            faults.count(name, expired)
        finally:
            if not self._stopping.is_set():
                emulator.set_instance_count(endpoint_name, instances)

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            episode = self._episode
        if episode is not None:
            episode.join(5)

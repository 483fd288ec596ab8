"""The faults the local stack can inject (:data:`CATALOGUE`) and a plan of them (:class:`FaultPlan`, ``--faults``).

Standard library only: the Lambda worker processes import it before the handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict


@dataclass(frozen=True)
class Fault:
    """One fault: its default rate, what an opportunity for it is, and which piece of the local stack injects it."""

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
            "input-changed",
            0.02,
            "accepted request",
            "endpoint emulator (as it accepts a request)",
            "the request's input key is overwritten with other rows (two times in three) or deleted before the "
            "request runs",
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
ENDPOINT_FAULTS = frozenset({"throttle", "endpoint-outage", "output-write-refused", "ttl-expiry", "input-changed"})


def stack_parameters(plan: FaultPlan, overrides: Mapping[str, str]) -> dict[str, str]:
    """Template parameter overrides a plan needs on the local stack, unless the user set them: with
    ``container-timeout`` a 2 s InvocationTimeoutSeconds, so that a stalled container costs seconds, not 15 minutes."""
    parameters = dict(overrides)
    if plan.on("container-timeout"):
        parameters.setdefault("InvocationTimeoutSeconds", "2")
    return parameters


class PlanDocument(TypedDict, total=False):
    """A plan as JSON (the state file, ``ASYNCINFER_FAULTS``)."""

    rates: Mapping[str, float]
    seed: int


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

    def to_json(self) -> PlanDocument:
        return {"rates": dict(self.rates), "seed": self.seed}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultPlan:  # parsed JSON: a PlanDocument, or {}
        return cls({str(k): float(v) for k, v in dict(data.get("rates", {})).items()}, int(data.get("seed", 0)))

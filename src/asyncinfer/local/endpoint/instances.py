"""The instances behind an endpoint's variant: each one starting, running (InService) or stopping.

SageMaker takes minutes to start an instance (provisioning, image pull, model download, ``/ping``) and drains one
before it stops. :class:`InstanceFleet` follows the variant's desired count with those delays, in emulated seconds
(see :mod:`asyncinfer.local.time_scale`); only running instances take requests. Pure: the caller says what time it
is.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

InstanceState = Literal["starting", "running", "stopping"]


@dataclass(slots=True)
class Instance:
    instance_id: str
    state: InstanceState
    since: float  # when it entered this state (emulated seconds)
    until: float | None = None  # when starting or stopping ends


@dataclass
class InstanceFleet:
    """Instances following a desired count. Scale-out adds starting instances (running after ``startup_seconds``);
    scale-in first cancels starting ones (newest first), then stops running ones (gone after ``stop_seconds``)."""

    startup_seconds: float
    stop_seconds: float
    instances: list[Instance] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    @classmethod
    def running(cls, count: int, now: float, startup_seconds: float, stop_seconds: float) -> InstanceFleet:
        """A fleet of ``count`` instances already in service (an endpoint just created with InitialInstanceCount)."""
        fleet = cls(startup_seconds, stop_seconds)
        fleet.instances = [Instance(fleet._new_id(), "running", now) for _ in range(count)]
        return fleet

    def _new_id(self) -> str:
        return f"i-{next(self._ids):04d}"

    def _in(self, state: InstanceState) -> list[Instance]:
        return [i for i in self.instances if i.state == state]

    @property
    def desired(self) -> int:
        return len(self.instances) - len(self._in("stopping"))

    @property
    def running_count(self) -> int:
        return len(self._in("running"))

    @property
    def starting_count(self) -> int:
        return len(self._in("starting"))

    @property
    def stopping_count(self) -> int:
        return len(self._in("stopping"))

    def set_desired(self, desired: int, now: float) -> None:
        if desired < 0:
            raise ValueError("the desired instance count cannot be negative")
        self.advance(now)
        missing = desired - self.desired
        for _ in range(missing):
            self.instances.append(Instance(self._new_id(), "starting", now, now + self.startup_seconds))
        extra = -missing
        for instance in reversed(self._in("starting")):
            if extra <= 0:
                break
            self.instances.remove(instance)
            extra -= 1
        for instance in reversed(self._in("running")):
            if extra <= 0:
                break
            instance.state, instance.since, instance.until = "stopping", now, now + self.stop_seconds
            extra -= 1

    def advance(self, now: float) -> bool:
        """Move instances whose start-up or stop is over; True when anything changed."""
        changed = False
        for instance in list(self.instances):
            if instance.until is None or instance.until > now:
                continue
            changed = True
            if instance.state == "starting":
                instance.state, instance.since, instance.until = "running", instance.until, None
            else:
                self.instances.remove(instance)
        return changed

    def next_change(self) -> float | None:
        """When the next instance finishes starting or stopping (None: nothing is on its way)."""
        pending = [i.until for i in self.instances if i.until is not None]
        return min(pending) if pending else None

    def first_ready_at(self) -> float | None:
        """When the first starting instance will be in service (None when none is starting)."""
        starting = [i.until for i in self._in("starting") if i.until is not None]
        return min(starting) if starting else None

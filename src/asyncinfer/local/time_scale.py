"""The local stack's scaled time: with ``--time-scale N`` an emulated minute passes in 60/N real seconds.

CloudWatch metrics and alarms, Application Auto Scaling's cooldowns and the endpoint's instance start-up and stop
all run on this clock, so that a scale-out from zero and back (tens of minutes on AWS) can be watched in about a
minute. Everything else (RequestTTLSeconds, the invocation timeout, notification times) keeps real time.

Emulated time is seconds since the epoch that start at the real time the clock was made and then run N times faster:
metric timestamps are in it, and :func:`emulated_now` turns a real time into it again from the anchor the stack
records in its state file (``asyncinfer status`` uses that).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def emulated_now(anchor: float, scale: float, real_now: float) -> float:
    """The emulated time at ``real_now`` for a clock anchored at real time ``anchor`` running ``scale`` times faster."""
    return anchor + (real_now - anchor) * scale


@dataclass
class ScaledClock:
    """Emulated seconds since the epoch, ``scale`` times faster than ``real`` from ``anchor`` on."""

    scale: float = 1.0
    real: Callable[[], float] = time.time
    anchor: float = field(default=0.0)

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError("the time scale must be positive")
        if not self.anchor:
            self.anchor = self.real()

    def now(self) -> float:
        return emulated_now(self.anchor, self.scale, self.real())

    def real_seconds(self, emulated_seconds: float) -> float:
        """How long ``emulated_seconds`` last in real time."""
        return emulated_seconds / self.scale

    def wait(self, event: threading.Event, emulated_seconds: float) -> bool:
        """Wait on ``event`` for ``emulated_seconds`` of emulated time; True when the event was set."""
        return event.wait(max(0.0, self.real_seconds(emulated_seconds)))

"""The random draws, windows and counters of a fault plan, shared by the pieces of one local stack (thread-safe).

Standard library only: the Lambda worker processes import it before the handler.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

from asyncinfer.faults.catalogue import CATALOGUE, FaultPlan


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

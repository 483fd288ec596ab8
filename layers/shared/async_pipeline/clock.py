"""The time a use case sees: wall time and the current invocation's deadline, both injectable for tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from async_pipeline import notifications


@dataclass(frozen=True, slots=True)
class Clock:
    """Wall time and the end of this invocation's leases (``deadline_ms``, epoch ms)."""

    now_s: Callable[[], float]
    deadline_ms: int

    def now_ms(self) -> int:
        return int(self.now_s() * 1000)

    def now_iso(self) -> str:
        return notifications.format_time(datetime.fromtimestamp(self.now_s(), UTC))

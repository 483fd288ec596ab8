"""Summarising result events: counts, failures grouped by reason, latency and throughput figures."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from asyncinfer.job_results import cut

if TYPE_CHECKING:
    from asyncinfer.results import Received


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


_NOISE = (
    (re.compile(r"s3://[^()]*?(?=\)| \(|: |$)"), "s3://..."),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{16,64}\b"), "<id>"),
    (re.compile(r"\d+\.\d+ seconds"), "N seconds"),
    (re.compile(r"\[\d\d:\d\d:\d\d\]"), "[hh:mm:ss]"),
    (re.compile(r"\b\d+ record\(s\)"), "N record(s)"),
    (re.compile(r"record \d+"), "record N"),
)


def normalize_reason(text: str, limit: int = 240) -> str:
    """A reason with its specifics (locations, ids, timings) replaced, so that like reasons group together."""
    for pattern, replacement in _NOISE:
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    return cut(text, limit)


def grouping_reason(reason: str) -> str:
    """The row a failure is counted in: its normalized first line, so that one failure with other files' details
    (the parser's message on the lines below) is one row; " [+N lines]" says that lines were left out (each
    file's whole reason is in its event and in ``asyncinfer status``)."""
    first, *rest = reason.strip().splitlines() or [""]
    more = sum(1 for line in rest if line.strip())
    return normalize_reason(first) + (f" [+{more} line{'s' if more > 1 else ''}]" if more else "")


@dataclass
class Summary:
    completed: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)  # upload → result event received
    durations_ms: list[float] = field(default_factory=list)  # SageMaker received → completed (detail.durationMs)
    first_upload: float | None = None
    last_event: float | None = None

    def add(self, item: Received, uploaded_at: float | None) -> None:
        if item.status == "COMPLETED":
            self.completed += 1
        else:
            self.failed += 1
            reason = grouping_reason(str(item.event.detail.get("failureReason", "unknown")))
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
        duration = item.event.detail.get("durationMs")
        if isinstance(duration, int):
            self.durations_ms.append(float(duration))
        if uploaded_at is not None:
            self.latencies_s.append(item.received_at - uploaded_at)
            self.first_upload = min(self.first_upload or uploaded_at, uploaded_at)
        self.last_event = max(self.last_event or item.received_at, item.received_at)

    @property
    def total(self) -> int:
        return self.completed + self.failed

    @property
    def throughput(self) -> float | None:
        if self.first_upload is None or self.last_event is None or self.last_event <= self.first_upload:
            return None
        return self.total / (self.last_event - self.first_upload)

    def as_dict(self) -> dict[str, int | float | dict[str, int] | None]:
        return {
            "completed": self.completed,
            "failed": self.failed,
            "failureReasons": self.reasons,
            "latencyP50Seconds": percentile(self.latencies_s, 0.50),
            "latencyP95Seconds": percentile(self.latencies_s, 0.95),
            "processingP50Ms": percentile(self.durations_ms, 0.50),
            "processingP95Ms": percentile(self.durations_ms, 0.95),
            "throughputFilesPerSecond": self.throughput,
        }

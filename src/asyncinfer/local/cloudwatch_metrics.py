"""The asynchronous endpoint's CloudWatch metrics, as SageMaker publishes them (namespace ``AWS/SageMaker``, one
datapoint per metric per minute; reference §5.5): what the emulator measures (:class:`EndpointMeter`, an observer of
its events), turned into PutMetricData datapoints by a pure function (:func:`metric_data`).

Queue metrics carry the ``EndpointName`` dimension only; invocation metrics ``EndpointName`` + ``VariantName``.
``Invocations`` and ``InvocationsPerInstance`` are never published, as on AWS: a scaling policy on them never fires.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asyncinfer.local.endpoint.events import EmulatorEvent, EventKind
from asyncinfer.local.endpoint.hooks import BaseEndpointHooks
from asyncinfer.local.endpoint.requests import InvocationRequest

MetricDatum = dict[str, Any]  # one entry of PutMetricData's MetricData (no type stubs for CloudWatch installed)
NAMESPACE = "AWS/SageMaker"
PERIOD_SECONDS = 60
# The queue-level metrics (dimension EndpointName).
BACKLOG = "ApproximateBacklogSize"
BACKLOG_PER_INSTANCE = "ApproximateBacklogSizePerInstance"
OLDEST_AGE = "ApproximateAgeOfOldestRequest"
WITHOUT_CAPACITY = "HasBacklogWithoutCapacity"
# The variant-level ones (EndpointName + VariantName). UNVERIFIED spelling: AWS documents "InvocationsProcesssed";
# public dashboards and scripts query this one (reference §5.5).
PROCESSED = "InvocationsProcessed"
FAILURES = "InvocationFailures"
EXPIRED = "ExpiredRequests"
TOTAL_TIME = "TotalProcessingTime"
MODEL_LATENCY = "ModelLatency"


QUEUE_METRICS = (BACKLOG, BACKLOG_PER_INSTANCE, OLDEST_AGE, WITHOUT_CAPACITY)
PUBLISHED = frozenset({*QUEUE_METRICS, PROCESSED, FAILURES, EXPIRED, TOTAL_TIME, MODEL_LATENCY})


def published(alarm: Mapping[str, Any]) -> bool:
    """Whether the local stack publishes the metric an alarm (its template properties) watches."""
    return alarm.get("Namespace") == NAMESPACE and alarm.get("MetricName") in PUBLISHED


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """An endpoint's queue at one moment: ``backlog`` = queued + in progress, ``instances`` in service,
    ``oldest_age_seconds`` of the oldest queued request (emulated seconds; None when nothing is queued)."""

    endpoint_name: str
    variant_name: str
    backlog: int
    instances: int
    oldest_age_seconds: float | None


@dataclass(slots=True)
class MinuteCounts:
    """What the endpoint did during one period."""

    processed: int = 0
    failures: int = 0
    expired: int = 0
    total_processing_ms: list[float] = field(default_factory=list)
    model_latency_us: list[float] = field(default_factory=list)


def _stats(values: list[float]) -> dict[str, float]:
    return {"SampleCount": float(len(values)), "Sum": sum(values), "Minimum": min(values), "Maximum": max(values)}


def metric_data(snapshot: QueueSnapshot, counts: MinuteCounts, timestamp: datetime) -> list[MetricDatum]:
    """The datapoints of one period. Queue metrics always (the HasBacklogWithoutCapacity alarm needs them at zero
    instances too); invocation metrics when something happened. At zero instances ApproximateBacklogSizePerInstance
    is the whole backlog (UNVERIFIED; AWS says target tracking alone leaves zero once the backlog exceeds its
    target, which only this reading explains)."""
    endpoint = [{"Name": "EndpointName", "Value": snapshot.endpoint_name}]
    variant = [*endpoint, {"Name": "VariantName", "Value": snapshot.variant_name}]
    per_instance = snapshot.backlog / snapshot.instances if snapshot.instances else float(snapshot.backlog)
    data: list[MetricDatum] = [
        {
            "MetricName": BACKLOG,
            "Dimensions": endpoint,
            "Timestamp": timestamp,
            "Value": snapshot.backlog,
            "Unit": "Count",
        },
        {
            "MetricName": BACKLOG_PER_INSTANCE,
            "Dimensions": endpoint,
            "Timestamp": timestamp,
            "Value": per_instance,
            "Unit": "Count",
        },
        {
            "MetricName": OLDEST_AGE,
            "Dimensions": endpoint,
            "Timestamp": timestamp,
            "Value": round(snapshot.oldest_age_seconds or 0.0, 3),
            "Unit": "Seconds",
        },
        {
            "MetricName": WITHOUT_CAPACITY,
            "Dimensions": endpoint,
            "Timestamp": timestamp,
            "Value": 1.0 if snapshot.backlog and not snapshot.instances else 0.0,
            "Unit": "Count",
        },
    ]
    for name, count in ((PROCESSED, counts.processed), (FAILURES, counts.failures), (EXPIRED, counts.expired)):
        if count:
            data.append(
                {"MetricName": name, "Dimensions": variant, "Timestamp": timestamp, "Value": count, "Unit": "Count"}
            )
    if counts.total_processing_ms:
        data.append(
            {
                "MetricName": TOTAL_TIME,
                "Dimensions": variant,
                "Timestamp": timestamp,
                "StatisticValues": _stats(counts.total_processing_ms),
                "Unit": "Milliseconds",
            }
        )
    if counts.model_latency_us:
        data.append(
            {
                "MetricName": MODEL_LATENCY,
                "Dimensions": variant,
                "Timestamp": timestamp,
                "StatisticValues": _stats(counts.model_latency_us),
                "Unit": "Microseconds",
            }
        )
    return data


@dataclass(slots=True)
class _Tracked:
    received_at: float  # the emulator's clock (real seconds since the epoch)
    started_at: float | None = None  # time.monotonic() when a worker took it


class EndpointMeter(BaseEndpointHooks):
    """Observes the emulator (register with ``add_hooks``): the oldest queued request and, per period, requests
    processed, failed and expired, with their processing times. TotalProcessingTime runs from receipt to the
    result written; ModelLatency from the container call to the result written (SageMaker's stops at the container's
    answer: ours includes the output write, a few ms locally). Both in real time."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tracked: dict[str, dict[str, _Tracked]] = defaultdict(dict)
        self._counts: dict[str, MinuteCounts] = defaultdict(MinuteCounts)

    def on_event(self, event: EmulatorEvent) -> None:
        key = event.inference_id
        if key is None:
            return
        with self._lock:
            tracked = self._tracked[event.endpoint_name]
            if event.kind is EventKind.ACCEPTED and isinstance(event.detail, InvocationRequest):
                tracked[key] = _Tracked(event.detail.received_at)
            elif event.kind is EventKind.STARTED and key in tracked:
                tracked[key].started_at = time.monotonic()
            elif event.kind is EventKind.HELD and key in tracked:
                tracked[key].started_at = None  # back in the queue
            elif event.kind in (EventKind.COMPLETED, EventKind.FAILED, EventKind.EXPIRED):
                self._settled(event.endpoint_name, event.kind, tracked.pop(key, None))
            elif event.kind in (EventKind.CANCELLED, EventKind.DROPPED):
                tracked.pop(key, None)

    def _settled(self, endpoint: str, kind: EventKind, tracked: _Tracked | None) -> None:
        counts = self._counts[endpoint]
        if kind is EventKind.EXPIRED:
            counts.expired += 1
            counts.failures += 1
            return
        counts.processed += 1
        if kind is EventKind.FAILED:
            counts.failures += 1
        if tracked is not None:
            counts.total_processing_ms.append(max(0.0, (self._clock() - tracked.received_at) * 1000))
            if tracked.started_at is not None:
                counts.model_latency_us.append(max(0.0, (time.monotonic() - tracked.started_at) * 1_000_000))

    def take(self, endpoint: str) -> MinuteCounts:
        """What happened on ``endpoint`` since the last call (the period that just ended)."""
        with self._lock:
            return self._counts.pop(endpoint, MinuteCounts())

    def oldest_received_at(self, endpoint: str) -> float | None:
        """When the oldest request still waiting in the queue was received (None: nothing waits)."""
        with self._lock:
            waiting = [t.received_at for t in self._tracked[endpoint].values() if t.started_at is None]
        return min(waiting) if waiting else None

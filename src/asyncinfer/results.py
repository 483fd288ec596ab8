"""Following result events on the results queue, and summarising them."""

from __future__ import annotations

import contextlib
import json
import re
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from async_pipeline import result_events, s3_uris
from async_pipeline.result_events import ResultEvent

from asyncinfer.target import Target


@dataclass(frozen=True)
class Received:
    event: ResultEvent
    received_at: float

    @property
    def status(self) -> str:
        return str(self.event.detail["status"])

    @property
    def input_key(self) -> str:
        location = self.event.detail.get("inputLocation")
        return s3_uris.key_of(str(location)) if location else ""


class ResultFollower:
    """Receives (and deletes) result events from the stack's results queue."""

    def __init__(self, target: Target) -> None:
        self._sqs = target.client("sqs")
        self._url = target.outputs["ResultsQueueUrl"]

    def poll(self, wait_seconds: int = 1) -> list[Received]:
        messages = self._sqs.receive_message(
            QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        received = []
        for message in messages:
            try:
                event = result_events.from_envelope(json.loads(message["Body"]))
            except ValueError:
                continue  # not ours (another rule may feed the queue): leave it to its consumer
            received.append(Received(event, time.time()))
            self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return received


class QueueDrain:
    """Receives and deletes a queue's messages in a background thread, handing each body (and when it arrived) to
    ``take`` before the message is deleted. One drain for the soak, the tests and the benchmarks."""

    def __init__(self, sqs: Any, queue_url: str, take: Callable[[str, float], None], name: str = "queue-drain") -> None:
        self._sqs = sqs
        self._url = queue_url
        self._take = take
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.drain(wait_seconds=1)

    def drain(self, wait_seconds: int = 0) -> int:
        """One receive: how many messages it brought."""
        try:
            messages = self._sqs.receive_message(
                QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            ).get("Messages", [])
        except Exception:  # the stack is stopping (or restarting): try again shortly
            time.sleep(0.5)
            return 0
        received_at = time.time()
        for message in messages:
            self._take(message["Body"], received_at)
        if messages:
            # A failed delete means a redelivery, which ``take`` must tolerate (SQS delivers at least once anyway).
            with contextlib.suppress(Exception):
                self._sqs.delete_message_batch(
                    QueueUrl=self._url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )
        return len(messages)

    def stop(self, *, drain_rest: bool = False) -> None:
        self._stop.set()
        self._thread.join(5)
        while drain_rest and self.drain(wait_seconds=0):
            pass


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
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
            # Grouped: the same failure with other files' specifics (ids, times, the parser's detail) is one row.
            reason = normalize_reason(str(item.event.detail.get("failureReason", "unknown")).split("\n", 1)[0])
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

    def as_dict(self) -> dict[str, Any]:
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

"""What the soak gathers while it runs: every result event from the results queue (drained all along) and the
dead letters (read, then given back untouched for ``asyncinfer redrive``)."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING

from async_pipeline import result_events

from asyncinfer import dead_letters, target
from asyncinfer.dead_letters import DeadLetter
from asyncinfer.queue_drain import QueueDrain
from asyncinfer.soak.snapshot import ReceivedEvent

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

DLQ_HIDE_SECONDS = 900  # dead letters are hidden while the soak reads them, then made visible again


def received_event(body_text: str, received_at: float) -> ReceivedEvent | None:
    """The result event in a results-queue message, or None for a message that is not one of this pipeline's."""
    try:
        envelope = json.loads(body_text)
        if not isinstance(envelope, dict):
            return None
        event = result_events.from_envelope(envelope)
        return ReceivedEvent(
            event_id=str(envelope.get("id") or f"noid-{time.time_ns()}"),
            # An event without its id is kept (under "None") so that the audit reports it as a stray, not ignored.
            inference_id=str(event.detail.get("inferenceId")),
            status=event.status,
            input_location=event.input_location,
            location=event.location,
            failure_reason=event.failure_reason,
            received_at=received_at,
            metadata=event.metadata,
        )
    except (ValueError, KeyError):
        return None


class EventCollector:
    """Drains the results queue in the background, keeping every result event (distinct EventBridge ids)."""

    def __init__(self, stack: target.Target) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, ReceivedEvent] = {}
        self._by_inference: dict[str, list[ReceivedEvent]] = defaultdict(list)
        self.redelivered = 0  # the same EventBridge event received again (SQS at-least-once): not a duplicate
        self.foreign = 0  # messages that are not result events of this pipeline
        self._drain = QueueDrain(stack.client("sqs"), stack.outputs["ResultsQueueUrl"], self._take, "soak-events")

    def _take(self, body_text: str, received_at: float) -> None:
        # Kept by EventBridge id: a redelivery (after a failed delete) counts once.
        event = received_event(body_text, received_at)
        with self._lock:
            if event is None:
                self.foreign += 1
                return
            if event.event_id in self._events:
                self.redelivered += 1
                return
            self._events[event.event_id] = event
            self._by_inference[event.inference_id].append(event)

    def seen(self) -> set[str]:
        with self._lock:
            return set(self._by_inference)

    def by_inference(self) -> dict[str, list[ReceivedEvent]]:
        with self._lock:
            return {k: list(v) for k, v in self._by_inference.items()}

    def stop(self) -> None:
        self._drain.stop(drain_rest=True)


class DeadLetterReader:
    """Reads the dead-letter queue without consuming it: messages are hidden while the soak runs and given back
    (made visible) at the end, for ``asyncinfer redrive``."""

    def __init__(self, stack: target.Target) -> None:
        self._sqs: SQSClient = stack.client("sqs")
        self._url = stack.outputs["DeadLetterQueueUrl"]
        self._handles: dict[str, str] = {}
        self.entries: dict[str, DeadLetter] = {}

    def poll(self) -> None:
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=self._url, MaxNumberOfMessages=10, VisibilityTimeout=DLQ_HIDE_SECONDS, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return
            # Until the queue answers empty: a message seen before comes back when its hiding ran out (a run
            # longer than DLQ_HIDE_SECONDS) and is hidden again, so stopping at a batch of known ones would skip
            # newer letters behind it.
            for message in messages:
                self._handles[message["MessageId"]] = message["ReceiptHandle"]
                if message["MessageId"] not in self.entries:
                    self.entries[message["MessageId"]] = dead_letters.parse(message["MessageId"], message["Body"])

    def inference_ids(self) -> set[str]:
        return {i for entry in self.entries.values() for i in entry.inference_ids}

    def give_back(self) -> None:
        for handle in self._handles.values():
            try:
                self._sqs.change_message_visibility(QueueUrl=self._url, ReceiptHandle=handle, VisibilityTimeout=0)
            except Exception:
                continue
        self._handles.clear()

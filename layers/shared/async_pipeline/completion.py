"""Finishing jobs: terminal transition, then exactly one result event (the use case of both topic handlers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from async_pipeline import notifications, result_events
from async_pipeline.jobs import Job, JobStatus, JobStore, Terminal
from async_pipeline.notifications import InferenceNotification, MalformedNotification, TestNotification
from async_pipeline.result_events import ResultEvent
from async_pipeline.sns_events import SnsRecord


class Publisher(Protocol):
    def publish(self, event: ResultEvent) -> None: ...


class Action(StrEnum):
    RECORDED = "recorded"  # this delivery finished the job and published its event
    REPUBLISHED = "republished"  # the job was finished before, but its event was still owed
    DUPLICATE = "duplicate"  # already finished and published (or being published by a live invocation)
    TEST_NOTIFICATION = "test_notification"


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    inference_id: str | None = None
    status: JobStatus | None = None
    event: ResultEvent | None = None


class RejectedNotification(ValueError):
    """A record this handler must not act on (malformed, wrong topic); ends in the dead-letter queue."""


@dataclass(frozen=True, slots=True)
class Clock:
    """Wall time and the current invocation's deadline, both injectable for tests."""

    now_s: Callable[[], float]
    deadline_ms: int

    def now_ms(self) -> int:
        return int(self.now_s() * 1000)

    def now_iso(self) -> str:
        return notifications.format_time(datetime.fromtimestamp(self.now_s(), UTC))


def finalize(store: JobStore, publisher: Publisher, inference_id: str, terminal: Terminal, clock: Clock) -> Outcome:
    """Move a job to its terminal state and publish its event once, whatever was delivered before."""
    result = store.finish(inference_id, terminal, publish_lease_until_ms=clock.deadline_ms, now_s=clock.now_s())
    if result.transitioned:
        return Outcome(Action.RECORDED, inference_id, result.job.status, _publish(store, publisher, result.job, clock))
    if result.owes_event(clock.now_ms()):
        return publish_owed(store, publisher, result.job, clock)
    return Outcome(Action.DUPLICATE, inference_id, result.job.status)


def publish_owed(store: JobStore, publisher: Publisher, job: Job, clock: Clock) -> Outcome:
    """Publish the event of a job finished by an invocation that died before publishing."""
    taken = store.take_publish_lease(job.inference_id, lease_until_ms=clock.deadline_ms, now_ms=clock.now_ms())
    if taken is None:
        return Outcome(Action.DUPLICATE, job.inference_id, job.status)
    return Outcome(Action.REPUBLISHED, job.inference_id, taken.status, _publish(store, publisher, taken, clock))


def _publish(store: JobStore, publisher: Publisher, job: Job, clock: Clock) -> ResultEvent:
    event = result_events.build(job)
    try:
        publisher.publish(event)
    except Exception:
        store.release_publish_lease(job.inference_id)
        raise
    store.clear_event_pending(job.inference_id, published_at=clock.now_iso())
    return event


def terminal_from(notification: InferenceNotification, clock: Clock) -> Terminal:
    response = notification.response
    return Terminal(
        status=JobStatus.COMPLETED if notification.succeeded else JobStatus.FAILED,
        completed_time=notification.event_time or clock.now_iso(),
        output_location=notification.output_location if notification.succeeded else None,
        failure_location=None if notification.succeeded else notification.failure_location,
        failure_reason=None
        if notification.succeeded
        else (notification.failure_reason or notifications.UNKNOWN_FAILURE),
        received_time=notification.received_time,
        duration_ms=notification.duration_ms,
        endpoint_name=notification.endpoint_name,
        input_location=notification.input_location,
        response_content=response.content if response else None,
        response_encoding=response.encoding if response else None,
        response_content_type=response.content_type if response else None,
    )


def handle_record(
    record: SnsRecord, *, expected_topic_arn: str, store: JobStore, publisher: Publisher, clock: Clock
) -> Outcome:
    """One SNS record from the success or error topic."""
    if record.topic_arn != expected_topic_arn:
        raise RejectedNotification(
            f"message {record.message_id} came from {record.topic_arn}, not {expected_topic_arn}"
        )
    try:
        parsed = notifications.parse_notification(record.message)
    except MalformedNotification as exc:
        raise RejectedNotification(f"message {record.message_id}: {exc}") from exc
    if isinstance(parsed, TestNotification):
        return Outcome(Action.TEST_NOTIFICATION)
    return finalize(store, publisher, parsed.inference_id, terminal_from(parsed, clock), clock)

"""Finishing jobs: terminal transition, then exactly one result event (the use case of both topic handlers).

Per record of an SNS event: check its topic, parse the notification, finish the job, publish its event once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from async_pipeline import notifications, result_events, sns_events
from async_pipeline.batch_reports import BatchReport, RecordFailure
from async_pipeline.clock import Clock
from async_pipeline.jobs import Job, JobStatus, JobStore, Terminal
from async_pipeline.notifications import InferenceNotification, MalformedNotification, TestNotification
from async_pipeline.result_events import ResultEvent
from async_pipeline.sns_events import SnsRecord


class Publisher(Protocol):
    def publish(self, event: ResultEvent) -> None: ...


class CompletionAction(StrEnum):
    RECORDED = "recorded"  # this delivery finished the job and published its event
    REPUBLISHED = "republished"  # the job was finished before, but its event was still owed
    DUPLICATE = "duplicate"  # already finished and published (or being published by a live invocation)
    TEST_NOTIFICATION = "test_notification"


@dataclass(frozen=True, slots=True)
class CompletionOutcome:
    action: CompletionAction
    inference_id: str | None = None
    status: JobStatus | None = None
    event: ResultEvent | None = None


class RejectedNotification(ValueError):
    """A record this handler must not act on (malformed, wrong topic); ends in the dead-letter queue."""


def finalize(
    store: JobStore,
    publisher: Publisher,
    inference_id: str,
    terminal: Terminal,
    clock: Clock,
) -> CompletionOutcome:
    """Move a job to its terminal state and publish its event once, whatever was delivered before.

    The event's metadata is the record's: the submitter's claim carries it, so it is there before the endpoint can
    answer (no S3 read here; jobs first seen in a notification have none)."""
    result = store.finish(inference_id, terminal, publish_lease_until_ms=clock.deadline_ms, now_s=clock.now_s())
    if result.transitioned:
        event = _publish(store, publisher, result.job, clock)
        return CompletionOutcome(CompletionAction.RECORDED, inference_id, result.job.status, event)
    if result.owes_event(clock.now_ms()):
        return publish_owed(store, publisher, result.job, clock)
    return CompletionOutcome(CompletionAction.DUPLICATE, inference_id, result.job.status)


def publish_owed(store: JobStore, publisher: Publisher, job: Job, clock: Clock) -> CompletionOutcome:
    """Publish the event of a job finished by an invocation that died before publishing."""
    taken = store.take_publish_lease(job.inference_id, lease_until_ms=clock.deadline_ms, now_ms=clock.now_ms())
    if taken is None:
        return CompletionOutcome(CompletionAction.DUPLICATE, job.inference_id, job.status)
    return CompletionOutcome(
        CompletionAction.REPUBLISHED, job.inference_id, taken.status, _publish(store, publisher, taken, clock)
    )


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


def complete_record(
    record: SnsRecord,
    *,
    expected_topic_arn: str,
    store: JobStore,
    publisher: Publisher,
    clock: Clock,
) -> CompletionOutcome:
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
        return CompletionOutcome(CompletionAction.TEST_NOTIFICATION)
    return finalize(store, publisher, parsed.inference_id, terminal_from(parsed, clock), clock)


def complete_event(
    event: Mapping[str, Any],
    *,
    expected_topic_arn: str,
    store: Callable[[], JobStore],
    publisher: Callable[[], Publisher],
    clock: Clock,
) -> BatchReport[CompletionOutcome]:
    """Handle every record of an SNS event; failures are collected, not raised, so every record gets its turn.

    The store and the publisher are asked for inside each record's turn: one that cannot be built (a missing
    environment variable) fails the record like any other error.
    """
    report: BatchReport[CompletionOutcome] = BatchReport()
    try:
        records = sns_events.records(event)
    except sns_events.MalformedSnsRecord as exc:
        report.failures.append(RecordFailure(str(exc), error=exc))
        return report
    for index, raw in enumerate(records):
        try:
            record = sns_events.parse_record(raw)
            outcome = complete_record(
                record,
                expected_topic_arn=expected_topic_arn,
                store=store(),
                publisher=publisher(),
                clock=clock,
            )
        except Exception as exc:  # one record's surprise must not cost the others their turn
            report.failures.append(RecordFailure(f"{type(exc).__name__}: {exc}", index, exc))
            continue
        report.outcomes.append(outcome)
    return report

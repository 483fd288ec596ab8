"""The job state machine against moto DynamoDB: every transition is one conditional write."""

from __future__ import annotations

import time
from typing import Any, get_type_hints

import pytest
from async_pipeline import wiring
from async_pipeline.jobs import Job, JobStatus, JobStore, Refused, Terminal, conditionally
from botocore.exceptions import ClientError

from tests.moto_world import World


@pytest.fixture
def store(world: World) -> JobStore:
    return wiring.job_store()


def _claim(store: JobStore, inference_id: str = "job-1", *, lease_ms: int = 30_000, now: float | None = None):  # type: ignore[no-untyped-def]
    now = time.time() if now is None else now
    job = Job(inference_id=inference_id, status=JobStatus.SUBMITTING, input_location="s3://in/k")
    return store.claim(job, lease_expires_at_ms=int(now * 1000) + lease_ms, now_s=now)


def _done(status: JobStatus = JobStatus.COMPLETED) -> Terminal:
    return Terminal(status=status, completed_time="2026-11-24T12:00:07.608Z", output_location="s3://out/o.out")


def test_claim_is_exclusive_while_the_lease_lives(store: JobStore, world: World) -> None:
    first = _claim(store)
    second = _claim(store)
    assert first.claimed and not second.claimed
    assert second.job.status is JobStatus.SUBMITTING and second.job.claim_token == first.job.claim_token
    stored = world.job("job-1")
    assert stored is not None and stored["expiresAt"] > time.time() + 29 * 86400  # TTL attribute set


def test_expired_lease_is_taken_over(store: JobStore) -> None:
    now = time.time()
    _claim(store, lease_ms=-1, now=now)
    assert _claim(store, now=now).claimed


def test_release_lets_the_next_attempt_claim_at_once(store: JobStore, world: World) -> None:
    claim = _claim(store)
    store.release(claim.job, reason="ServiceUnavailable", now_s=time.time())
    stored = world.job("job-1")
    assert stored is not None and stored["lastError"] == "ServiceUnavailable" and stored["attempts"] == 1
    assert _claim(store).claimed


def test_submitted_then_finished_once(store: JobStore) -> None:
    claim = _claim(store)
    assert store.mark_submitted(
        claim.job, output_location="s3://out/o.out", failure_location=None, submitted_at="t", now_s=time.time()
    )
    deadline = int(time.time() * 1000) + 30_000
    first = store.finish("job-1", _done(), publish_lease_until_ms=deadline, now_s=time.time())
    again = store.finish("job-1", _done(), publish_lease_until_ms=deadline, now_s=time.time())
    assert first.transitioned and first.job.status is JobStatus.COMPLETED and first.job.event_pending
    assert first.job.input_location == "s3://in/k"  # kept from the claim
    assert not again.transitioned and not again.owes_event(int(time.time() * 1000))  # a live invocation owes it


def test_notification_before_confirmation_still_finishes_and_confirmation_backs_off(store: JobStore) -> None:
    claim = _claim(store)
    assert store.finish("job-1", _done(), publish_lease_until_ms=0, now_s=time.time()).transitioned
    assert not store.mark_submitted(
        claim.job, output_location=None, failure_location=None, submitted_at="t", now_s=time.time()
    )
    assert store.get("job-1").status is JobStatus.COMPLETED  # type: ignore[union-attr]


def test_owed_event_is_taken_over_only_after_the_publisher_lease_and_only_once(store: JobStore) -> None:
    _claim(store)
    now_ms = int(time.time() * 1000)
    store.finish("job-1", _done(), publish_lease_until_ms=now_ms - 1, now_s=time.time())
    taken = store.take_publish_lease("job-1", lease_until_ms=now_ms + 30_000, now_ms=now_ms)
    assert taken is not None and taken.event_pending
    assert store.take_publish_lease("job-1", lease_until_ms=now_ms + 30_000, now_ms=now_ms) is None
    store.clear_event_pending("job-1", published_at="t")
    job = store.get("job-1")
    assert job is not None and not job.event_pending and job.event_published_at == "t"
    assert store.take_publish_lease("job-1", lease_until_ms=now_ms + 30_000, now_ms=now_ms + 60_000) is None


def test_unknown_inference_id_is_recorded_from_the_notification(store: JobStore) -> None:
    result = store.finish("never-claimed", _done(JobStatus.FAILED), publish_lease_until_ms=1, now_s=time.time())
    assert result.transitioned and result.job.origin == "notification" and result.job.status is JobStatus.FAILED
    assert not store.finish("never-claimed", _done(), publish_lease_until_ms=1, now_s=time.time()).transitioned


def test_item_round_trip_keeps_every_field() -> None:
    job = Job(
        inference_id="x",
        status=JobStatus.FAILED,
        object_size=5,
        duration_ms=7,
        event_pending=True,
        failure_reason="r",
        extra={"custom": "kept"},
    )
    assert Job.from_item(job.to_item()) == job


def test_every_terminal_field_is_the_job_field_of_the_same_name_and_type() -> None:
    job_types = get_type_hints(Job)
    for name, kind in get_type_hints(Terminal).items():
        assert job_types[name] in (kind, kind | None), name  # Terminal may require what a Job may lack


def test_terminal_update_sets_what_it_has_and_keeps_the_locations_the_job_knows() -> None:
    terminal = Terminal(
        status=JobStatus.FAILED,
        completed_time="c",
        failure_reason="r",
        duration_ms=5,
        endpoint_name="e",
        input_location="s3://in/k",
    )
    sets, values = terminal.update_clauses()
    assert sets == [
        "completedTime = :completedTime",
        "failureReason = :failureReason",
        "durationMs = :durationMs",
        "endpointName = if_not_exists(endpointName, :endpointName)",
        "inputLocation = if_not_exists(inputLocation, :inputLocation)",
    ]
    assert values == {
        ":completedTime": {"S": "c"},
        ":failureReason": {"S": "r"},
        ":durationMs": {"N": "5"},
        ":endpointName": {"S": "e"},
        ":inputLocation": {"S": "s3://in/k"},
    }
    job = Job(inference_id="x", **terminal.job_fields())
    assert job.status is JobStatus.FAILED and job.input_location == "s3://in/k" and job.output_location is None


def _client_error(code: str, item: dict[str, Any] | None = None) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": code}}
    if item is not None:
        response["Item"] = item
    return ClientError(response, "PutItem")  # type: ignore[arg-type]


def _raise(exc: Exception) -> dict[str, Any]:
    raise exc


def test_conditional_write_refusal_carries_the_record_and_other_errors_propagate() -> None:
    assert conditionally(lambda: {"Attributes": {}}) == {"Attributes": {}}
    stored = Job(inference_id="x", status=JobStatus.SUBMITTED)
    refused = conditionally(lambda: _raise(_client_error("ConditionalCheckFailedException", stored.to_item())))
    assert isinstance(refused, Refused) and refused.existing == stored and refused.existing_or_raise() == stored
    bare = conditionally(lambda: _raise(_client_error("ConditionalCheckFailedException")))
    assert isinstance(bare, Refused) and bare.existing is None
    with pytest.raises(ClientError, match="ConditionalCheckFailedException"):
        bare.existing_or_raise()
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        conditionally(lambda: _raise(_client_error("ProvisionedThroughputExceededException")))

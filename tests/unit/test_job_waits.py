"""``submit --wait``'s polling (asyncinfer.job_waits): a stub BatchGetItem and a fake clock, no AWS, no waiting."""

from __future__ import annotations

from typing import Any, cast

import pytest
from async_pipeline.jobs import Job, JobStatus

from asyncinfer import job_waits
from asyncinfer.target import Target

TABLE = "jobs"


class FakeClock(job_waits.Sleeper):
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class StubDynamoDB:
    """BatchGetItem that leaves the last key of each request unprocessed for its first ``throttled`` calls."""

    def __init__(self, jobs: dict[str, JobStatus], throttled: int) -> None:
        self.jobs = jobs
        self.throttled = throttled
        self.calls: list[int] = []  # keys asked per call

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        keys = RequestItems[TABLE]["Keys"]
        self.calls.append(len(keys))
        answered, unprocessed = (keys[:-1], keys[-1:]) if len(self.calls) <= self.throttled else (keys, [])
        items = [
            Job(inference_id=k["inferenceId"]["S"], status=self.jobs[k["inferenceId"]["S"]]).to_item()
            for k in answered
            if k["inferenceId"]["S"] in self.jobs
        ]
        response: dict[str, Any] = {"Responses": {TABLE: items}}
        if unprocessed:
            response["UnprocessedKeys"] = {TABLE: {"Keys": unprocessed, "ConsistentRead": True}}
        return response


class StubTarget:
    def __init__(self, dynamodb: StubDynamoDB) -> None:
        self.dynamodb = dynamodb
        self.outputs = {"JobsTableName": TABLE}

    def client(self, service: str) -> StubDynamoDB:
        assert service == "dynamodb"
        return self.dynamodb


def test_unprocessed_keys_are_asked_again_after_a_growing_jittered_back_off() -> None:
    stub, clock = StubDynamoDB({"a": JobStatus.COMPLETED, "b": JobStatus.FAILED}, throttled=4), FakeClock()
    found = job_waits.fetch(stub, TABLE, ["a", "b"], clock, deadline=60.0)  # type: ignore[arg-type]
    assert set(found) == {"a", "b"}
    assert stub.calls == [2, 1, 1, 1, 1]  # only the unprocessed key is asked again
    assert len(clock.sleeps) == 4
    ceilings = [min(job_waits.RETRY_CAP_SECONDS, job_waits.RETRY_BASE_SECONDS * 2**n) for n in range(4)]
    assert all(0 <= slept <= ceiling for slept, ceiling in zip(clock.sleeps, ceilings, strict=True))


def test_keys_never_processed_are_left_open_at_the_deadline_not_retried_forever() -> None:
    stub, clock = StubDynamoDB({"a": JobStatus.COMPLETED, "b": JobStatus.COMPLETED}, throttled=10**9), FakeClock()
    found = job_waits.fetch(stub, TABLE, ["a", "b"], clock, deadline=10.0)  # type: ignore[arg-type]
    assert set(found) == {"a"} and clock.t < 10.0
    assert max(clock.sleeps) <= job_waits.RETRY_CAP_SECONDS and len(stub.calls) < 50


def test_retry_delay_is_full_jitter_under_a_cap() -> None:
    assert job_waits.retry_delay(0, lambda: 1.0) == job_waits.RETRY_BASE_SECONDS
    assert job_waits.retry_delay(3, lambda: 1.0) == job_waits.RETRY_BASE_SECONDS * 8
    assert job_waits.retry_delay(30, lambda: 1.0) == job_waits.RETRY_CAP_SECONDS
    assert job_waits.retry_delay(30, lambda: 0.0) == 0.0


@pytest.mark.parametrize(
    ("interval", "progressed", "expected"), [(1.0, False, 1.5), (4.0, False, 5.0), (5.0, False, 5.0), (5.0, True, 1.0)]
)
def test_the_poll_interval_grows_to_5_s_while_nothing_arrives(
    interval: float, progressed: bool, expected: float
) -> None:
    assert job_waits.next_poll(interval, progressed) == expected


def test_a_long_wait_polls_less_and_less_often_and_ends_at_the_timeout() -> None:
    stub, clock = StubDynamoDB({"a": JobStatus.SUBMITTED}, throttled=0), FakeClock()
    result = job_waits.wait(cast(Target, StubTarget(stub)), ["a"], timeout=60.0, clock=clock)
    assert result.waiting == ["a"] and result.exit_code == job_waits.ExitCode.TIMED_OUT
    assert clock.sleeps[:5] == [1.0, 1.5, 2.25, 3.375, 5.0] and max(clock.sleeps) == 5.0
    assert len(stub.calls) < 20  # a fixed 1 s poll would have made 61 calls

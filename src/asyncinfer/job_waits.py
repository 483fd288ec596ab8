"""Waiting for exactly some files' results (``asyncinfer submit --wait``), by their inference ids, in the jobs table.

The results queue belongs to its consumers (a message received there is taken from them), so a waiting user reads
the job records instead: one consistent ``BatchGetItem`` per 100 open jobs per poll, nothing else. The poll interval
starts at 1 s and grows by half each quiet poll up to 5 s (back to 1 s when a result arrives), so 10,000 open jobs
cost at most 20 BatchGetItem/s at first and 20 per 5 s later. Keys DynamoDB leaves unprocessed (throttling) are asked
again after a capped, jittered exponential back-off, until the poll's deadline; those still unanswered stay open for
the next poll. A job counts as arrived once it is terminal (``COMPLETED`` or ``FAILED``); its result event carries
the same fields.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from async_pipeline.jobs import TERMINAL, Job, JobStatus

from asyncinfer.target import Target

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import KeysAndAttributesOutputTypeDef

BATCH = 100  # BatchGetItem takes at most 100 keys
POLL_SECONDS = 1.0  # the first poll interval, and the interval after a result arrived
MAX_POLL_SECONDS = 5.0
POLL_GROWTH = 1.5
RETRY_BASE_SECONDS = 0.05  # UnprocessedKeys: first back-off ceiling, doubled per retry up to RETRY_CAP_SECONDS
RETRY_CAP_SECONDS = 2.0


class ExitCode(IntEnum):
    """``submit --wait``'s exit status: 0 only when every file COMPLETED."""

    COMPLETED = 0
    UNSAVED = 1  # every file COMPLETED, but an output could not be downloaded (--output)
    FAILED = 3  # every file reached a terminal state, and at least one FAILED
    TIMED_OUT = 4  # at least one file had no result when the timeout ran out (whatever the others did)


@dataclass
class WaitResult:
    finished: dict[str, Job] = field(default_factory=dict)  # by inference id, in arrival order
    waiting: list[str] = field(default_factory=list)  # inference ids still open (or unknown) at the deadline
    unsaved: dict[str, str] = field(default_factory=dict)  # inference id → why its output was not downloaded

    @property
    def failed(self) -> list[Job]:
        return [job for job in self.finished.values() if job.status is JobStatus.FAILED]

    @property
    def exit_code(self) -> ExitCode:
        return exit_code(len(self.waiting), len(self.failed), len(self.unsaved))


def exit_code(waiting: int, failed: int, unsaved: int = 0) -> ExitCode:
    if waiting:
        return ExitCode.TIMED_OUT
    if failed:
        return ExitCode.FAILED
    return ExitCode.UNSAVED if unsaved else ExitCode.COMPLETED


def retry_delay(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Full-jitter exponential back-off before retry ``attempt`` (0-based) of unprocessed keys."""
    return rand() * min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2.0**attempt)


def next_poll(interval: float, progressed: bool, first: float = POLL_SECONDS) -> float:
    """The next poll interval: back to ``first`` after a result arrived, else half as long again, up to the cap."""
    return first if progressed else min(max(first, MAX_POLL_SECONDS), interval * POLL_GROWTH)


class Sleeper:
    """Time, injected so that tests need not wait."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def fetch(
    dynamodb: DynamoDBClient,
    table: str,
    inference_ids: Iterable[str],
    clock: Sleeper | None = None,
    deadline: float | None = None,
) -> dict[str, Job]:
    """The records of these ids that exist (consistent reads). Keys DynamoDB leaves unprocessed are asked again
    after :func:`retry_delay`, while ``deadline`` (on ``clock``) allows; past it, they are left out (still open)."""
    clock = clock or Sleeper()
    found: dict[str, Job] = {}
    ids = list(dict.fromkeys(inference_ids))
    for start in range(0, len(ids), BATCH):
        keys: list[Any] = [{"inferenceId": {"S": iid}} for iid in ids[start : start + BATCH]]
        attempt = 0
        while keys:
            response = dynamodb.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
            for item in response.get("Responses", {}).get(table, []):
                job = Job.from_item(item)
                found[job.inference_id] = job
            unprocessed: KeysAndAttributesOutputTypeDef | None = response.get("UnprocessedKeys", {}).get(table)
            keys = list(unprocessed["Keys"]) if unprocessed else []
            if not keys:
                break
            delay = retry_delay(attempt)
            if deadline is not None and clock.now() + delay >= deadline:
                return found  # out of time: the rest are asked at the next poll, or reported as waiting
            clock.sleep(delay)
            attempt += 1
    return found


def wait(
    target: Target,
    inference_ids: list[str],
    timeout: float,
    on_result: Callable[[Job], None] | None = None,
    poll_seconds: float = POLL_SECONDS,
    clock: Sleeper | None = None,
) -> WaitResult:
    """Poll the jobs table until every id is terminal or ``timeout`` seconds have passed; ``on_result`` hears of
    each job as it turns terminal (once)."""
    clock = clock or Sleeper()
    dynamodb = target.client("dynamodb")
    table = target.outputs["JobsTableName"]
    result = WaitResult()
    open_ids = list(dict.fromkeys(inference_ids))
    deadline = clock.now() + timeout
    interval = poll_seconds
    while open_ids:
        jobs = fetch(dynamodb, table, open_ids, clock, deadline)
        before = len(open_ids)
        for iid in list(open_ids):
            job = jobs.get(iid)
            if job is not None and job.status in TERMINAL:
                result.finished[iid] = job
                open_ids.remove(iid)
                if on_result is not None:
                    on_result(job)
        if not open_ids or clock.now() >= deadline:
            break
        clock.sleep(min(interval, max(0.0, deadline - clock.now())))
        interval = next_poll(interval, len(open_ids) < before, poll_seconds)
    result.waiting = open_ids
    return result

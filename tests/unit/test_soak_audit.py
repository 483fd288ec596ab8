"""The soak's audit finds every kind of broken promise (so that a green soak means something).

A moto world holds six inputs, each in a different state; the audit must classify each one and list a violation for
each kind of breach. Dead-letter entries are parsed from the shape Lambda's on-failure destination really writes.
"""

from __future__ import annotations

import json
import time
from typing import Any

from async_pipeline.jobs import Job, JobStatus

from asyncinfer import soak, target
from tests.conftest import load_event
from tests.moto_world import INPUT_BUCKET, OUTPUT_BUCKET, World

PREFIX = "soak/audit/"


def _stack() -> target.Target:
    outputs = {"InputBucketName": INPUT_BUCKET, "OutputBucketName": OUTPUT_BUCKET, "JobsTableName": "jobs"}
    return target.Target(name="audit", region="us-east-1", outputs=outputs)


def _upload(world: World, name: str, expected: str = "COMPLETED") -> soak.Input:
    key = PREFIX + name
    version = world.put_object(key)["VersionId"]
    uri = f"s3://{INPUT_BUCKET}/{key}"
    return soak.Input(key, uri, version, soak._identity(INPUT_BUCKET, key, version), expected, time.time())


def _job(world: World, upload: soak.Input, status: JobStatus, output: str | None = None, **extra: Any) -> None:
    job = Job(inference_id=upload.inference_id, status=status, input_location=upload.uri, **extra)
    if output is not None and status is JobStatus.COMPLETED:
        job.output_location = output
    world.dynamodb.put_item(TableName="jobs", Item=job.to_item())


def _output(world: World, upload: soak.Input) -> str:
    key = f"output/{upload.inference_id}.out"
    world.s3.put_object(Bucket=OUTPUT_BUCKET, Key=key, Body=b"0.5\n")
    return f"s3://{OUTPUT_BUCKET}/{key}"


def _event(upload: soak.Input, status: str, location: str | None, event_id: str) -> soak.Event:
    return soak.Event(event_id, upload.inference_id, status, upload.uri, location, None, time.time())


def _dead_letter(upload: soak.Input) -> soak.DeadLetter:
    """Lambda's on-failure record for the submitter, carrying the S3 event of ``upload``."""
    from async_pipeline.s3_events import encode_key

    record = load_event("lambda-on-failure-record.json")
    obj = record["requestPayload"]["Records"][0]["s3"]["object"]
    obj.update(key=encode_key(upload.key), versionId=upload.version_id)
    return soak.parse_dead_letter("m-1", json.dumps(record))


def test_each_kind_of_broken_promise_is_a_violation(world: World) -> None:
    stack = _stack()
    since = time.time()
    fine, twice, lost, contradicted, dangling, dead = (
        _upload(world, name) for name in ("fine.csv", "twice.csv", "lost.csv", "contra.csv", "dangle.csv", "dlq.csv")
    )
    uploads = [fine, twice, lost, contradicted, dangling, dead]
    for upload in (fine, twice):
        _job(world, upload, JobStatus.COMPLETED, _output(world, upload))
    _job(world, lost, JobStatus.COMPLETED, _output(world, lost))  # terminal, but its event never came
    _job(world, contradicted, JobStatus.FAILED, failure_reason="ClientError: 415")
    _job(world, dangling, JobStatus.COMPLETED, f"s3://{OUTPUT_BUCKET}/output/missing.out")
    _job(world, dead, JobStatus.SUBMITTING)
    events = {
        fine.inference_id: [_event(fine, "COMPLETED", None, "e1")],
        twice.inference_id: [_event(twice, "COMPLETED", None, "e2"), _event(twice, "COMPLETED", None, "e3")],
        contradicted.inference_id: [_event(contradicted, "COMPLETED", None, "e4")],
        dangling.inference_id: [_event(dangling, "COMPLETED", f"s3://{OUTPUT_BUCKET}/output/missing.out", "e5")],
    }
    letter = _dead_letter(dead)
    assert letter.inference_ids == [dead.inference_id] and "SubmitterFunction" in letter.source
    assert letter.reason.strip()

    result = soak.audit(stack, uploads, PREFIX, events, {letter.message_id: letter}, since)

    assert result.uploaded == 6
    assert result.inputs == 6
    assert (result.duplicates, result.extra_events) == (1, 1)
    assert result.contradictions == 1
    assert result.dangling == 1
    assert result.dead_lettered_inputs == 1
    assert result.lost == 1
    assert not result.ok
    kinds = sorted(violation.split(":")[0] for violation in result.violations)
    assert kinds == ["1 contradictions", "1 dangling", "1 duplicates", "1 lost"]
    assert any(lost.uri in example for example in result.examples["lost"])
    assert result.dead_letter_reasons and all(": " in reason for reason in result.dead_letter_reasons)


def test_a_kept_promise_has_no_violation(world: World) -> None:
    stack = _stack()
    since = time.time()
    done, failed, dead = (_upload(world, name, "COMPLETED") for name in ("a.csv", "b.csv", "c.csv"))
    _job(world, done, JobStatus.COMPLETED, _output(world, done))
    _job(world, failed, JobStatus.FAILED, failure_reason="ClientError: Received client error (415) from model.")
    world.s3.put_object(Bucket=OUTPUT_BUCKET, Key="orphan/x.out", Body=b"1")  # no job points to it
    events = {
        done.inference_id: [_event(done, "COMPLETED", None, "e1")],
        failed.inference_id: [_event(failed, "FAILED", None, "e2")],
    }
    letter = soak.DeadLetter("m", "lambda", "SubmitterFunction", "RetriesExhausted: x", [dead.inference_id], [dead.uri])

    result = soak.audit(stack, [done, failed, dead], PREFIX, events, {"m": letter}, since)

    assert result.ok, result.violations
    assert (result.inputs, result.accounted, result.result_events) == (3, 3, 2)
    assert (result.completed, result.failed, result.dead_lettered_inputs) == (1, 1, 1)
    assert result.unexpected_outcomes == {"COMPLETED → FAILED: ClientError: Received client error (415) from model.": 1}
    assert result.orphan_outputs == 1

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
from tests.moto_world import INPUT_BUCKET, OUTPUT_BUCKET, World
from tests.samples import load_event

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


def _event(
    upload: soak.Input, status: str, location: str | None, event_id: str, reason: str | None = None
) -> soak.Event:
    return soak.Event(event_id, upload.inference_id, status, upload.uri, location, reason, time.time())


def _dead_letter(upload: soak.Input, message_id: str = "m-1") -> soak.DeadLetter:
    """Lambda's on-failure record for the submitter, carrying the S3 event of ``upload``."""
    from async_pipeline.s3_events import encode_key

    record = load_event("lambda-on-failure-record.json")
    obj = record["requestPayload"]["Records"][0]["s3"]["object"]
    obj.update(key=encode_key(upload.key), versionId=upload.version_id)
    return soak.parse_dead_letter(message_id, json.dumps(record))


def test_each_kind_of_broken_promise_is_a_violation(world: World) -> None:
    stack = _stack()
    since = time.time()
    fine, twice, lost, contradicted, dangling, dead = (
        _upload(world, name) for name in ("fine.csv", "twice.csv", "lost.csv", "contra.csv", "dangle.csv", "dlq.csv")
    )
    uploads = [fine, twice, lost, contradicted, dangling, dead]
    outputs = {upload.key: _output(world, upload) for upload in (fine, twice, lost)}
    for upload in (fine, twice, lost):  # lost.csv: terminal, but its event never came
        _job(world, upload, JobStatus.COMPLETED, outputs[upload.key])
    _job(world, contradicted, JobStatus.FAILED, failure_reason="ClientError: 415")
    _job(world, dangling, JobStatus.COMPLETED, f"s3://{OUTPUT_BUCKET}/output/missing.out")
    _job(world, dead, JobStatus.SUBMITTING)
    events = {
        fine.inference_id: [_event(fine, "COMPLETED", outputs[fine.key], "e1")],
        twice.inference_id: [
            _event(twice, "COMPLETED", outputs[twice.key], "e2"),
            _event(twice, "COMPLETED", outputs[twice.key], "e3"),
        ],
        contradicted.inference_id: [_event(contradicted, "COMPLETED", _output(world, contradicted), "e4")],
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
    output = _output(world, done)
    _job(world, done, JobStatus.COMPLETED, output)
    _job(world, failed, JobStatus.FAILED, failure_reason="ClientError: Received client error (415) from model.")
    world.s3.put_object(Bucket=OUTPUT_BUCKET, Key="orphan/x.out", Body=b"1")  # no job points to it
    events = {
        done.inference_id: [_event(done, "COMPLETED", output, "e1")],
        failed.inference_id: [
            _event(failed, "FAILED", None, "e2", "ClientError: Received client error (415) from model.")
        ],
    }
    letter = soak.DeadLetter("m", "lambda", "SubmitterFunction", "RetriesExhausted: x", [dead.inference_id], [dead.uri])

    result = soak.audit(stack, [done, failed, dead], PREFIX, events, {"m": letter}, since)

    assert result.ok, result.violations
    assert (result.inputs, result.accounted, result.result_events) == (3, 3, 2)
    assert (result.completed, result.failed, result.dead_lettered_inputs) == (1, 1, 1)
    assert result.unexpected_outcomes == {"COMPLETED → FAILED: ClientError: Received client error (415) from model.": 1}
    assert result.orphan_outputs == 1


def test_a_dead_letter_accounts_only_for_what_its_replay_can_finish(world: World) -> None:
    """A submitter dead letter (say, one of two duplicate deliveries during an outage) does not excuse a finished
    job whose event never arrived: replaying it stops at the claim. It does excuse an open job, or one that still
    owes its event (any replayed delivery publishes it)."""
    stack = _stack()
    since = time.time()
    published, owed, open_job = (_upload(world, name) for name in ("published.csv", "owed.csv", "open.csv"))
    _job(world, published, JobStatus.COMPLETED, _output(world, published))
    _job(world, owed, JobStatus.COMPLETED, _output(world, owed), event_pending=True)
    _job(world, open_job, JobStatus.SUBMITTING)
    letters = {f"m-{u.key}": _dead_letter(u, f"m-{u.key}") for u in (published, owed, open_job)}

    result = soak.audit(stack, [published, owed, open_job], PREFIX, {}, letters, since)

    assert (result.lost, result.dead_lettered_inputs) == (1, 2)
    assert published.uri in result.examples["lost"][0] and "cannot finish it" in result.examples["lost"][0]


def test_incomplete_records_and_a_file_handled_under_a_second_id_are_violations(world: World) -> None:
    stack = _stack()
    since = time.time()
    bare, unexplained, twice = (_upload(world, name) for name in ("bare.csv", "unexplained.csv", "twice.csv"))
    _job(world, bare, JobStatus.COMPLETED)  # COMPLETED without its output location
    _job(world, unexplained, JobStatus.FAILED)  # FAILED without a reason
    output = _output(world, twice)
    _job(world, twice, JobStatus.COMPLETED, output)
    # The same file once more under another id (as a key decoded two ways would give): job and event.
    stray = soak.Input(twice.key, twice.uri, twice.version_id, "f" * 64, "COMPLETED", time.time())
    _job(world, stray, JobStatus.COMPLETED, output)
    events = {
        bare.inference_id: [_event(bare, "COMPLETED", None, "e1")],
        unexplained.inference_id: [_event(unexplained, "FAILED", None, "e2")],
        twice.inference_id: [_event(twice, "COMPLETED", output, "e3")],
        stray.inference_id: [_event(stray, "COMPLETED", output, "e4")],
    }

    result = soak.audit(stack, [bare, unexplained, twice], PREFIX, events, {}, since)

    assert (result.incomplete, result.strays, result.lost, result.duplicates) == (2, 1, 0, 0)
    kinds = sorted(violation.split(":")[0] for violation in result.violations)
    assert kinds == ["1 strays", "2 incomplete"]

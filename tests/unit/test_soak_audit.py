"""The soak's audit finds every kind of broken promise (so that a green soak means something).

The judgement is a pure function of a snapshot: most tests build the snapshot by hand, each input in a different
state, and check that each one is classified and that each kind of breach is a violation. Dead-letter entries are
parsed from the shape Lambda's on-failure destination really writes. One test reads a snapshot from a moto world.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from async_pipeline import inference_ids, result_events
from async_pipeline.jobs import Job, JobStatus
from async_pipeline.s3_events import encode_key
from async_pipeline.s3_uris import format_uri
from async_pipeline.submission import VERSION_GONE

from asyncinfer import dead_letters, target
from asyncinfer.dead_letters import DeadLetter
from asyncinfer.local.endpoint.failure_reasons import UNWRITTEN_FAILURE
from asyncinfer.soak import judge, snapshot
from asyncinfer.soak.collectors import received_event
from asyncinfer.soak.snapshot import ReceivedEvent, Snapshot, Upload
from tests.moto_world import INPUT_BUCKET, OUTPUT_BUCKET, World
from tests.samples import load_event

PREFIX = "soak/audit/"
UPLOADED_AT = 1_000.0


def _upload(name: str, expected: str = "COMPLETED") -> Upload:
    key = PREFIX + name
    version = f"v-{name}"
    iid = inference_ids.of_version(INPUT_BUCKET, key, version)
    return Upload(key, format_uri(INPUT_BUCKET, key), version, iid, expected, UPLOADED_AT)


def _job(upload: Upload, status: JobStatus, output: str | None = None, **extra: Any) -> Job:
    job = Job(inference_id=upload.inference_id, status=status, input_location=upload.uri, **extra)
    if output is not None and status is JobStatus.COMPLETED:
        job.output_location = output
    return job


def _output(upload: Upload) -> str:
    return format_uri(OUTPUT_BUCKET, f"output/{upload.inference_id}.out")


def _event(
    upload: Upload, status: str, location: str | None, event_id: str, reason: str | None = None, after: float = 2.0
) -> ReceivedEvent:
    return ReceivedEvent(event_id, upload.inference_id, status, upload.uri, location, reason, UPLOADED_AT + after)


def _dead_letter(upload: Upload, message_id: str = "m-1") -> DeadLetter:
    """Lambda's on-failure record for the submitter, carrying the S3 event of ``upload``."""
    record = load_event("lambda-on-failure-record.json")
    s3 = record["requestPayload"]["Records"][0]["s3"]
    s3["bucket"]["name"] = INPUT_BUCKET
    s3["object"].update(key=encode_key(upload.key), versionId=upload.version_id)
    return dead_letters.parse(message_id, json.dumps(record))


def _snapshot(
    uploads: list[Upload],
    jobs: list[Job],
    events: dict[str, list[ReceivedEvent]] | None = None,
    letters: list[DeadLetter] | None = None,
    outputs: set[str] | None = None,
    inputs: dict[str, str] | None = None,
) -> Snapshot:
    return Snapshot(
        run_location=format_uri(INPUT_BUCKET, PREFIX),
        uploads=uploads,
        inputs={u.inference_id: u.uri for u in uploads} if inputs is None else inputs,
        jobs=jobs,
        events=events or {},
        dead_letters={letter.message_id: letter for letter in letters or []},
        outputs=outputs or set(),
    )


def _kinds(violations: list[str]) -> list[str]:
    return sorted(violation.split(":")[0] for violation in violations)


def test_each_kind_of_broken_promise_is_a_violation() -> None:
    fine, twice, lost, contradicted, dangling, dead = (
        _upload(name) for name in ("fine.csv", "twice.csv", "lost.csv", "contra.csv", "dangle.csv", "dlq.csv")
    )
    uploads = [fine, twice, lost, contradicted, dangling, dead]
    outputs = {upload.key: _output(upload) for upload in (fine, twice, lost, contradicted)}
    missing = format_uri(OUTPUT_BUCKET, "output/missing.out")
    jobs = [_job(upload, JobStatus.COMPLETED, outputs[upload.key]) for upload in (fine, twice, lost)]
    # lost.csv: terminal, but its event never came
    jobs += [
        _job(contradicted, JobStatus.FAILED, failure_reason="ClientError: 415"),
        _job(dangling, JobStatus.COMPLETED, missing),
        _job(dead, JobStatus.SUBMITTING),
    ]
    events = {
        fine.inference_id: [_event(fine, "COMPLETED", outputs[fine.key], "e1")],
        twice.inference_id: [
            _event(twice, "COMPLETED", outputs[twice.key], "e2"),
            _event(twice, "COMPLETED", outputs[twice.key], "e3"),
        ],
        contradicted.inference_id: [_event(contradicted, "COMPLETED", outputs[contradicted.key], "e4")],
        dangling.inference_id: [_event(dangling, "COMPLETED", missing, "e5")],
    }
    letter = _dead_letter(dead)
    assert letter.inference_ids == [dead.inference_id] and "SubmitterFunction" in letter.source
    assert letter.reason.strip()

    result = judge(_snapshot(uploads, jobs, events, [letter], set(outputs.values())))

    assert result.uploaded == 6
    assert result.inputs == 6
    assert (result.duplicates, result.extra_events) == (1, 1)
    assert result.contradictions == 1
    assert result.dangling == 1
    assert result.dead_lettered_inputs == 1
    assert result.lost == 1
    assert not result.ok
    assert _kinds(result.violations) == ["1 contradictions", "1 dangling", "1 duplicates", "1 lost"]
    assert any(lost.uri in example for example in result.examples["lost"])
    assert result.dead_letter_reasons and all(": " in reason for reason in result.dead_letter_reasons)
    # The job and the event both point to the missing object: one dangling input, both named.
    assert sorted(result.examples["dangling"]) == [
        f"{dangling.uri}: event points to missing {missing}",
        f"{dangling.uri}: job points to missing {missing}",
    ]
    assert result.dead_letters == [
        {
            "messageId": "m-1",
            "kind": "lambda",
            "source": letter.source,
            "reason": letter.reason,
            "inputs": [dead.uri],
        }
    ]


def test_a_kept_promise_has_no_violation() -> None:
    done, failed, dead = (_upload(name, "COMPLETED") for name in ("a.csv", "b.csv", "c.csv"))
    output = _output(done)
    jobs = [
        _job(done, JobStatus.COMPLETED, output),
        _job(failed, JobStatus.FAILED, failure_reason="ClientError: Received client error (415) from model."),
    ]
    events = {
        done.inference_id: [_event(done, "COMPLETED", output, "e1")],
        failed.inference_id: [
            _event(failed, "FAILED", None, "e2", "ClientError: Received client error (415) from model.")
        ],
    }
    letter = DeadLetter("m", "lambda", "SubmitterFunction", "RetriesExhausted: x", [dead.inference_id], [dead.uri])
    orphan = format_uri(OUTPUT_BUCKET, "orphan/x.out")  # no job points to it

    result = judge(_snapshot([done, failed, dead], jobs, events, [letter], {output, orphan}))

    assert result.ok, result.violations
    assert (result.inputs, result.accounted, result.result_events) == (3, 3, 2)
    assert (result.completed, result.failed, result.dead_lettered_inputs) == (1, 1, 1)
    assert result.unexpected_outcomes == {"COMPLETED → FAILED: ClientError: Received client error (415) from model.": 1}
    assert result.orphan_outputs == 1
    assert result.failure_reasons == {"ClientError: Received client error (415) from model.": 1}
    assert result.latency_p50_seconds == result.latency_p95_seconds == 2.0


def test_a_dead_letter_accounts_only_for_what_its_replay_can_finish() -> None:
    """A submitter dead letter (say, one of two duplicate deliveries during an outage) does not excuse a finished
    job whose event never arrived: replaying it stops at the claim. It does excuse an open job, or one that still
    owes its event (any replayed delivery publishes it)."""
    published, owed, open_job = (_upload(name) for name in ("published.csv", "owed.csv", "open.csv"))
    jobs = [
        _job(published, JobStatus.COMPLETED, _output(published)),
        _job(owed, JobStatus.COMPLETED, _output(owed), event_pending=True),
        _job(open_job, JobStatus.SUBMITTING),
    ]
    letters = [_dead_letter(u, f"m-{u.key}") for u in (published, owed, open_job)]
    outputs = {_output(published), _output(owed)}

    result = judge(_snapshot([published, owed, open_job], jobs, {}, letters, outputs))

    assert (result.lost, result.dead_lettered_inputs) == (1, 2)
    assert published.uri in result.examples["lost"][0] and "cannot finish it" in result.examples["lost"][0]


def test_an_undelivered_result_event_accounts_for_a_finished_job() -> None:
    """EventBridge could not deliver the event: the dead letter is the event itself, its replay delivers it."""
    published = _upload("published.csv")
    job = _job(published, JobStatus.COMPLETED, _output(published))
    envelope = {
        "id": "e-1",
        "source": result_events.SOURCE,
        "detail-type": "Inference Completed",
        "detail": result_events.build(job).detail,
    }
    letter = dead_letters.parse("m-1", json.dumps(envelope))
    assert (letter.kind, letter.inference_ids, letter.input_uris) == ("events", [job.inference_id], [published.uri])

    result = judge(_snapshot([published], [job], {}, [letter], {_output(published)}))

    assert result.ok, result.violations
    assert (result.lost, result.dead_lettered_inputs, result.accounted) == (0, 1, 1)


def test_incomplete_records_and_a_file_handled_under_a_second_id_are_violations() -> None:
    bare, unexplained, twice = (_upload(name) for name in ("bare.csv", "unexplained.csv", "twice.csv"))
    output = _output(twice)
    # The same file once more under another id (as a key decoded two ways would give): job and event.
    stray = Upload(twice.key, twice.uri, twice.version_id, "f" * 64, "COMPLETED", time.time())
    jobs = [
        _job(bare, JobStatus.COMPLETED),  # COMPLETED without its output location
        _job(unexplained, JobStatus.FAILED),  # FAILED without a reason
        _job(twice, JobStatus.COMPLETED, output),
        _job(stray, JobStatus.COMPLETED, output),
    ]
    events = {
        bare.inference_id: [_event(bare, "COMPLETED", None, "e1")],
        unexplained.inference_id: [_event(unexplained, "FAILED", None, "e2")],
        twice.inference_id: [_event(twice, "COMPLETED", output, "e3")],
        stray.inference_id: [_event(stray, "COMPLETED", output, "e4")],
    }

    result = judge(_snapshot([bare, unexplained, twice], jobs, events, [], {output}))

    assert (result.incomplete, result.strays, result.lost, result.duplicates) == (2, 1, 0, 0)
    assert _kinds(result.violations) == ["1 strays", "2 incomplete"]
    assert result.stray_events == 1  # the event under the second id is no input's
    assert result.examples["strays"] == [f"{'f' * 64}: {twice.uri}, not an input version's id"]


def test_a_failure_object_the_endpoint_could_not_write_is_explained_not_dangling() -> None:
    explained, unexplained, job_only = (_upload(name, "FAILED") for name in ("x.csv", "y.csv", "z.csv"))
    gone = {u.key: format_uri(OUTPUT_BUCKET, f"failure/{u.inference_id}-error.out") for u in (explained, unexplained)}
    gone[job_only.key] = format_uri(OUTPUT_BUCKET, "output/never-written.out")
    says_so = f"ClientError: Received server error (500) from model. {UNWRITTEN_FAILURE}."
    jobs = [
        _job(explained, JobStatus.FAILED, failure_location=gone[explained.key], failure_reason=says_so),
        _job(unexplained, JobStatus.FAILED, failure_location=gone[unexplained.key], failure_reason="boom"),
        _job(job_only, JobStatus.COMPLETED, gone[job_only.key]),
    ]
    events = {
        explained.inference_id: [_event(explained, "FAILED", gone[explained.key], "e1", says_so)],
        unexplained.inference_id: [_event(unexplained, "FAILED", gone[unexplained.key], "e2", "boom")],
        job_only.inference_id: [_event(job_only, "COMPLETED", None, "e3")],  # the event names no location
    }

    result = judge(_snapshot([explained, unexplained, job_only], jobs, events))

    assert (result.dangling, result.dangling_explained) == (2, 1)
    assert result.incomplete == 1  # the COMPLETED event without its output location
    assert _kinds(result.violations) == ["1 incomplete", "2 dangling"]
    assert sorted(result.examples["dangling"]) == sorted(
        [
            f"{unexplained.uri}: event points to missing {gone[unexplained.key]}",
            f"{unexplained.uri}: job points to missing {gone[unexplained.key]}",
            f"{job_only.uri}: job points to missing {gone[job_only.key]}",
        ]
    )
    assert result.unexpected_outcomes == {"FAILED → COMPLETED: completed": 1}


def test_an_upload_missing_from_the_bucket_and_orphan_failure_objects() -> None:
    kept, vanished = _upload("kept.csv"), _upload("vanished.csv")
    output = _output(kept)
    orphans = {format_uri(OUTPUT_BUCKET, "failure/a-error.out"), format_uri(OUTPUT_BUCKET, "failure/b-error.out")}
    foreign = ReceivedEvent("e9", "elsewhere", "COMPLETED", "s3://other/x.csv", None, None, UPLOADED_AT)
    events = {kept.inference_id: [_event(kept, "COMPLETED", output, "e1")], "elsewhere": [foreign]}

    result = judge(
        _snapshot(
            [kept, vanished],
            [_job(kept, JobStatus.COMPLETED, output)],
            events,
            outputs={output} | orphans,
            inputs={kept.inference_id: kept.uri},
        )
    )

    assert result.violations == [f"uploaded but not in the input bucket: {vanished.uri}"]
    assert (result.uploaded, result.inputs, result.accounted) == (2, 1, 1)
    assert (result.orphan_outputs, result.orphan_failure_objects, result.stray_events) == (0, 2, 1)
    assert result.strays == 0  # the foreign event is not for one of this run's files


def test_results_queue_messages_become_received_events_or_are_foreign() -> None:
    upload = _upload("a.csv")
    event = result_events.build(
        _job(upload, JobStatus.FAILED, failure_location="s3://out/failure/x-error.out", failure_reason="boom")
    )
    envelope = {"id": "e-7", "source": result_events.SOURCE, "detail-type": event.detail_type, "detail": event.detail}

    received = received_event(json.dumps(envelope), 5.0)

    assert received == ReceivedEvent(
        "e-7", upload.inference_id, "FAILED", upload.uri, "s3://out/failure/x-error.out", "boom", 5.0
    )
    assert received_event("not json", 5.0) is None
    assert received_event("[1]", 5.0) is None
    assert received_event(json.dumps({**envelope, "source": "aws.s3"}), 5.0) is None


def test_the_snapshot_is_read_from_the_stack(world: World) -> None:
    """Inputs are the object versions under the run's prefix, with the ids their S3 events get; outputs are the
    objects written since the run began."""
    stack = target.Target(
        name="audit",
        region="us-east-1",
        outputs={"InputBucketName": INPUT_BUCKET, "OutputBucketName": OUTPUT_BUCKET, "JobsTableName": "jobs"},
    )
    since = time.time()
    key = PREFIX + "a b+é.csv"
    first, second = world.put_object(key)["VersionId"], world.put_object(key)["VersionId"]
    world.put_object("elsewhere/b.csv")
    iid = inference_ids.of_version(INPUT_BUCKET, key, second)
    upload = Upload(key, format_uri(INPUT_BUCKET, key), second, iid, "COMPLETED", since)
    job = Job(inference_id=iid, status=JobStatus.SUBMITTED, input_location=upload.uri)
    world.dynamodb.put_item(TableName="jobs", Item=job.to_item())
    world.s3.put_object(Bucket=OUTPUT_BUCKET, Key="output/x.out", Body=b"0.5\n")
    event = _event(_upload("a.csv"), "COMPLETED", None, "e1")

    read = snapshot.read(stack, [upload], PREFIX, {"x": [event]}, {}, since)

    assert read.run_location == f"s3://{INPUT_BUCKET}/{PREFIX}"
    assert read.inputs == {
        inference_ids.of_version(INPUT_BUCKET, key, version): format_uri(INPUT_BUCKET, key)
        for version in (first, second)
    }
    assert [j.inference_id for j in read.jobs] == [job.inference_id]
    assert read.outputs == {format_uri(OUTPUT_BUCKET, "output/x.out")}
    assert read.uploads == [upload] and read.events == {"x": [event]} and read.dead_letters == {}
    assert judge(read).open_jobs == 1


def _fake_model(payload: bytes, content_type: str) -> bytes | None:
    """A stand-in for the model container: one 'prediction' per row (its first value), CSV only."""
    if content_type != "text/csv" or not payload.strip():
        return None
    return b"\n".join(line.split(b",")[0] for line in payload.splitlines())


def test_an_output_for_other_content_than_its_version_is_a_wrong_input() -> None:
    """What the ``input-changed`` fault does to a pipeline that sends the user's key: the endpoint reads the key's
    current content when the request runs, so the output is a prediction for another version's bytes (or the
    payload cannot be read at all when the key was deleted). The audit flags both; a matching output passes."""
    right, overwritten, deleted = (_upload(name) for name in ("right.csv", "overwritten.csv", "deleted.csv"))
    uploads = [right, overwritten, deleted]
    outputs = {u.key: _output(u) for u in (right, overwritten)}
    reason = "ClientError: Failed to download the request payload from s3://in/deleted.csv: NoSuchKey"
    jobs = [
        _job(right, JobStatus.COMPLETED, outputs[right.key]),
        _job(overwritten, JobStatus.COMPLETED, outputs[overwritten.key]),
        _job(deleted, JobStatus.FAILED, failure_reason=reason),
    ]
    events = {
        right.inference_id: [_event(right, "COMPLETED", outputs[right.key], "e1")],
        overwritten.inference_id: [_event(overwritten, "COMPLETED", outputs[overwritten.key], "e2")],
        deleted.inference_id: [_event(deleted, "FAILED", None, "e3", reason)],
    }
    checks = {
        right.inference_id: snapshot.OutputCheck(right.uri, right.version_id, outputs[right.key], b"0.25", b"0.25"),
        # The version held 0.25; the key was overwritten with 0.75 before the request ran.
        overwritten.inference_id: snapshot.OutputCheck(
            overwritten.uri, overwritten.version_id, outputs[overwritten.key], b"0.25", b"0.75"
        ),
    }
    base = _snapshot(uploads, jobs, events, outputs=set(outputs.values()))
    audit = judge(replace(base, output_checks=checks))
    assert audit.wrong_inputs == 2 and audit.outputs_checked == 2
    assert _kinds(audit.violations) == ["2 wrong inputs"]
    examples = audit.examples["wrong inputs"]
    assert any("overwritten.csv" in e and "'0.75'" in e for e in examples)
    assert any("deleted.csv" in e and "could not read the payload" in e for e in examples)
    # Without the mismatch and the unreadable payload, the same run keeps its promise.
    fixed_checks = {**checks, overwritten.inference_id: checks[right.inference_id]}
    fixed_jobs = [*jobs[:2], _job(deleted, JobStatus.FAILED, failure_reason="ClientError: 415")]
    fixed = _snapshot(uploads, fixed_jobs, events, outputs=set(outputs.values()))
    assert judge(replace(fixed, output_checks=fixed_checks)).violations == []


def test_output_checks_compare_each_output_with_the_prediction_for_its_own_version(world: World) -> None:
    """The snapshot reads each completed job's input version (not the key's current content) and its output."""
    key = PREFIX + "changed é.csv"
    first = world.put_object(key, b"0.25,1,2\n0.5,1,2\n")["VersionId"]
    world.put_object(key, b"0.75,1,2\n")  # the key moved on after the job's version
    iid = inference_ids.of_version(INPUT_BUCKET, key, first)
    good, bad = format_uri(OUTPUT_BUCKET, "output/good.out"), format_uri(OUTPUT_BUCKET, "output/bad.out")
    world.s3.put_object(Bucket=OUTPUT_BUCKET, Key="output/good.out", Body=b"0.25\n0.5")
    world.s3.put_object(Bucket=OUTPUT_BUCKET, Key="output/bad.out", Body=b"0.75")
    versions = {iid: (key, first)}
    for location, expected_match in ((good, True), (bad, False)):
        job = Job(inference_id=iid, status=JobStatus.COMPLETED, input_location=format_uri(INPUT_BUCKET, key))
        job.output_location = location
        checks = snapshot.check_outputs(world.s3, INPUT_BUCKET, versions, [job], _fake_model)
        check = checks[iid]
        assert check.expected == b"0.25\n0.5" and check.version_id == first
        assert (check.actual == check.expected) is expected_match
    # Jobs that did not complete are not checked.
    open_job = Job(inference_id=iid, status=JobStatus.SUBMITTED, input_location=format_uri(INPUT_BUCKET, key))
    assert snapshot.check_outputs(world.s3, INPUT_BUCKET, versions, [open_job], _fake_model) == {}


def test_staged_inputs_in_the_output_bucket_are_not_outputs(world: World) -> None:
    """The submitter's copies under staging/ live in the output bucket: they are inputs, not orphan outputs."""
    stack = target.Target(
        name="audit",
        region="us-east-1",
        outputs={"InputBucketName": INPUT_BUCKET, "OutputBucketName": OUTPUT_BUCKET, "JobsTableName": "jobs"},
    )
    since = time.time()
    world.s3.put_object(Bucket=OUTPUT_BUCKET, Key="staging/abc.csv", Body=b"1,2\n")
    world.s3.put_object(Bucket=OUTPUT_BUCKET, Key="output/x.out", Body=b"0.5\n")
    read = snapshot.read(stack, [], PREFIX, {}, {}, since)
    assert read.outputs == {format_uri(OUTPUT_BUCKET, "output/x.out")}
    assert judge(read).orphan_outputs == 1


def _named(upload: Upload) -> str:
    """The output's derived name: the input key's folder under output/, the inference id's first 28 digits."""
    return format_uri(OUTPUT_BUCKET, f"output/soak/audit/{upload.inference_id[:28]}.out")


def test_a_completed_output_away_from_its_derived_name_is_misnamed() -> None:
    right, elsewhere, event_elsewhere, failed = (
        _upload(n) for n in ("right.csv", "elsewhere.csv", "event-elsewhere.csv", "failed.csv")
    )
    uploads = [right, elsewhere, event_elsewhere, failed]
    uuid_named = format_uri(OUTPUT_BUCKET, "output/2f4dcf85-01b8-418c-8c93-2b30fcdd1ab8.out")
    jobs = [
        _job(right, JobStatus.COMPLETED, _named(right)),
        _job(elsewhere, JobStatus.COMPLETED, uuid_named),
        _job(event_elsewhere, JobStatus.COMPLETED, _named(event_elsewhere)),
        _job(failed, JobStatus.FAILED, failure_reason="ClientError: 415"),
    ]
    events = {
        right.inference_id: [_event(right, "COMPLETED", _named(right), "e1")],
        elsewhere.inference_id: [_event(elsewhere, "COMPLETED", uuid_named, "e2")],
        event_elsewhere.inference_id: [_event(event_elsewhere, "COMPLETED", uuid_named, "e3")],
        failed.inference_id: [_event(failed, "FAILED", None, "e4", "ClientError: 415")],
    }
    outputs = {_named(right), uuid_named, _named(event_elsewhere)}
    base = _snapshot(uploads, jobs, events, outputs=outputs)
    audit = judge(replace(base, output_path=f"s3://{OUTPUT_BUCKET}/output/"))
    assert (audit.misnamed, audit.names_checked) == (2, 3)
    assert _kinds(audit.violations) == ["2 misnamed outputs"]
    assert any("elsewhere.csv" in e and "2f4dcf85" in e for e in audit.examples["misnamed outputs"])
    # Without an S3OutputPath the names are not judged (and so not counted as checked).
    assert judge(base).names_checked == 0


def test_an_event_without_its_files_metadata_is_a_violation() -> None:
    metadata = {"batch": "7", "custom-attributes": "file=1"}
    kept, dropped, altered, gone, unchecked = (
        replace(_upload(n), metadata=None if n == "unchecked.csv" else metadata)
        for n in ("kept.csv", "dropped.csv", "altered.csv", "gone.csv", "unchecked.csv")
    )
    uploads = [kept, dropped, altered, gone, unchecked]
    output = {u.inference_id: _output(u) for u in uploads}
    jobs = [_job(u, JobStatus.COMPLETED, output[u.inference_id]) for u in (kept, dropped, altered, unchecked)]
    jobs.append(_job(gone, JobStatus.FAILED, failure_reason=VERSION_GONE))

    def event(upload: Upload, meta: dict[str, str] | None, event_id: str) -> ReceivedEvent:
        if upload is gone:
            return replace(_event(upload, "FAILED", None, event_id, VERSION_GONE), metadata=meta)
        return replace(_event(upload, "COMPLETED", output[upload.inference_id], event_id), metadata=meta)

    events = {
        kept.inference_id: [event(kept, metadata, "e1")],
        dropped.inference_id: [event(dropped, None, "e2")],
        altered.inference_id: [event(altered, {"batch": "7"}, "e3")],
        gone.inference_id: [event(gone, None, "e4")],  # read before it could be: no metadata is right
        unchecked.inference_id: [event(unchecked, None, "e5")],
    }
    audit = judge(_snapshot(uploads, jobs, events, outputs=set(output.values())))
    assert (audit.without_metadata, audit.metadata_checked) == (2, 4)
    assert _kinds(audit.violations) == ["2 events without their file's metadata"]
    # The same run with the metadata carried back keeps its promise.
    events[dropped.inference_id] = [event(dropped, metadata, "e2")]
    events[altered.inference_id] = [event(altered, metadata, "e3")]
    assert judge(_snapshot(uploads, jobs, events, outputs=set(output.values()))).violations == []


def test_received_events_carry_their_metadata() -> None:
    detail = {
        "schemaVersion": "1.1",
        "inferenceId": "abc",
        "status": "COMPLETED",
        "endpointName": "e",
        "inputLocation": "s3://b/k",
        "outputLocation": "s3://o/output/k.out",
        "receivedTime": None,
        "completedTime": None,
        "durationMs": None,
        "metadata": {"batch": "7"},
    }
    body = json.dumps(
        {"id": "1", "source": result_events.SOURCE, "detail-type": "Inference Completed", "detail": detail}
    )
    received = received_event(body, 1.0)
    assert received is not None and received.metadata == {"batch": "7"}


def test_names_are_judged_against_the_output_location_returned_at_submission() -> None:
    """The join rule behind the derived name is UNVERIFIED: what InvokeEndpointAsync answered, recorded on the job,
    is what the output must match; the derived name is the fallback for a job without it, and is reported."""
    returned, moved = _upload("returned.csv"), _upload("moved.csv")
    elsewhere = format_uri(OUTPUT_BUCKET, f"output/other-join/{returned.inference_id[:28]}.out")
    jobs = [
        _job(returned, JobStatus.COMPLETED, elsewhere, submitted_output_location=elsewhere),
        _job(moved, JobStatus.COMPLETED, _named(moved), submitted_output_location=elsewhere),
    ]
    events = {
        returned.inference_id: [_event(returned, "COMPLETED", elsewhere, "e1")],
        moved.inference_id: [_event(moved, "COMPLETED", _named(moved), "e2")],
    }
    base = _snapshot([returned, moved], jobs, events, outputs={elsewhere, _named(moved)})
    audit = judge(replace(base, output_path=f"s3://{OUTPUT_BUCKET}/output/"))
    assert (audit.misnamed, audit.names_checked) == (1, 2)
    [example] = audit.examples["misnamed outputs"]
    assert "moved.csv" in example and "returned at submission" in example and _named(moved) in example

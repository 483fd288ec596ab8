"""``asyncinfer --stack-name S status FILE|S3-URI|INFERENCE-ID`` against moto, and the report's rows (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import submitter
import success_handler
from async_pipeline import s3_uris
from async_pipeline.jobs import Job, JobStatus, JobStore
from click.testing import CliRunner, Result

from asyncinfer import job_status
from asyncinfer.cli import display, main
from asyncinfer.job_status import Ahead, Capacity, Report, rows
from asyncinfer.target import resolve
from tests.moto_world import INPUT_BUCKET, OUTPUT_BUCKET, World, deploy_outputs
from tests.samples import FakeLambdaContext

STACK = "deployed-pipeline"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole lines in the captured output (ids and URIs unfolded)."""
    monkeypatch.setattr(display.console, "width", 300)


BODY = b"1.0,2.0,3.0,4.0\n"


def _status(*args: str) -> Result:
    return CliRunner().invoke(main, ["--stack-name", STACK, "--region", "us-east-1", "status", *args])


def _submitted(world: World, key: str, body: bytes = BODY, **extra: object) -> str:
    from async_pipeline.inference_ids import identify
    from async_pipeline.s3_events import parse_record

    event = world.s3_event(key, body, **extra)
    assert submitter.lambda_handler(event, FakeLambdaContext()) == {"submitted": 1}
    return identify(parse_record(event["Records"][0])).inference_id


def test_status_of_a_file_while_it_waits_then_once_done(world: World, tmp_path: Path) -> None:
    deploy_outputs(world, STACK)
    _submitted(world, "drop/earlier.csv")
    local = tmp_path / "rows.csv"
    local.write_bytes(BODY)
    world.put_object("drop/rows.csv", b"9,9,9,9\n")  # an older version of the key, other bytes
    iid = _submitted(world, "drop/rows.csv", Metadata={"owner": "ana"})
    world.put_object("drop/rows.csv", b"8,8,8,8\n")  # and a newer one: the file's own bytes pick the version

    waiting = _status(str(local), "--prefix", "drop/")
    assert waiting.exit_code == 0, waiting.output
    assert iid in waiting.output and "SUBMITTED" in waiting.output
    assert "about 1 open file(s) received before it (approximate" in waiting.output
    assert "InService, 1 instance(s)" in waiting.output and "owner=ana" in waiting.output

    job = world.job(iid)
    assert job is not None
    world.s3.put_object(Bucket=OUTPUT_BUCKET, Key=s3_uris.key_of(job["outputLocation"]), Body=b"0.8231452\n")
    success_handler.lambda_handler(world.notification_event(iid, succeeded=True), FakeLambdaContext())
    done = _status(iid)
    assert done.exit_code == 0, done.output
    assert "COMPLETED" in done.output and "0.8231452" in done.output and job["outputLocation"] in done.output
    assert "waiting behind" not in done.output


def test_status_of_an_s3_uri_names_its_current_version(world: World) -> None:
    deploy_outputs(world, STACK)
    iid = _submitted(world, "by uri/x €.csv")
    result = _status(f"s3://{INPUT_BUCKET}/by uri/x €.csv")
    assert result.exit_code == 0 and iid in result.output, result.output


def test_what_names_no_job_is_one_line(world: World, tmp_path: Path) -> None:
    deploy_outputs(world, STACK)
    never = tmp_path / "never.csv"
    never.write_bytes(BODY)
    for reference, expected in (
        ("no-such-thing", "is no file, S3 URI"),
        (str(never), "was never uploaded"),
        ("s3://other-bucket/x.csv", "is not in the input bucket"),
    ):
        result = _status(reference)
        assert result.exit_code == 1 and expected in result.output, result.output
    unknown = _status("0" * 64)
    assert unknown.exit_code == 0 and "unknown" in unknown.output and "no job yet" in unknown.output


def test_capacity_says_when_the_endpoint_scales_out_from_zero() -> None:
    assert Capacity("InService", 0, 1).scaling_out_from_zero
    assert Capacity("Updating", 0, 0).scaling_out_from_zero
    assert not Capacity("InService", 0, 0).scaling_out_from_zero
    assert not Capacity("InService", 2, 2).scaling_out_from_zero
    assert "scaling out from zero" in Capacity("InService", 0, 1).describe()
    assert "at zero instances" in Capacity("InService", 0, 0).describe()


def test_rows_of_an_open_and_a_failed_job() -> None:
    waiting = Job(inference_id="a" * 64, status=JobStatus.SUBMITTED, received_time="2026-12-02T10:00:00.000Z")
    report = Report("a" * 64, "s3://in/x.csv", waiting, ahead=Ahead(3, 2), capacity=Capacity("InService", 0, 1))
    shown = dict(rows(report))
    assert shown["waiting behind"] == (
        "about 3 open file(s) received before it (approximate: by S3 event time); "
        "2 more dead-lettered (run asyncinfer redrive), not counted"
    )
    assert Ahead(5, complete=False).describe().startswith("at least 5 open file(s)")
    assert shown["endpoint"].startswith("scaling out from zero")
    reason = 'ClientError: Received client error (415) from model with message "unparsable CSV"' * 3
    failed = Job(inference_id="b" * 64, status=JobStatus.FAILED, failure_reason=reason)
    assert dict(rows(Report("b" * 64, None, failed)))["reason"] == reason  # whole, never cut


def test_a_submitting_job_nobody_will_retry_is_dead_lettered() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
    hour_ago = "2026-12-01T09:00:00.000Z"  # long before ``now``
    recent = datetime.fromtimestamp(now - 60, UTC).isoformat()

    def job(**fields: object) -> Job:
        return Job(inference_id="c" * 64, status=JobStatus.SUBMITTING, **fields)  # type: ignore[arg-type]

    assert job_status.dead_lettered(job(received_time=hour_ago, lease_expires_at=0), now)
    assert job_status.dead_lettered(job(received_time=recent, lease_expires_at=0, attempts=3), now)
    assert not job_status.dead_lettered(job(received_time=recent, lease_expires_at=0, attempts=1), now)  # retried
    assert not job_status.dead_lettered(job(received_time=hour_ago, lease_expires_at=int(now * 1000) + 5), now)
    submitted = Job(inference_id="d" * 64, status=JobStatus.SUBMITTED, received_time=hour_ago)
    assert not job_status.dead_lettered(submitted, now)


def test_template_keeps_the_retry_window_status_assumes() -> None:
    from tests.samples import load_template

    config = load_template()["Globals"]["Function"]["EventInvokeConfig"]
    assert config["MaximumEventAgeInSeconds"] == job_status.SUBMITTER_MAX_EVENT_AGE_S
    assert config["MaximumRetryAttempts"] + 1 == job_status.SUBMITTER_ATTEMPTS


def test_files_ahead_leave_dead_lettered_jobs_apart_and_the_scan_is_bounded(world: World) -> None:
    deploy_outputs(world, STACK)
    store = JobStore(world.dynamodb, world.table, retention_seconds=3600)
    for n in range(3):  # three claims whose submitters died over an hour before ``now_s``
        job = Job(inference_id=f"{n:064d}", status=JobStatus.SUBMITTING, received_time=f"2026-12-01T09:00:0{n}Z")
        store.claim(job, lease_expires_at_ms=0, now_s=0)
    world.dynamodb.update_item(  # the first was submitted after all: it waits for the endpoint
        TableName=world.table,
        Key={"inferenceId": {"S": f"{0:064d}"}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "SUBMITTED"}},
    )
    mine = Job(inference_id="f" * 64, status=JobStatus.SUBMITTED, received_time="2026-12-01T10:00:00Z")
    target = resolve(STACK, "us-east-1", Path("."))
    ahead = job_status.open_ahead(target, mine, now_s=datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp())
    assert (ahead.waiting, ahead.dead_lettered, ahead.complete) == (1, 2, True)
    assert not job_status.open_ahead(
        target, mine, now_s=datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp(), max_scanned=1
    ).complete


def test_a_file_in_a_nested_folder_is_found_under_the_key_submit_gave_it(world: World, tmp_path: Path) -> None:
    deploy_outputs(world, STACK)
    nested = tmp_path / "batch" / "2026" / "12"
    nested.mkdir(parents=True)
    local = nested / "rows.csv"
    local.write_bytes(BODY)
    iid = _submitted(world, "batch/2026/12/rows.csv")  # what ``submit batch/`` names it
    result = _status(str(local))
    assert result.exit_code == 0 and iid in result.output, result.output

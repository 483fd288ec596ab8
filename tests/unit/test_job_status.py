"""``asyncinfer --stack-name S status FILE|S3-URI|INFERENCE-ID`` against moto, and the report's rows (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
import submitter
import success_handler
from async_pipeline import s3_uris
from async_pipeline.jobs import Job, JobStatus
from click.testing import CliRunner, Result

from asyncinfer.cli import display, main
from asyncinfer.job_status import Capacity, Report, rows
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
    assert "1 open file(s) received before it" in waiting.output
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
    shown = dict(rows(Report("a" * 64, "s3://in/x.csv", waiting, ahead=3, capacity=Capacity("InService", 0, 1))))
    assert shown["waiting behind"] == "3 open file(s) received before it"
    assert shown["endpoint"].startswith("scaling out from zero")
    reason = 'ClientError: Received client error (415) from model with message "unparsable CSV"' * 3
    failed = Job(inference_id="b" * 64, status=JobStatus.FAILED, failure_reason=reason)
    assert dict(rows(Report("b" * 64, None, failed)))["reason"] == reason  # whole, never cut

"""Results for the people who drop the files, through the stack's outputs only: metadata back in the event,
CustomAttributes checked, outputs named after their inputs, waiting for exactly one's own files, one file's status."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import numpy as np
from async_pipeline import output_names
from async_pipeline.jobs import JobStatus

from asyncinfer import job_status, job_waits, target, uploads
from asyncinfer.cli.display import wait_showing_progress
from asyncinfer.model import demo
from tests.support import ResultCollector

TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "1800" if os.environ.get("AWS_SAM_STACK_NAME") else "120"))


def _prefix() -> str:
    return f"e2e/{uuid.uuid4().hex[:8]}/"


def _output_path(stack: target.Target) -> str:
    return f"s3://{stack.outputs['OutputBucketName']}/output/"  # the template's S3OutputPath


def test_metadata_comes_back_and_the_output_is_named_after_its_input(
    stack: target.Target, results: ResultCollector
) -> None:
    key = _prefix() + "daily report € + 50%/scores.csv"
    rows = demo.make_input_rows(3, seed=5)
    metadata = {"custom-attributes": "trace=e2e-1; tenant=acme", "owner": "ana"}
    stack.client("s3").put_object(
        Bucket=stack.outputs["InputBucketName"], Key=key, Body=demo.rows_to_csv(rows), Metadata=metadata
    )
    [event] = results.wait_for([key], TIMEOUT)[key]
    detail = event.detail
    assert detail["status"] == "COMPLETED" and detail["schemaVersion"] == "1.1"
    assert detail["metadata"] == metadata
    expected = output_names.output_uri(_output_path(stack), key, detail["inferenceId"])
    assert detail["outputLocation"] == expected
    assert "daily_report_____50_/" in expected  # the folder, mapped into the API's characters
    bucket, _, out_key = expected.removeprefix("s3://").partition("/")
    body = stack.client("s3").get_object(Bucket=bucket, Key=out_key)["Body"].read()
    output = np.loadtxt(io.BytesIO(body), delimiter=",", ndmin=1)
    assert output.shape == (3,) and ((output > 0) & (output < 1)).all()  # one probability per row


def test_custom_attributes_the_api_refuses_fail_the_job_with_the_reason(
    stack: target.Target, results: ResultCollector
) -> None:
    key = _prefix() + "too long.csv"
    metadata = {"custom-attributes": "x" * 1025}
    stack.client("s3").put_object(
        Bucket=stack.outputs["InputBucketName"], Key=key, Body=demo.make_csv_payload(1), Metadata=metadata
    )
    [event] = results.wait_for([key], TIMEOUT)[key]
    assert event.detail["status"] == "FAILED" and "1025 characters" in event.detail["failureReason"]
    assert event.detail["metadata"] == metadata and event.detail["failureLocation"] is None


def test_waiting_for_ones_own_files_and_asking_for_one(stack: target.Target, tmp_path: Path) -> None:
    """``submit --wait --output``'s code and ``status`` on the stack: exactly these files, from the jobs table."""
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "one.csv").write_bytes(demo.make_csv_payload(1, seed=1))
    (folder / "two rows.csv").write_bytes(demo.make_csv_payload(2, seed=2))
    (folder / "bad.csv").write_bytes(b"alpha,beta,gamma,delta,epsilon,zeta\n")
    prefix = _prefix()
    done = uploads.upload(stack, uploads.collect([folder], prefix, {"owner": "bo"}))
    out = tmp_path / "results"
    result = wait_showing_progress(stack, done, prefix, TIMEOUT, out)
    assert result.exit_code == job_waits.ExitCode.FAILED and not result.waiting
    statuses = {job.input_location.rsplit("/", 1)[1]: job.status for job in result.finished.values()}  # type: ignore[union-attr]
    assert statuses == {
        "one.csv": JobStatus.COMPLETED,
        "two rows.csv": JobStatus.COMPLETED,
        "bad.csv": JobStatus.FAILED,
    }
    assert sorted(p.name for p in (out / "drop").iterdir()) == ["one.csv.out", "two rows.csv.out"]
    assert len((out / "drop" / "two rows.csv.out").read_text().split()) == 2  # two rows, two predictions

    found = job_status.report(stack, job_status.resolve(stack, str(folder / "bad.csv"), prefix))
    shown = dict(job_status.rows(found))
    assert shown["state"] == "FAILED" and "415" in shown["reason"] and shown["metadata"] == "owner=bo"
    by_id = dict(job_status.rows(job_status.report(stack, job_status.resolve(stack, found.inference_id))))
    assert by_id["input"] == found.input_uri

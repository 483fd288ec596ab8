"""``asyncinfer --stack-name S submit --wait`` against moto: the deployed-stack path (CloudFormation outputs), the
handlers run by a stand-in for S3's and SNS's triggers, the endpoint stubbed at the HTTP layer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import error_handler
import pytest
import submitter
import success_handler
from async_pipeline import s3_uris
from async_pipeline.s3_events import encode_key
from click.testing import CliRunner

from asyncinfer import job_waits
from asyncinfer.cli import main
from asyncinfer.job_results import cut, local_name
from tests.moto_world import INPUT_BUCKET, OUTPUT_BUCKET, World, deploy_outputs
from tests.samples import FakeLambdaContext, load_event

STACK = "deployed-pipeline"


class Pipeline(threading.Thread):
    """S3's trigger and the endpoint's notifications, by hand: each new input version is submitted; then, unless
    its key says ``never``, the endpoint "answers" (``bad`` fails) and the handler finishes the job."""

    def __init__(self, world: World) -> None:
        super().__init__(daemon=True)
        self.world = world
        self.stopped = threading.Event()
        self.seen: set[str] = set()

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            listed = self.world.s3.list_object_versions(Bucket=INPUT_BUCKET).get("Versions", [])
            for version in listed:
                if version["VersionId"] not in self.seen:
                    self.seen.add(version["VersionId"])
                    self._process(version)

    def _process(self, version: dict[str, Any]) -> None:
        event = load_event("s3-put.json")
        obj = event["Records"][0]["s3"]["object"]
        obj.update(
            key=encode_key(version["Key"]),
            size=version["Size"],
            eTag=version["ETag"].strip('"'),
            versionId=version["VersionId"],
        )
        submitter.lambda_handler(event, FakeLambdaContext())
        if "never" in version["Key"]:
            return
        from async_pipeline.inference_ids import of_version

        iid = of_version(INPUT_BUCKET, version["Key"], version["VersionId"])
        succeeded = "bad" not in version["Key"]
        job = self.world.job(iid)
        assert job is not None
        if succeeded:
            _, key = s3_uris.parse_uri(job["outputLocation"])
            self.world.s3.put_object(Bucket=OUTPUT_BUCKET, Key=key, Body=b"0.8231452\n")
        handler = success_handler if succeeded else error_handler
        handler.lambda_handler(self.world.notification_event(iid, succeeded=succeeded), FakeLambdaContext())


@pytest.fixture
def pipeline(world: World) -> Iterator[Pipeline]:
    deploy_outputs(world, STACK)
    running = Pipeline(world)
    running.start()
    yield running
    running.stopped.set()
    running.join(5)


def _files(folder: Path, *names: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"1.0,2.0,3.0,4.0\n")
    return [str(folder / name) for name in names]


def _submit(*args: str) -> Any:
    return CliRunner().invoke(
        main, ["--stack-name", STACK, "--region", "us-east-1", "submit", *args], catch_exceptions=False
    )


def test_wait_prints_each_result_downloads_outputs_and_exits_0(
    world: World, pipeline: Pipeline, tmp_path: Path
) -> None:
    paths = _files(tmp_path / "in", "one.csv", "two.csv")
    out = tmp_path / "results"
    result = _submit(
        *paths, "--prefix", "batch/", "--metadata", "owner=ana", "--wait", "--timeout", "20", "--output", str(out)
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("COMPLETED") == 2 and "0.8231452" in result.output
    assert "2 completed, 0 failed, 0 without a result" in result.output
    assert (out / "one.csv.out").read_bytes() == b"0.8231452\n" and (out / "two.csv.out").exists()
    # The metadata went with the files: on the jobs, and so in their events.
    [event, _] = world.results()
    assert event["detail"]["metadata"] == {"owner": "ana"}


def test_a_failed_file_exits_3_and_shows_its_whole_reason(world: World, pipeline: Pipeline, tmp_path: Path) -> None:
    paths = _files(tmp_path, "good.csv", "bad.csv")
    result = _submit(*paths, "--wait", "--timeout", "20")
    assert result.exit_code == job_waits.ExitCode.FAILED == 3, result.output
    assert "ClientError: Received client error (415) from model." in result.output
    assert "1 completed, 1 failed" in result.output


def test_a_file_without_a_result_in_time_exits_4(world: World, pipeline: Pipeline, tmp_path: Path) -> None:
    paths = _files(tmp_path, "fine.csv", "never.csv")
    result = _submit(*paths, "--wait", "--timeout", "2")
    assert result.exit_code == job_waits.ExitCode.TIMED_OUT == 4, result.output
    assert "1 completed, 0 failed, 1 without a result after 2 s" in result.output


def test_output_needs_wait(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["submit", str(tmp_path), "--output", str(tmp_path)])
    assert result.exit_code == 2 and "--output needs --wait" in result.output


@pytest.mark.parametrize(("waiting", "failed", "code"), [(0, 0, 0), (0, 2, 3), (1, 0, 4), (1, 1, 4)])
def test_exit_codes(waiting: int, failed: int, code: int) -> None:
    assert job_waits.exit_code(waiting, failed) == code


@pytest.mark.parametrize(
    ("key", "prefix", "name"),
    [
        ("batch/one.csv", "batch/", "one.csv.out"),
        ("drop/sub/two.csv", "", "drop/sub/two.csv.out"),
        ("x/../../etc/passwd", "x/", "etc/passwd.out"),
    ],
)
def test_downloads_are_named_after_the_input_file(key: str, prefix: str, name: str) -> None:
    assert local_name(key, prefix) == name


def test_long_text_is_never_cut_mid_word() -> None:
    reason = "ClientError: Received client error (415) from model with Exception: unparsable CSV"
    shown = cut(reason, 60)
    assert len(shown) <= 60 and shown.endswith("…")
    assert reason.startswith(shown[:-1]) and reason[len(shown) - 1] == " "


@pytest.mark.parametrize(
    ("metadata", "why"),
    [
        ("note=café", "only ASCII can be sent"),
        ("custom-attributes=" + "x" * 1025, "1025 characters"),
        ("custom-attributes= padded", "' ' at position 0"),
        ("big=" + "x" * 2046, "2049 bytes of keys and values; S3 takes at most 2048"),
    ],
)
def test_metadata_s3_or_the_endpoint_would_refuse_is_refused_before_any_upload(
    tmp_path: Path, metadata: str, why: str
) -> None:
    """Exit 2 with the reason, not "cannot reach the stack's AWS APIs" (botocore's ParamValidationError) nor a job
    that FAILS later. No stack is needed: nothing is uploaded."""
    [path] = _files(tmp_path, "a.csv")
    result = _submit(path, "--metadata", metadata)
    assert result.exit_code == 2, result.output
    assert why in result.output and "cannot reach" not in result.output


def test_two_files_on_one_key_are_refused(tmp_path: Path) -> None:
    from asyncinfer import uploads

    first, second = _files(tmp_path / "a", "x.csv")[0], _files(tmp_path / "b", "x.csv")[0]
    with pytest.raises(uploads.InvalidUploads, match=r"would both be uploaded as x\.csv"):
        uploads.collect([Path(first), Path(second)])
    assert [u.key for u in uploads.collect([Path(first), Path(first)])] == ["x.csv"]  # the same file twice: once
    result = _submit(first, second)
    assert result.exit_code == 2 and "would both be uploaded as x.csv" in result.output


def test_a_request_botocore_refuses_is_an_input_error_not_a_network_one() -> None:
    import click
    from botocore.exceptions import ParamValidationError

    from asyncinfer.cli.app import errors

    with pytest.raises(click.UsageError, match="the request cannot be made"), errors():
        raise ParamValidationError(report="Invalid type for parameter Metadata")


def test_keys_the_stack_would_never_process_are_refused_before_upload(world: World, tmp_path: Path) -> None:
    deploy_outputs(world, STACK, {"InputPrefix": "incoming/", "InputSuffix": ".csv"})
    [path] = _files(tmp_path, "a.csv")
    result = _submit(path, "--wait", "--timeout", "1")
    assert result.exit_code == 2 and "a.csv would never trigger an inference" in result.output, result.output
    assert "'incoming/'" in result.output and "use --prefix" in result.output
    assert "Versions" not in world.s3.list_object_versions(Bucket=INPUT_BUCKET)  # nothing uploaded


def test_an_output_that_cannot_be_saved_is_reported_and_the_wait_goes_on(
    world: World, pipeline: Pipeline, tmp_path: Path
) -> None:
    paths = _files(tmp_path / "in", "one.csv", "two.csv")
    out = tmp_path / "results"
    (out / "one.csv.out").mkdir(parents=True)  # a folder where the download should go
    result = _submit(*paths, "--wait", "--timeout", "20", "--output", str(out))
    assert result.exit_code == job_waits.ExitCode.UNSAVED == 1, result.output
    assert "not downloaded" in result.output and "1 output(s) not downloaded" in result.output
    assert (out / "two.csv.out").read_bytes() == b"0.8231452\n"

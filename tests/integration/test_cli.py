"""The asyncinfer command as a user runs it: a detached local stack, its commands, and one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from asyncinfer.cli import main
from asyncinfer.model import demo
from tests.support import free_port, free_port_block

ASYNCINFER = [sys.executable, "-m", "asyncinfer.cli"]


def run(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ASYNCINFER, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False)


def run_here(*args: str, env: dict[str, str]) -> Result:
    """The command in this process (CliRunner), in the same environment as :func:`run` (the state folder, no AWS_*
    variables): for commands whose output a test reads, where a new process would add ~4 s of importing and prove
    nothing more (the process itself, its exit status and one-line errors, are what the :func:`run` tests prove)."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    return CliRunner(mix_stderr=False).invoke(main, list(args), env={**unset, **env})


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    state = tmp_path_factory.mktemp("cli-state")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**clean, "ASYNCINFER_STATE_DIR": str(state), "COLUMNS": "200", "AWS_EC2_METADATA_DISABLED": "true"}


def test_commands_without_a_stack_say_so(env: dict[str, str]) -> None:
    assert_one_line_error(run("jobs", env=env), "no local stack is up")
    assert_one_line_error(run("local", "down", env=env), "no local stack is up")


def test_unknown_deployed_stack_is_one_line(env: dict[str, str]) -> None:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(port=port, verbose=False)
    server.start()
    try:
        aws = {
            **env,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
        }
        result = run("--stack-name", "no-such-stack", "--region", "us-east-1", "jobs", env=aws)
        assert_one_line_error(result, "stack no-such-stack: Stack with id no-such-stack does not exist")
    finally:
        server.stop()


def test_port_in_use_is_one_line(env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_one_line_error(run("local", "up", "--port", str(port), env=env), f"port {port} (AWS APIs) is in use")


@pytest.fixture(scope="module")
def detached(env: dict[str, str]) -> Iterator[dict[str, str]]:
    port = free_port_block()
    started = run("local", "up", "--detach", "--port", str(port), env=env)
    assert started.returncode == 0, started.stderr + started.stdout
    try:
        yield env
    finally:
        assert run_here("local", "down", env=env).exit_code == 0


def test_detached_stack_writes_its_state(detached: dict[str, str]) -> None:
    state = json.loads((Path(detached["ASYNCINFER_STATE_DIR"]) / "local.json").read_text())
    assert state["aws_endpoint_url"].startswith("http://127.0.0.1:")
    assert state["sagemaker_runtime_url"].startswith("http://127.0.0.1:")
    assert state["region"] == "us-east-1"
    assert {"InputBucketName", "ResultsQueueUrl", "EndpointName"} <= set(state["outputs"])
    assert_one_line_error(run("local", "up", "--detach", env=detached), "a local stack is already up")


def test_submit_watch_and_jobs(detached: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "one row.csv").write_bytes(demo.make_csv_payload(1))
    (folder / "bad.csv").write_bytes(b"not,numbers,at,all,here,x\n")
    submitted = run("submit", str(folder), env=detached)
    assert submitted.returncode == 0, submitted.stderr
    assert "uploaded 2 file(s)" in submitted.stdout
    watched = run("watch", "--expect", "2", "--timeout", "60", env=detached)
    assert watched.returncode == 0, watched.stderr
    assert "completed" in watched.stdout and "1" in watched.stdout
    listed = run_here("jobs", "--json", env=detached)
    assert listed.exit_code == 0, listed.stderr
    jobs = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(job["status"] for job in jobs) == ["COMPLETED", "FAILED"]
    assert {job["inputLocation"].rsplit("/", 1)[1] for job in jobs} == {"one row.csv", "bad.csv"}
    failed = run_here("jobs", "--status", "FAILED", "--json", env=detached)
    assert [json.loads(line)["status"] for line in failed.stdout.splitlines()] == ["FAILED"]
    # The endpoint's view, from the AWS APIs only (its text is unit-tested): the template's first instance and
    # the jobs by status.
    status = json.loads(run_here("status", "--json", env=detached).stdout)
    assert (status["status"], status["current_instances"], status["min_instances"]) == ("InService", 1, 0)
    assert status["jobs"] == {"COMPLETED": 1, "FAILED": 1}


def test_submit_wait(detached: dict[str, str], tmp_path: Path) -> None:
    """``submit --wait --output`` on the local stack: each result printed, outputs downloaded named after their
    files, exit 3 for the one the model refuses. (``status`` is the same glue on any target: tests/unit and e2e.)"""
    folder = tmp_path / "waited"
    folder.mkdir()
    (folder / "two rows.csv").write_bytes(demo.make_csv_payload(2))
    (folder / "refused.csv").write_bytes(b"not,numbers,at,all,here,x\n")
    out = tmp_path / "results"
    waited = run(
        "submit", str(folder), "--prefix", "w/", "--metadata", "owner=cli", "--wait", "--timeout", "60",
        "--output", str(out), env=detached,
    )  # fmt: skip
    assert waited.returncode == 3, waited.stderr + waited.stdout
    assert "1 completed, 1 failed, 0 without a result" in waited.stdout
    assert "Received client error (415)" in waited.stdout
    assert [p.name for p in (out / "waited").iterdir()] == ["two rows.csv.out"]
    assert len((out / "waited" / "two rows.csv.out").read_text().split()) == 2


def test_missing_file_is_one_line(detached: dict[str, str]) -> None:
    assert_one_line_error(run("submit", "/no/such/file.csv", env=detached), "no such file or folder: /no/such/file.csv")


def test_console_script_is_installed() -> None:
    assert shutil.which("asyncinfer", path=str(Path(sys.executable).parent)) is not None

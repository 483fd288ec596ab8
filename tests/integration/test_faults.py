"""Fault injection for the local stack: each fault strikes, the pieces behave as documented, and the soak's audit
reads dead letters and reasons right. The 150-file soak with every fault at once is tests/integration/test_soak.py.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from async_pipeline.inference_ids import of_version
from async_pipeline.notifications import STATUS_FAILED, InferenceNotification

from asyncinfer import dead_letters, result_summary
from asyncinfer.faults import CATALOGUE, FaultInjector, FaultPlan, FaultSpecError
from asyncinfer.faults.worker import terminal_job_write
from asyncinfer.local.chaos_proxy import ChaosProxy
from asyncinfer.local.lambda_environment import InvocationResult
from asyncinfer.local.lambda_runtime import AsyncInvoker
from asyncinfer.local.lambda_wiring import FunctionSpec
from tests.support import ROOT, free_port, free_port_block

ASYNCINFER = [sys.executable, "-m", "asyncinfer.cli"]

# --- the catalogue and the plan ----------------------------------------------------------------------------------


def test_plan_parses_all_a_list_and_rates() -> None:
    assert set(FaultPlan.parse("all").rates) == set(CATALOGUE)
    plan = FaultPlan.parse("dup-s3, throttle=0.5", seed=7)
    assert plan.rates == {"dup-s3": CATALOGUE["dup-s3"].rate, "throttle": 0.5} and plan.seed == 7
    assert FaultPlan.parse("all,throttle=0").rate("throttle") == 0 and not FaultPlan.parse("none")
    assert FaultPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    for bad in ("nonsense", "throttle=2", "throttle=x", "all=0.1"):
        with pytest.raises(FaultSpecError):
            FaultPlan.parse(bad)


def test_draws_are_reproducible_per_fault_and_seed() -> None:
    def hits(seed: int) -> list[bool]:
        injector = FaultInjector(FaultPlan.parse("throttle=0.3,dup-s3=0.3", seed))
        return [injector.fire("throttle") for _ in range(200)]

    assert hits(1) == hits(1) and hits(1) != hits(2)
    injector = FaultInjector(FaultPlan.parse("throttle=0.3", 1))
    # Draws of one fault do not move another fault's sequence.
    for _ in range(50):
        injector.fire("dup-s3")
    assert [injector.fire("throttle") for _ in range(200)] == hits(1)
    assert injector.counts()["throttle"] == sum(hits(1))


def test_only_a_terminal_job_write_counts_for_crash_after_job_write() -> None:
    finish = {
        "UpdateExpression": "SET #s = :status, eventPending = :true, publishLeaseUntil = :lease",
        "ExpressionAttributeValues": {":status": {"S": "COMPLETED"}},
    }
    assert terminal_job_write(finish)
    assert not terminal_job_write({**finish, "ExpressionAttributeValues": {":status": {"S": "SUBMITTED"}}})
    assert not terminal_job_write({"UpdateExpression": "SET publishLeaseUntil = :lease"})


def test_the_fault_package_imports_only_the_standard_library() -> None:
    """The Lambda worker processes import it before the handler: boto3 and the emulator must not come with it."""
    code = (
        "import sys, asyncinfer.faults; "
        "heavy = [m for m in ('boto3', 'botocore', 'asyncinfer.local.endpoint.emulator') if m in sys.modules]; "
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_bad_fault_names_are_one_line_errors() -> None:
    for args in (["soak", "--faults", "gremlins"], ["local", "up", "--faults", "throttle=3"]):
        done = subprocess.run([*ASYNCINFER, *args], capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert "--faults" in done.stderr


# --- the chaos proxy in front of the model container ------------------------------------------------------------


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(b"")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(b"0.5\n")


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _post(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", "/invocations", body=b"1,2,3", headers={"Content-Type": "text/csv"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_chaos_proxy_passes_through_answers_500_and_stalls(upstream: str) -> None:
    clean = ChaosProxy(upstream, FaultInjector(FaultPlan()))
    failing = ChaosProxy(upstream, FaultInjector(FaultPlan.parse("container-5xx=1")))
    stalling = ChaosProxy(upstream, FaultInjector(FaultPlan.parse("container-timeout=1")), stall_seconds=1.0)
    try:
        assert _post(clean.start()) == (200, b"0.5\n")
        status, body = _post(failing.start())
        assert status == 500 and b"injected fault" in body
        with pytest.raises(TimeoutError):
            _post(stalling.start(), timeout=0.3)
        assert failing.injector.counts() == {"container-5xx": 1}
        assert stalling.injector.counts() == {"container-timeout": 1}
    finally:
        for proxy in (clean, failing, stalling):
            proxy.stop()


def test_chaos_proxy_dies_refuses_connections_and_comes_back(upstream: str) -> None:
    proxy = ChaosProxy(upstream, FaultInjector(FaultPlan.parse("container-down=1")))
    url = proxy.start()
    try:
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            _post(url)  # the call in flight is cut
        proxy.injector = FaultInjector(FaultPlan())  # it must come back healthy, not die again
        time.sleep(0.5)
        with pytest.raises(ConnectionRefusedError):
            _post(url)
        deadline = time.time() + 10
        while True:
            try:
                assert _post(url) == (200, b"0.5\n")
                break
            except ConnectionRefusedError:
                assert time.time() < deadline, "the container did not come back"
                time.sleep(0.2)
    finally:
        proxy.stop()


# --- the Lambda runtime --------------------------------------------------------------------------------------------


class _CrashingOnce:
    def __init__(self, timeout: int) -> None:
        self.spec = FunctionSpec("Fn", "fn", "arn:aws:lambda:us-east-1:123456789012:function:fn", ".", [], "h.h", {})
        self.spec.timeout = timeout
        self.concurrency = 1
        self.calls: list[float] = []

    def invoke(self, event: Any, request_id: str) -> InvocationResult:
        self.calls.append(time.monotonic())
        if len(self.calls) == 1:
            return InvocationResult(False, error_type="Runtime.ExitError", error_message="Runtime exited")
        return InvocationResult(True)


def test_a_crashed_invocation_is_retried_only_after_its_leases_ran_out() -> None:
    runner = _CrashingOnce(timeout=1)
    invoker = AsyncInvoker({"Fn": runner}, sqs=None, retry_delays=(0.1, 0.1))  # type: ignore[dict-item]
    try:
        invoker.submit("Fn", {})
        assert invoker.wait_idle(15)
        first, second = runner.calls
        # The crashed invocation's leases last until its deadline (timeout) + 2 s: the retry comes after.
        assert second - first >= runner.spec.timeout + 3.0 - 0.05
    finally:
        invoker.close()


# --- moto, which the local stack's DynamoDB is -----------------------------------------------------------------------


def test_conditional_writes_of_one_item_are_atomic_as_in_dynamodb() -> None:
    """Found by the soak: moto let two concurrent conditional updates of a job both succeed (two result events)."""
    from moto.server import ThreadedMotoServer

    from asyncinfer.local import moto_patches

    moto_patches.apply()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server.start()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: this made the race show 1 time in 6
    try:
        session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
        url = f"http://127.0.0.1:{port}"
        dynamodb = session.client("dynamodb", endpoint_url=url)
        dynamodb.create_table(
            TableName="jobs",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        clients = [session.client("dynamodb", endpoint_url=url) for _ in range(8)]
        doubled = 0
        for item in range(30):
            dynamodb.put_item(TableName="jobs", Item={"k": {"S": str(item)}, "s": {"S": "SUBMITTED"}})
            wins: list[int] = []
            barrier = threading.Barrier(len(clients))

            def finish(client: Any, item: int = item, wins: list[int] = wins, barrier: Any = barrier) -> None:
                barrier.wait()
                try:
                    client.update_item(
                        TableName="jobs",
                        Key={"k": {"S": str(item)}},
                        UpdateExpression="SET s = :done",
                        ConditionExpression="s = :open",
                        ExpressionAttributeValues={":done": {"S": "COMPLETED"}, ":open": {"S": "SUBMITTED"}},
                    )
                    wins.append(1)
                except client.exceptions.ConditionalCheckFailedException:
                    pass

            threads = [threading.Thread(target=finish, args=(c,)) for c in clients]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            doubled += len(wins) > 1
            assert wins, "one of them must win"
        assert doubled == 0, f"{doubled} of 30 items were finished twice"
    finally:
        sys.setswitchinterval(interval)
        server.stop()


# --- input-changed: the user's key changes while the request waits ---------------------------------------------------


def test_input_changed_overwrites_or_deletes_the_key_of_an_accepted_request_once() -> None:
    from async_pipeline.jobs import Job, JobStatus
    from moto import mock_aws

    from asyncinfer.faults.inputs import MARK, InputChanges

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="inputs")
        s3.put_bucket_versioning(Bucket="inputs", VersioningConfiguration={"Status": "Enabled"})
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="jobs",
            KeySchema=[{"AttributeName": "inferenceId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "inferenceId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        original = b"1.0,2.0,3.0\n4.0,5.0,6.0"
        ids: dict[str, str] = {}
        for n in range(24):
            key = f"k/{n:02d} é.csv"
            version = s3.put_object(Bucket="inputs", Key=key, Body=original)["VersionId"]
            ids[key] = of_version("inputs", key, version)
            job = Job(inference_id=ids[key], status=JobStatus.SUBMITTING, input_location=f"s3://inputs/{key}")
            dynamodb.put_item(TableName="jobs", Item=job.to_item())
        injector = FaultInjector(FaultPlan.parse("input-changed=1", 4))
        changes = InputChanges(injector, s3, dynamodb, "jobs")
        for inference_id in [*ids.values(), None, "not-a-job"]:
            changes.maybe_change(inference_id)
        counts = injector.counts()
        assert counts["input-changed"] == 24 == counts["input-changed:overwrites"] + counts["input-changed:deletes"]
        assert counts["input-changed:overwrites"] > 0 and counts["input-changed:deletes"] > 0
        for key in ids:
            listed = s3.list_object_versions(Bucket="inputs", Prefix=key)
            latest = [v for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []) if v["IsLatest"]]
            if listed.get("DeleteMarkers"):
                assert latest[0] in listed["DeleteMarkers"]
                continue
            now = s3.get_object(Bucket="inputs", Key=key)
            body = now["Body"].read()
            assert body != original and now["Metadata"] == {MARK: "input-changed"}
            assert [line.count(b",") for line in body.splitlines()] == [2, 2]  # the same shape: still valid input
        # The request of a version the fault wrote is left alone: no chain of changes.
        before = injector.counts()
        for inference_id in ids.values():
            changes.maybe_change(inference_id)
        assert injector.counts() == before


@pytest.mark.slow
def test_the_version_that_triggered_the_job_is_the_version_inferred(tmp_path: Path) -> None:
    """Every accepted request's input key is overwritten with other rows or deleted before the request runs
    (``input-changed`` at rate 1), small and large files alike (inline and staged). Every completed output is
    still the model's prediction for its own version's bytes, and no request fails for want of its input. (With
    InputLocation naming the user's key, as before, the audit finds the overwritten ones predicted from the new
    rows and the deleted ones failed: 'wrong inputs'.)"""
    from asyncinfer import soak

    settings = soak.SoakSettings(
        files=12, faults=FaultPlan.parse("input-changed=1", 11), seed=11, reject_every=0, large_every=3
    )
    result = soak.run(settings, root=ROOT, state_dir=tmp_path)
    summary = json.dumps({k: v for k, v in result.to_json().items() if k != "dead_letters"}, indent=1)
    assert result.violations == [], summary
    counts = result.fault_counts
    assert counts["input-changed:overwrites"] > 0 and counts["input-changed:deletes"] > 0, summary
    # Each overwrite is a new version of its key: a file of its own, also accounted for and checked.
    assert result.inputs == 12 + counts["input-changed:overwrites"] == result.accounted, summary
    assert result.completed == result.inputs and result.wrong_inputs == 0, summary
    assert result.outputs_checked == result.completed, summary


# --- the audit's reading of dead letters ---------------------------------------------------------------------------


def test_dead_letters_name_their_inputs_and_reasons() -> None:
    s3_event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "eventTime": "2026-11-24T12:00:00.000Z",
                "s3": {
                    "bucket": {"name": "in"},
                    "object": {"key": "a+b%C3%A9.csv", "size": 3, "versionId": "v1", "sequencer": "0A"},
                },
            }
        ]
    }
    lambda_record = {
        "requestContext": {
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:stack-SubmitterFunction:$LATEST",
            "condition": "RetriesExhausted",
        },
        "requestPayload": s3_event,
        "responsePayload": {
            "errorType": "SubmissionFailed",
            "errorMessage": "1 record(s) failed: record 0 (s3://in/a bé.csv): InvokeEndpointAsync s3://in/a bé.csv: "
            "ServiceUnavailable down",
        },
    }
    entry = dead_letters.parse("m1", json.dumps(lambda_record))
    assert entry.kind == "lambda" and entry.source == "stack-SubmitterFunction"
    assert entry.input_uris == ["s3://in/a bé.csv"]
    assert entry.inference_ids == [of_version("in", "a bé.csv", "v1")]
    assert result_summary.normalize_reason(entry.reason) == (
        "RetriesExhausted: SubmissionFailed: N record(s) failed: record N (s3://...): InvokeEndpointAsync s3://...: "
        "ServiceUnavailable down"
    )
    notification = InferenceNotification(
        inference_id="abc",
        invocation_status=STATUS_FAILED,
        endpoint_name="ep",
        input_location="s3://in/x.csv",
        failure_reason="boom",
        received_time="2026-11-24T12:00:00.000Z",
        event_time="2026-11-24T12:00:01.000Z",
        aws_region="us-east-1",
    ).to_message()
    sns = {
        "Type": "Notification",
        "TopicArn": "arn:aws:sns:us-east-1:1:stack-ErrorTopic",
        "Message": json.dumps(notification),
    }
    entry = dead_letters.parse("m2", json.dumps(sns))
    assert (entry.kind, entry.source) == ("sns", "stack-ErrorTopic")
    assert entry.inference_ids == ["abc"]
    assert dead_letters.parse("m3", "not json").kind == "unknown"


# --- each fault strikes on the local stack, and the promise holds --------------------------------------------------

# High rates, and a seed whose draws strike each of these within the first ten opportunities.
FOCUSED = (
    "dup-s3=0.5,dup-sns=0.5,late-delivery=0.3,container-5xx=0.15,container-timeout=0.1,container-down=0.1,"
    "throttle=0.3,crash-after-invoke=0.2,crash-after-job-write=0.2,ttl-expiry=0.1,output-write-refused=0.1,"
    "input-changed=0.2"
)
FOCUSED_SEED = 30


@pytest.mark.slow
def test_each_fault_strikes_on_a_stack_started_with_faults(tmp_path: Path) -> None:
    """Every fault but the long endpoint outage, at high rates, on a stack started with ``local up --faults``, and
    the soak command run against it (``--running``): table, JSON report, exit status.

    The stack is a process of its own, started as a user starts it; ``soak --running`` and ``local down`` run in this
    process (CliRunner, same state folder), which has them imported already: a new process would spend ~4 s of the
    test importing (the commands' one-line errors in a process of their own are test_bad_fault_names_... above)."""
    from click.testing import CliRunner

    from asyncinfer.cli import main

    # COLUMNS, not a set console width: the console reads it at each use, and a width set stays set for later tests.
    env = {**os.environ, "ASYNCINFER_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "160"}

    def start(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ASYNCINFER, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, check=False
        )

    def run(*args: str) -> Any:
        return CliRunner(mix_stderr=False).invoke(main, list(args), env=env)

    started = start(
        "local", "up", "--detach", "--port", str(free_port_block()), "--faults", FOCUSED, "--fault-seed",
        str(FOCUSED_SEED), "--function-timeout", "5",
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        state = json.loads((tmp_path / "state" / "local.json").read_text(encoding="utf-8"))
        assert FaultPlan.from_json(state["faults"]) == FaultPlan.parse(FOCUSED, FOCUSED_SEED)
        report = tmp_path / "report.json"
        done = run("soak", "--running", "--files", "40", "--report", str(report))
    finally:
        run("local", "down")
    assert done.exit_code == 0, done.stdout[-4000:] + done.stderr[-4000:] + repr(done.exception)
    assert "promise kept" in done.stdout and "duplicates" in done.stdout
    result = json.loads(report.read_text(encoding="utf-8"))
    assert result["ok"] and result["lost"] == 0 and result["duplicates"] == 0
    assert result["accounted"] == result["inputs"] >= 40  # input-changed's overwrites are inputs of their own
    counts = result["fault_counts"]
    expected = set(CATALOGUE) - {"endpoint-outage"}
    silent = [name for name in expected if not counts.get(name) and not counts.get(f"{name}:episodes")]
    assert silent == [], f"faults that never struck: {silent}: {counts}"

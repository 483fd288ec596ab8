"""Drive a soak: start a local stack with the faults (or use the one that is up), upload the files while keeping
a bounded number in flight, wait until each is accounted for and the stack is quiet, then judge the snapshot."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from async_pipeline import inference_ids, s3_uris

from asyncinfer import demo_inputs, target
from asyncinfer.faults import FaultPlan, stack_parameters
from asyncinfer.local.ports import StackPorts
from asyncinfer.local.stack import FAULT_COUNTS_FILE, LocalConfig, RunningStack
from asyncinfer.soak import snapshot
from asyncinfer.soak.collectors import DeadLetterReader, EventCollector
from asyncinfer.soak.judgement import Audit, judge

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass
class SoakSettings:
    files: int = 300
    faults: FaultPlan = field(default_factory=lambda: FaultPlan.parse("all"))
    seed: int = 0
    reject_every: int = 10  # every 10th file is one the pipeline or the model rejects
    large_every: int = 25  # every 25th file is over 128,000 bytes: staged for the endpoint instead of sent inline
    in_flight: int = 64  # uploaded but not yet accounted for: the uploader waits beyond this
    stall_timeout: float = 180.0  # give up when no input has been accounted for this long
    settle_seconds: float = 3.0  # after the last input: quiet this long before the audit (late duplicates)
    function_timeout: int | None = 8  # own stack: every function's Timeout (leases, crash retries); None: template's
    concurrency: int = 4
    prefix: str | None = None  # key prefix of this run's inputs; default soak/<timestamp>/


def own_stack_config(root: Path, state_dir: Path, settings: SoakSettings, base_port: int | None) -> LocalConfig:
    ports = StackPorts.free() if base_port is None else StackPorts.from_base(base_port)
    return LocalConfig(
        root=root,
        state_dir=state_dir,
        ports=ports,
        stack_name="asyncinfer-soak",
        parameters=stack_parameters(settings.faults, {}),
        concurrency=settings.concurrency,
        faults=settings.faults,
        function_timeout=settings.function_timeout,
    )


@contextmanager
def _stack(
    running: bool, root: Path, state_dir: Path, settings: SoakSettings, base_port: int | None
) -> Iterator[tuple[target.Target, RunningStack | None]]:
    if running:
        yield target.local(state_dir), None
        return
    stack = RunningStack(own_stack_config(root, state_dir, settings, base_port))
    stack.start()
    try:
        yield target.local(state_dir), stack
    finally:
        stack.stop()


Progress = Callable[[str, int, int], None]  # (phase, done, total)


@contextmanager
def _stack_logs(state_dir: Path) -> Iterator[None]:
    """The local stack's own log lines (the emulator warns of every refused write, by design under faults) go to
    ``logs/stack.log`` in the state folder rather than to the terminal while the soak runs."""
    path = state_dir / "logs" / "stack.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    package = logging.getLogger("asyncinfer")
    previous = package.propagate
    package.addHandler(handler)
    package.propagate = False
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.propagate = previous
        handler.close()


def run(
    settings: SoakSettings,
    *,
    root: Path,
    state_dir: Path,
    running: bool = False,
    base_port: int | None = None,
    progress: Progress | None = None,
) -> Audit:
    """Start a local stack with the faults (or use the one that is up), drive the files through it, audit."""
    started = time.time()
    with _stack_logs(state_dir), _stack(running, root, state_dir, settings, base_port) as (stack, own):
        result = _drive(stack, own, settings, state_dir, progress or (lambda *_: None))
    result.duration_seconds = time.time() - started
    result.faults = settings.faults.describe()
    result.seed = settings.faults.seed
    return result


def _drive(
    stack: target.Target, own: RunningStack | None, settings: SoakSettings, state_dir: Path, progress: Progress
) -> Audit:
    s3: S3Client = stack.client("s3")
    bucket = stack.outputs["InputBucketName"]
    prefix = settings.prefix or f"soak/{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 1_000_000:06d}/"
    files = demo_inputs.demo_files(
        settings.files, seed=settings.seed, reject_every=settings.reject_every, large_every=settings.large_every
    )
    since = time.time()
    collector = EventCollector(stack)
    letters = DeadLetterReader(stack)
    uploads: list[snapshot.Upload] = []
    try:
        last_progress = time.time()
        accounted_before = -1
        next_dlq_poll = next_versions_check = 0.0
        index = 0
        first_upload: float | None = None
        upload_done: float | None = None
        finished_at = time.time()
        while True:
            accounted = {u.inference_id for u in uploads} & (collector.seen() | letters.inference_ids())
            while index < len(files) and len(uploads) - len(accounted) < settings.in_flight:
                file = files[index]
                key = prefix + file.name
                put = s3.put_object(Bucket=bucket, Key=key, Body=file.body, Metadata=file.metadata)
                version: str | None = put.get("VersionId")
                version = None if version in (None, "null") else version
                now = time.time()
                first_upload = first_upload or now
                uri, inference_id = s3_uris.format_uri(bucket, key), inference_ids.of_version(bucket, key, version)
                uploads.append(
                    snapshot.Upload(key, uri, version, inference_id, file.expected_status, now, file.metadata)
                )
                index += 1
            if index == len(files) and upload_done is None:
                upload_done = time.time()
            if len(accounted) != accounted_before:
                accounted_before, last_progress, finished_at = len(accounted), time.time(), time.time()
                progress("accounted", len(accounted), len(files))
            if index == len(files) and len(accounted) == len(files) and time.time() >= next_versions_check:
                # Versions the faults wrote over the uploads (input-changed) are inputs too: wait for them as well.
                others = snapshot.input_versions(s3, bucket, prefix).keys() - {u.inference_id for u in uploads}
                if not others - (collector.seen() | letters.inference_ids()):
                    break
                next_versions_check = time.time() + 1.0
            if time.time() - last_progress > settings.stall_timeout:
                break
            if time.time() >= next_dlq_poll:
                letters.poll()
                next_dlq_poll = time.time() + 2.0
            time.sleep(0.2)
        progress("settling", len(accounted), len(files))
        quiet = _settle(own, settings)
        letters.poll()
    finally:
        try:
            collector.stop()
        finally:
            letters.give_back()
    predict = container_predictor(state_dir)
    result = judge(snapshot.read(stack, uploads, prefix, collector.by_inference(), letters.entries, since, predict))
    if not quiet:
        result.violations.append(
            "the stack was still busy when the settling time ran out: a late delivery could have been missed"
        )
    result.redelivered_events = collector.redelivered
    result.upload_seconds = (upload_done or time.time()) - (first_upload or since)
    result.processing_seconds = finished_at - (first_upload or since)
    if result.processing_seconds > 0:
        result.throughput_files_per_second = result.accounted / result.processing_seconds
    if own is not None:
        result.fault_counts = own.fault_counts()
    else:
        counts = state_dir / FAULT_COUNTS_FILE
        if counts.exists():
            result.fault_counts = json.loads(counts.read_text(encoding="utf-8"))
    return result


def container_predictor(state_dir: Path, accept: str = "text/csv") -> snapshot.Predictor | None:
    """The model container of the local stack in ``state_dir`` as the audit's reference: what it answers for a
    payload (the container itself, not the chaos proxy before it). None when the state names no container."""
    from asyncinfer.local.endpoint.container import ContainerCall
    from asyncinfer.local.stack import read_state

    url = read_state(state_dir).get("model_container_url")
    if not url:
        return None

    def predict(payload: bytes, content_type: str) -> bytes | None:
        reply = ContainerCall(str(url)).invoke(payload, {"Content-Type": content_type, "Accept": accept}, 60.0)
        return reply.body if 200 <= reply.status < 300 else None

    return predict


def _settle(own: RunningStack | None, settings: SoakSettings) -> bool:
    """Wait until nothing has moved for ``settle_seconds`` (own stack), so that a late duplicate would be seen; on a
    stack run elsewhere, wait past a crashed invocation's retry (function Timeout + 3 s) instead. False if the own
    stack never went quiet."""
    if own is None:
        time.sleep(max(settings.settle_seconds, 2.0 * ((settings.function_timeout or 30) + 3)))
        return True
    functions = own.stack.functions.values() if own.stack is not None else []
    timeout = max((f.timeout for f in functions), default=30)
    deadline = time.time() + 4 * (timeout + 3) + 30
    quiet_since = time.time()
    while time.time() < deadline:
        if own.busy():
            quiet_since = time.time()
        elif time.time() - quiet_since >= settings.settle_seconds:
            return True
        time.sleep(0.2)
    return False

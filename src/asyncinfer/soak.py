"""Soak: N files through the local stack with faults on, then an audit of the pipeline's promise.

The promise: every file dropped into the input bucket ends in exactly one terminal state (COMPLETED, or FAILED with
a reason, or a dead-letter entry with a reason) and produces exactly one result event, however the platform
redelivers, throttles or fails.

The audit reads only what the stack itself holds: the input bucket (every version under the run's prefix), the jobs
table, the result events (drained from the results queue all along the run), the dead-letter queue (read, then given
back untouched for ``asyncinfer redrive``) and the output bucket. Per input (object version → its inference id):

* accounted: one terminal job with exactly one result event whose status is the job's, or a dead-letter entry
  that names the input (its reason says why: the job may then be open or its event owed);
* duplicate: more than one result event (distinct EventBridge events; SQS redelivering one message is not one);
* lost: neither a terminal job with its event nor a dead-letter entry;
* contradiction: an event whose status or input differs from its job's, or an event with no job.

Orphan outputs (objects in the output bucket no job points to) are reported, not counted against the promise: a
crash after InvokeEndpointAsync and before the job write makes the retry invoke the endpoint a second time (with the
same InferenceId), and the later of the two results has no job pointing to it. Dangling locations (a job or event
pointing to an object that is not there) are violations, except a failure object the endpoint could not write
(its reason says so): the job keeps the FailureLocation InvokeEndpointAsync announced, since the notification then
names none.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from async_pipeline import inference_ids, notifications, s3_events, sns_events
from async_pipeline.jobs import TERMINAL, Job
from async_pipeline.result_events import DETAIL_TYPES, SOURCE

from asyncinfer import demo_inputs, job_records, target
from asyncinfer.faults import CATALOGUE, FaultPlan, stack_parameters
from asyncinfer.local.failure_reasons import failure_object_missing_explained
from asyncinfer.local.ports import StackPorts
from asyncinfer.local.stack import FAULT_COUNTS_FILE, LocalConfig, RunningStack
from asyncinfer.results import QueueDrain, normalize_reason

REPORT_FILE = "soak-report.json"
DLQ_HIDE_SECONDS = 900  # dead letters are hidden while the soak reads them, then made visible again


@dataclass
class SoakSettings:
    files: int = 300
    faults: FaultPlan = field(default_factory=lambda: FaultPlan.parse("all"))
    seed: int = 0
    reject_every: int = 10  # every 10th file is one the pipeline or the model rejects
    in_flight: int = 64  # uploaded but not yet accounted for: the uploader waits beyond this
    stall_timeout: float = 180.0  # give up when no input has been accounted for this long
    settle_seconds: float = 3.0  # after the last input: quiet this long before the audit (late duplicates)
    function_timeout: int | None = 8  # own stack: every function's Timeout (leases, crash retries); None: template's
    concurrency: int = 4
    prefix: str | None = None  # key prefix of this run's inputs; default soak/<timestamp>/


# --- what the stack holds ----------------------------------------------------------------------------------------


@dataclass
class Input:
    key: str
    uri: str
    version_id: str | None
    inference_id: str
    expected: str  # COMPLETED | FAILED (what the file is made to do without faults)
    uploaded_at: float


@dataclass
class Event:
    event_id: str  # EventBridge's id: one per PutEvents entry
    inference_id: str
    status: str
    input_location: str | None
    location: str | None  # outputLocation or failureLocation
    failure_reason: str | None
    received_at: float


@dataclass
class DeadLetter:
    message_id: str
    kind: str  # lambda | sns | events | unknown
    source: str  # function, topic or bus
    reason: str
    inference_ids: list[str] = field(default_factory=list)
    input_uris: list[str] = field(default_factory=list)


def _s3_ids(event: Any) -> tuple[list[str], list[str]]:
    ids, uris = [], []
    for result in s3_events.parse_event(event if isinstance(event, dict) else {}):
        if result.obj is None:
            continue
        uris.append(result.obj.uri)
        try:
            ids.append(inference_ids.identify(result.obj).inference_id)
        except inference_ids.MissingObjectVersion:
            continue
    return ids, uris


def _notification_ids(message: str) -> tuple[list[str], list[str]]:
    try:
        parsed = notifications.parse_notification(message)
    except notifications.MalformedNotification:
        return [], []
    if isinstance(parsed, notifications.TestNotification):
        return [], []
    return [parsed.inference_id], [parsed.input_location] if parsed.input_location else []


def _sns_ids(event: Any) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    uris: list[str] = []
    try:
        records = sns_events.records(event)
    except sns_events.MalformedSnsRecord:
        return ids, uris
    for raw in records:
        try:
            record = sns_events.parse_record(raw)
        except sns_events.MalformedSnsRecord:
            continue
        more_ids, more_uris = _notification_ids(record.message)
        ids += more_ids
        uris += more_uris
    return ids, uris


def parse_dead_letter(message_id: str, body_text: str) -> DeadLetter:
    """Which inputs a dead-letter message concerns, and why it is there."""
    try:
        body = json.loads(body_text)
    except ValueError:
        return DeadLetter(message_id, "unknown", "?", "not JSON")
    if not isinstance(body, dict):
        return DeadLetter(message_id, "unknown", "?", "not a JSON object")
    if "requestContext" in body and "requestPayload" in body:  # Lambda's on-failure destination record
        context = body.get("requestContext") or {}
        arn = str(context.get("functionArn", "?"))
        function = arn.split(":")[6] if arn.count(":") >= 6 else arn
        response = body.get("responsePayload") or {}
        reason = f"{context.get('condition', '?')}: {response.get('errorType')}: {response.get('errorMessage')}"
        payload = body["requestPayload"]
        records = payload.get("Records") if isinstance(payload, dict) else None
        first = records[0] if isinstance(records, list) and records else None
        is_sns = isinstance(first, dict) and first.get("EventSource") == "aws:sns"
        ids, uris = _sns_ids(payload) if is_sns else _s3_ids(payload)
        return DeadLetter(message_id, "lambda", function, reason, ids, uris)
    if body.get("Type") == "Notification" and "TopicArn" in body:  # SNS could not deliver (redrive policy)
        ids, uris = _notification_ids(str(body.get("Message", "")))
        topic = str(body["TopicArn"]).rsplit(":", 1)[-1]
        return DeadLetter(message_id, "sns", topic, "SNS could not deliver the notification", ids, uris)
    if body.get("source") == SOURCE and isinstance(body.get("detail"), dict):  # EventBridge could not deliver
        detail = body["detail"]
        location = detail.get("inputLocation")
        return DeadLetter(
            message_id,
            "events",
            "results rule",
            "EventBridge could not deliver the result event",
            [str(detail.get("inferenceId"))],
            [str(location)] if location else [],
        )
    return DeadLetter(message_id, "unknown", "?", "not a message this pipeline puts there")


class EventCollector:
    """Drains the results queue in the background, keeping every result event (distinct EventBridge ids)."""

    def __init__(self, stack: target.Target) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, Event] = {}
        self._by_inference: dict[str, list[Event]] = defaultdict(list)
        self.redelivered = 0  # the same EventBridge event received again (SQS at-least-once): not a duplicate
        self.foreign = 0  # messages that are not result events of this pipeline
        self._drain = QueueDrain(stack.client("sqs"), stack.outputs["ResultsQueueUrl"], self._take, "soak-events")

    def _take(self, body_text: str, received_at: float) -> None:
        # Kept by EventBridge id: a redelivery (after a failed delete) counts once.
        try:
            envelope = json.loads(body_text)
        except ValueError:
            envelope = None
        if (
            not isinstance(envelope, dict)
            or envelope.get("source") != SOURCE
            or envelope.get("detail-type") not in DETAIL_TYPES.values()
        ):
            with self._lock:
                self.foreign += 1
            return
        detail = envelope.get("detail") or {}
        event = Event(
            event_id=str(envelope.get("id") or f"noid-{time.time_ns()}"),
            inference_id=str(detail.get("inferenceId")),
            status=str(detail.get("status")),
            input_location=detail.get("inputLocation"),
            location=detail.get("outputLocation")
            if detail.get("status") == "COMPLETED"
            else detail.get("failureLocation"),
            failure_reason=detail.get("failureReason"),
            received_at=received_at,
        )
        with self._lock:
            if event.event_id in self._events:
                self.redelivered += 1
                return
            self._events[event.event_id] = event
            self._by_inference[event.inference_id].append(event)

    def seen(self) -> set[str]:
        with self._lock:
            return set(self._by_inference)

    def by_inference(self) -> dict[str, list[Event]]:
        with self._lock:
            return {k: list(v) for k, v in self._by_inference.items()}

    def stop(self) -> None:
        self._drain.stop(drain_rest=True)


class DeadLetterReader:
    """Reads the dead-letter queue without consuming it: messages are hidden while the soak runs and given back
    (made visible) at the end, for ``asyncinfer redrive``."""

    def __init__(self, stack: target.Target) -> None:
        self._sqs = stack.client("sqs")
        self._url = stack.outputs["DeadLetterQueueUrl"]
        self._handles: dict[str, str] = {}
        self.entries: dict[str, DeadLetter] = {}

    def poll(self) -> None:
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=self._url, MaxNumberOfMessages=10, VisibilityTimeout=DLQ_HIDE_SECONDS, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return
            # Until the queue answers empty: a message seen before comes back when its hiding ran out (a run
            # longer than DLQ_HIDE_SECONDS) and is hidden again, so stopping at a batch of known ones would skip
            # newer letters behind it.
            for message in messages:
                self._handles[message["MessageId"]] = message["ReceiptHandle"]
                if message["MessageId"] not in self.entries:
                    self.entries[message["MessageId"]] = parse_dead_letter(message["MessageId"], message["Body"])

    def inference_ids(self) -> set[str]:
        return {i for entry in self.entries.values() for i in entry.inference_ids}

    def give_back(self) -> None:
        for handle in self._handles.values():
            try:
                self._sqs.change_message_visibility(QueueUrl=self._url, ReceiptHandle=handle, VisibilityTimeout=0)
            except Exception:
                continue
        self._handles.clear()


# --- the run -----------------------------------------------------------------------------------------------------


@dataclass
class Audit:
    """What the soak found. ``violations`` lists every breach of the promise; empty means it was kept."""

    inputs: int = 0
    uploaded: int = 0
    terminal_jobs: int = 0
    completed: int = 0
    failed: int = 0
    open_jobs: int = 0
    result_events: int = 0
    accounted: int = 0
    duplicates: int = 0  # inputs with more than one result event
    extra_events: int = 0  # result events beyond the first, over all inputs
    lost: int = 0
    contradictions: int = 0
    dangling: int = 0  # inputs
    incomplete: int = 0  # inputs whose terminal job or event lacks its location (COMPLETED) or reason (FAILED)
    strays: int = 0  # jobs or events for this run's files under an id that is no input version's
    # FAILED jobs/events naming a failure object the endpoint could not write, as their reason says: the location
    # comes from the InvokeEndpointAsync answer (the notification had none). Reported, not a violation.
    dangling_explained: int = 0
    dead_letter_entries: int = 0
    dead_lettered_inputs: int = 0  # inputs accounted for by a dead-letter entry only
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)  # each entry: source, reason, inputs
    orphan_outputs: int = 0
    orphan_failure_objects: int = 0
    unexpected_outcomes: dict[str, int] = field(default_factory=dict)  # expected → actual: reason, count
    failure_reasons: dict[str, int] = field(default_factory=dict)
    redelivered_events: int = 0
    stray_events: int = 0  # result events for inference ids that are not this run's inputs
    fault_counts: dict[str, int] = field(default_factory=dict)
    faults: str = ""
    seed: int = 0
    upload_seconds: float = 0.0
    processing_seconds: float = 0.0  # first upload → last input accounted for
    duration_seconds: float = 0.0  # the whole soak, stack start and audit included
    throughput_files_per_second: float = 0.0
    latency_p50_seconds: float | None = None
    latency_p95_seconds: float | None = None
    violations: list[str] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _list_versions(s3: Any, bucket: str, prefix: str) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            vid = version.get("VersionId")
            found.append((version["Key"], None if vid in (None, "null") else vid))
    return found


def _list_objects(s3: Any, bucket: str, since: float) -> set[str]:
    found: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            if obj["LastModified"].timestamp() >= since - 2:
                found.add(f"s3://{bucket}/{obj['Key']}")
    return found


def _identity(bucket: str, key: str, version_id: str | None) -> str:
    obj = s3_events.S3ObjectCreated(
        bucket=bucket,
        key=key,
        raw_key=s3_events.encode_key(key),
        size=None,
        etag=None,
        version_id=version_id,
        sequencer=None,
        event_name="ObjectCreated:Put",
        event_time=None,
    )
    return inference_ids.identify(obj).inference_id


def _replay_can_finish(job: Job | None, letters: list[DeadLetter]) -> bool:
    """Whether a dead letter accounts for an input: replaying it (``asyncinfer redrive``) can still bring the
    input to its terminal state and its one event. A job that is open or missing is finished by a replay; a
    terminal job that still owes its event publishes it on any replayed delivery; a terminal job whose event was
    published is accounted for only by that event itself in the dead-letter queue (EventBridge could not deliver)."""
    if job is None or job.status not in TERMINAL:
        return True
    if job.event_pending:
        return True
    return any(letter.kind == "events" for letter in letters)


def _missing_fields(status: str, record: Job | Event) -> list[str]:
    if status == "COMPLETED":
        location = record.output_location if isinstance(record, Job) else record.location
        return [] if location else ["without its output location"]
    if status == "FAILED":
        return [] if (record.failure_reason or "").strip() else ["without a failure reason"]
    return []


def audit(
    stack: target.Target,
    uploads: list[Input],
    prefix: str,
    events: dict[str, list[Event]],
    dead_letters: dict[str, DeadLetter],
    since: float,
) -> Audit:
    """Check the promise for this run's inputs against everything the stack holds."""
    s3 = stack.client("s3")
    in_bucket, out_bucket = stack.outputs["InputBucketName"], stack.outputs["OutputBucketName"]
    result = Audit(uploaded=len(uploads))
    expected = {u.inference_id: u for u in uploads}
    inputs: dict[str, str] = {}  # inference id → uri, from the bucket itself
    for key, version_id in _list_versions(s3, in_bucket, prefix):
        inputs[_identity(in_bucket, key, version_id)] = f"s3://{in_bucket}/{key}"
    result.inputs = len(inputs)
    for iid in expected.keys() - inputs.keys():
        result.violations.append(f"uploaded but not in the input bucket: {expected[iid].uri}")

    jobs = {job.inference_id: job for job in job_records.list_jobs(stack)}
    dlq_by_input: dict[str, list[DeadLetter]] = defaultdict(list)
    for entry in dead_letters.values():
        for iid in entry.inference_ids:
            dlq_by_input[iid].append(entry)
    result.dead_letter_entries = len(dead_letters)
    reasons = Counter(f"{e.source}: {normalize_reason(e.reason)}" for e in dead_letters.values())
    result.dead_letter_reasons = dict(reasons.most_common())
    result.dead_letters = [
        {"messageId": e.message_id, "kind": e.kind, "source": e.source, "reason": e.reason, "inputs": e.input_uris}
        for e in dead_letters.values()
    ]

    existing = _list_objects(s3, out_bucket, since)
    examples: dict[str, list[str]] = defaultdict(list)
    failure_reasons: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    latencies: list[float] = []
    dangling: set[str] = set()  # inputs whose job or event points to a missing object
    dangling_explained: set[str] = set()

    def problem(kind: str, text: str) -> None:
        if len(examples[kind]) < 10:
            examples[kind].append(text)

    for iid, uri in sorted(inputs.items(), key=lambda kv: kv[1]):
        job = jobs.get(iid)
        received = events.get(iid, [])
        result.result_events += len(received)
        terminal = job is not None and job.status in TERMINAL
        if terminal:
            assert job is not None
            result.terminal_jobs += 1
            if job.status == "COMPLETED":
                result.completed += 1
            else:
                result.failed += 1
                failure_reasons[normalize_reason(job.failure_reason or "?", 160)] += 1
        elif job is not None:
            result.open_jobs += 1
        if len(received) > 1:
            result.duplicates += 1
            result.extra_events += len(received) - 1
            problem("duplicates", f"{uri}: {len(received)} events ({', '.join(e.status for e in received)})")
        for event in received:
            if job is None or event.status != job.status or (event.input_location or uri) != uri:
                result.contradictions += 1
                shown = job.status if job is not None else "no job"
                problem("contradictions", f"{uri}: event {event.status} for {event.input_location}, job {shown}")
            if event.location and event.location not in existing:
                if event.status == "FAILED" and failure_object_missing_explained(event.failure_reason):
                    dangling_explained.add(uri)
                else:
                    dangling.add(uri)
                    problem("dangling", f"{uri}: event points to missing {event.location}")
        if terminal and received:
            result.accounted += 1
            upload = expected.get(iid)
            if upload is not None:
                latencies.append(min(e.received_at for e in received) - upload.uploaded_at)
                assert job is not None
                if job.status != upload.expected:
                    why = job.failure_reason if job.status == "FAILED" else "completed"
                    unexpected[f"{upload.expected} → {job.status}: {normalize_reason(why or '?', 120)}"] += 1
        elif iid in dlq_by_input and _replay_can_finish(job, dlq_by_input[iid]):
            result.accounted += 1
            result.dead_lettered_inputs += 1
        else:
            result.lost += 1
            state = f"job {job.status}{' (event owed)' if job.event_pending else ''}" if job else "no job"
            letters = "a dead letter that cannot finish it" if iid in dlq_by_input else "no dead-letter entry"
            problem("lost", f"{uri}: {state}, {len(received)} event(s), {letters}")
        incomplete = [f"job {job.status} {gap}" for gap in _missing_fields(job.status, job)] if terminal and job else []
        incomplete += [f"event {e.status} {gap}" for e in received for gap in _missing_fields(e.status, e)]
        if incomplete:
            result.incomplete += 1
            problem("incomplete", f"{uri}: {', '.join(incomplete)}")

    referenced: set[str] = set()
    for job in jobs.values():
        referenced.update(loc for loc in (job.output_location, job.failure_location) if loc)
        if job.inference_id in inputs and job.status in TERMINAL:
            location = job.output_location if job.status == "COMPLETED" else job.failure_location
            if location and location not in existing:
                if job.status == "FAILED" and failure_object_missing_explained(job.failure_reason):
                    dangling_explained.add(inputs[job.inference_id])
                else:
                    dangling.add(inputs[job.inference_id])
                    problem("dangling", f"{job.input_location}: job points to missing {location}")
    result.dangling, result.dangling_explained = len(dangling), len(dangling_explained)
    for event_list in events.values():
        referenced.update(e.location for e in event_list if e.location)
    for location in existing - referenced:
        if location.endswith("-error.out"):
            result.orphan_failure_objects += 1
        else:
            result.orphan_outputs += 1
    result.stray_events = sum(len(v) for k, v in events.items() if k not in inputs)
    # A job or event for one of this run's files under an id that is no input's: a file processed twice under
    # two ids (a key decoded two ways, a version mixed up) would otherwise pass as one input with one event.
    run_uri = f"s3://{in_bucket}/{prefix}"
    strays = {j.inference_id for j in jobs.values() if (j.input_location or "").startswith(run_uri)} - inputs.keys()
    strays |= {
        e.inference_id
        for event_list in events.values()
        for e in event_list
        if (e.input_location or "").startswith(run_uri) and e.inference_id not in inputs
    }
    result.strays = len(strays)
    for stray in sorted(strays)[:10]:
        job = jobs.get(stray)
        problem("strays", f"{stray}: {job.input_location if job else 'event only'}, not an input version's id")
    result.failure_reasons = dict(failure_reasons.most_common())
    result.unexpected_outcomes = dict(unexpected.most_common())
    result.latency_p50_seconds = _percentile(latencies, 0.50)
    result.latency_p95_seconds = _percentile(latencies, 0.95)
    result.examples = dict(examples)
    for kind, count in (
        ("lost", result.lost),
        ("duplicates", result.duplicates),
        ("contradictions", result.contradictions),
        ("dangling", result.dangling),
        ("incomplete", result.incomplete),
        ("strays", result.strays),
    ):
        if count:
            result.violations.append(f"{count} {kind}: " + "; ".join(examples.get(kind, [])[:3]))
    return result


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
    s3 = stack.client("s3")
    bucket = stack.outputs["InputBucketName"]
    prefix = settings.prefix or f"soak/{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 1_000_000:06d}/"
    files = demo_inputs.demo_files(settings.files, seed=settings.seed, reject_every=settings.reject_every)
    since = time.time()
    collector = EventCollector(stack)
    dead_letters = DeadLetterReader(stack)
    uploads: list[Input] = []
    try:
        last_progress = time.time()
        accounted_before = -1
        next_dlq_poll = 0.0
        index = 0
        first_upload: float | None = None
        upload_done: float | None = None
        finished_at = time.time()
        while True:
            accounted = {u.inference_id for u in uploads} & (collector.seen() | dead_letters.inference_ids())
            while index < len(files) and len(uploads) - len(accounted) < settings.in_flight:
                file = files[index]
                key = prefix + file.name
                put = s3.put_object(Bucket=bucket, Key=key, Body=file.body)
                version = put.get("VersionId")
                version = None if version in (None, "null") else version
                now = time.time()
                first_upload = first_upload or now
                uploads.append(
                    Input(
                        key, f"s3://{bucket}/{key}", version, _identity(bucket, key, version), file.expected_status, now
                    )
                )
                index += 1
            if index == len(files) and upload_done is None:
                upload_done = time.time()
            if len(accounted) != accounted_before:
                accounted_before, last_progress, finished_at = len(accounted), time.time(), time.time()
                progress("accounted", len(accounted), len(files))
            if index == len(files) and len(accounted) == len(files):
                break
            if time.time() - last_progress > settings.stall_timeout:
                break
            if time.time() >= next_dlq_poll:
                dead_letters.poll()
                next_dlq_poll = time.time() + 2.0
            time.sleep(0.2)
        progress("settling", len(accounted), len(files))
        quiet = _settle(own, settings)
        dead_letters.poll()
    finally:
        try:
            collector.stop()
        finally:
            dead_letters.give_back()
    result = audit(stack, uploads, prefix, collector.by_inference(), dead_letters.entries, since)
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


def fault_rows(counts: dict[str, int]) -> list[tuple[str, str]]:
    """(fault, injections) for the report, in catalogue order, with what each count means."""
    rows = []
    for name in CATALOGUE:
        parts = []
        if name in counts:
            parts.append(f"{counts[name]} injected")
        if f"{name}:episodes" in counts:
            parts.append(f"{counts[f'{name}:episodes']} episode(s)")
        if parts:
            rows.append((name, ", ".join(parts)))
    for key, label in (
        ("endpoint:container_refused", "calls refused while the container was down (held, retried)"),
        ("endpoint:timed_out", "container calls past InvocationTimeoutSeconds"),
        ("endpoint:expired", "requests expired (RequestTTLSeconds)"),
        ("endpoint:upload_retries", "output writes retried"),
        ("endpoint:upload_failures", "output writes given up (ResponseUploadFailures)"),
    ):
        if counts.get(key):
            rows.append((f"  {label}", str(counts[key])))
    return rows

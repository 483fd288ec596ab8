"""The soak's judgement: the pipeline's promise checked against a snapshot of the stack (a pure function).

The promise: every file dropped into the input bucket ends in exactly one terminal state (COMPLETED, or FAILED with
a reason, or a dead-letter entry with a reason) and produces exactly one result event, however the platform
redelivers, throttles or fails. Per input (object version → its inference id):

* accounted: one terminal job with exactly one result event whose status is the job's, or a dead-letter entry
  that names the input and whose replay can still finish it (the job may then be open or its event owed);
* duplicate: more than one result event (distinct EventBridge events; SQS redelivering one message is not one);
* lost: neither a terminal job with its event nor such a dead-letter entry;
* contradiction: an event whose status or input differs from its job's, or an event with no job;
* incomplete: a terminal job or event without its output location (COMPLETED) or reason (FAILED);
* stray: a job or event for one of the run's files under an id that is no input version's;
* wrong input: a COMPLETED job whose output is not the model's prediction for its own version's bytes (the endpoint
  read other content: the key was overwritten while the request waited), or a FAILED one whose payload the endpoint
  could not read (the key was deleted meanwhile). Checked when the snapshot holds the output checks;
* misnamed: a COMPLETED job or event whose output is not where InvokeEndpointAsync said it would be (its
  ``OutputLocation``, recorded on the job at submission), or, when none was recorded, not at the name derived from
  its input (the input key's folder under the endpoint's S3OutputPath, named after the inference id:
  ``async_pipeline.output_names``; the join rule is UNVERIFIED). Checked when the snapshot knows the S3OutputPath;
* without metadata: an event that does not carry the user metadata its file was uploaded with (only a version gone
  before the submitter read it may have none). Checked for the uploads whose metadata the snapshot knows.

Orphan outputs (objects in the output bucket no job points to) are reported, not counted against the promise. Since
outputs are named after the inference id, a crash after InvokeEndpointAsync, whose retry invokes the endpoint a
second time, usually overwrites the same object; when the two requests end differently (one completes, the other
fails), one leaves an object (an output, or a failure object) that the job, decided by the first notification,
does not point to: an orphan. Dangling locations (a job or event
pointing to an object that is not there) are violations, except a failure object the endpoint could not write
(its reason says so): the job keeps the FailureLocation InvokeEndpointAsync announced, since the notification then
names none.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import TypedDict

from async_pipeline import output_names, s3_uris
from async_pipeline.jobs import TERMINAL, Job
from async_pipeline.submission import VERSION_GONE

from asyncinfer.dead_letters import DeadLetter
from asyncinfer.local.endpoint.failure_reasons import failure_object_missing_explained, payload_unreadable
from asyncinfer.result_summary import normalize_reason
from asyncinfer.soak.snapshot import ReceivedEvent, Snapshot, Upload

EXAMPLES_PER_KIND = 10


class DeadLetterRow(TypedDict):
    messageId: str
    kind: str
    source: str
    reason: str
    inputs: list[str]


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
    # Inputs whose result is not of their own version's bytes: a COMPLETED output that is not the model's prediction
    # for them, or a FAILED job whose payload the endpoint could not read.
    wrong_inputs: int = 0
    outputs_checked: int = 0  # COMPLETED outputs compared with the model's prediction for their version
    misnamed: int = 0  # inputs whose COMPLETED job or event has its output elsewhere than at its derived name
    names_checked: int = 0
    without_metadata: int = 0  # inputs with an event that lacks (or alters) the file's metadata
    metadata_checked: int = 0
    # FAILED jobs/events naming a failure object the endpoint could not write, as their reason says: the location
    # comes from the InvokeEndpointAsync answer (the notification had none). Reported, not a violation.
    dangling_explained: int = 0
    dead_letter_entries: int = 0
    dead_lettered_inputs: int = 0  # inputs accounted for by a dead-letter entry only
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
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

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


@dataclass
class _Findings:
    """What the checks collect on the way: examples per kind, and the inputs with a dangling location."""

    examples: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    dangling: set[str] = field(default_factory=set)  # inputs whose job or event points to a missing object
    dangling_explained: set[str] = field(default_factory=set)

    def problem(self, kind: str, text: str) -> None:
        if len(self.examples[kind]) < EXAMPLES_PER_KIND:
            self.examples[kind].append(text)

    def check_location(
        self, uri: str, what: str, status: str, location: str | None, failure_reason: str | None, outputs: set[str]
    ) -> None:
        """A terminal job or event of input ``uri`` points to ``location``: it must be there, unless it is a failure
        object the endpoint could not write, as the reason says."""
        if not location or location in outputs:
            return
        if status == "FAILED" and failure_object_missing_explained(failure_reason):
            self.dangling_explained.add(uri)
        else:
            self.dangling.add(uri)
            self.problem("dangling", f"{what} points to missing {location}")


def judge(snapshot: Snapshot) -> Audit:
    """Check the promise for the run's inputs against everything the stack holds."""
    result = Audit(uploaded=len(snapshot.uploads), inputs=len(snapshot.inputs))
    uploads = {u.inference_id: u for u in snapshot.uploads}
    for iid in uploads.keys() - snapshot.inputs.keys():
        result.violations.append(f"uploaded but not in the input bucket: {uploads[iid].uri}")
    _count_dead_letters(result, snapshot.dead_letters)
    findings = _Findings()
    latencies = _judge_inputs(result, findings, snapshot)
    _judge_job_locations(findings, snapshot)
    result.dangling, result.dangling_explained = len(findings.dangling), len(findings.dangling_explained)
    _count_orphans(result, snapshot)
    result.stray_events = sum(len(v) for k, v in snapshot.events.items() if k not in snapshot.inputs)
    _judge_strays(result, findings, snapshot)
    result.latency_p50_seconds = _percentile(latencies, 0.50)
    result.latency_p95_seconds = _percentile(latencies, 0.95)
    result.examples = dict(findings.examples)
    for kind, count in (
        ("lost", result.lost),
        ("duplicates", result.duplicates),
        ("contradictions", result.contradictions),
        ("dangling", result.dangling),
        ("incomplete", result.incomplete),
        ("strays", result.strays),
        ("wrong inputs", result.wrong_inputs),
        ("misnamed outputs", result.misnamed),
        ("events without their file's metadata", result.without_metadata),
    ):
        if count:
            result.violations.append(f"{count} {kind}: " + "; ".join(findings.examples.get(kind, [])[:3]))
    return result


def _count_dead_letters(result: Audit, letters: dict[str, DeadLetter]) -> None:
    result.dead_letter_entries = len(letters)
    reasons = Counter(f"{e.source}: {normalize_reason(e.reason)}" for e in letters.values())
    result.dead_letter_reasons = dict(reasons.most_common())
    result.dead_letters = [
        {"messageId": e.message_id, "kind": e.kind, "source": e.source, "reason": e.reason, "inputs": e.input_uris}
        for e in letters.values()
    ]


def _judge_inputs(result: Audit, findings: _Findings, snapshot: Snapshot) -> list[float]:
    """Each input's terminal state, events and dead letters; returns the latencies (upload → first event)."""
    jobs = {job.inference_id: job for job in snapshot.jobs}
    uploads = {u.inference_id: u for u in snapshot.uploads}
    dlq_by_input: dict[str, list[DeadLetter]] = defaultdict(list)
    for entry in snapshot.dead_letters.values():
        for iid in entry.inference_ids:
            dlq_by_input[iid].append(entry)
    failure_reasons: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    latencies: list[float] = []
    problem = findings.problem
    for iid, uri in sorted(snapshot.inputs.items(), key=lambda kv: kv[1]):
        job = jobs.get(iid)
        received = snapshot.events.get(iid, [])
        result.result_events += len(received)
        terminal = job if job is not None and job.status in TERMINAL else None
        if terminal is not None:
            result.terminal_jobs += 1
            if terminal.status == "COMPLETED":
                result.completed += 1
            else:
                result.failed += 1
                failure_reasons[normalize_reason(terminal.failure_reason or "?", 160)] += 1
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
            findings.check_location(
                uri, f"{uri}: event", event.status, event.location, event.failure_reason, snapshot.outputs
            )
        if terminal is not None and received:
            result.accounted += 1
            upload = uploads.get(iid)
            if upload is not None:
                latencies.append(min(e.received_at for e in received) - upload.uploaded_at)
                if terminal.status != upload.expected:
                    why = terminal.failure_reason if terminal.status == "FAILED" else "completed"
                    unexpected[f"{upload.expected} → {terminal.status}: {normalize_reason(why or '?', 120)}"] += 1
        elif iid in dlq_by_input and _replay_can_finish(job, dlq_by_input[iid]):
            result.accounted += 1
            result.dead_lettered_inputs += 1
        else:
            result.lost += 1
            state = f"job {job.status}{' (event owed)' if job.event_pending else ''}" if job else "no job"
            letters = "a dead letter that cannot finish it" if iid in dlq_by_input else "no dead-letter entry"
            problem("lost", f"{uri}: {state}, {len(received)} event(s), {letters}")
        if terminal is not None:
            _judge_input_content(result, findings, snapshot, terminal, uri)
            _judge_output_name(result, findings, snapshot.output_path, terminal, received, uri)
        _judge_metadata(result, findings, uploads.get(iid), terminal, received, uri)
        incomplete = [f"job {terminal.status} {gap}" for gap in _missing_fields(terminal)] if terminal else []
        incomplete += [f"event {e.status} {gap}" for e in received for gap in _missing_fields(e)]
        if incomplete:
            result.incomplete += 1
            problem("incomplete", f"{uri}: {', '.join(incomplete)}")
    result.failure_reasons = dict(failure_reasons.most_common())
    result.unexpected_outcomes = dict(unexpected.most_common())
    return latencies


def _judge_input_content(result: Audit, findings: _Findings, snapshot: Snapshot, job: Job, uri: str) -> None:
    """Whether a terminal job's result is of its own input version: a completed output must be the model's
    prediction for that version's bytes; a failure must not be the endpoint unable to read the payload."""
    if job.status == "FAILED" and payload_unreadable(job.failure_reason):
        result.wrong_inputs += 1
        findings.problem("wrong inputs", f"{uri}: the endpoint could not read the payload: {job.failure_reason}")
        return
    check = snapshot.output_checks.get(job.inference_id)
    if job.status != "COMPLETED" or check is None or check.actual is None:
        return  # a missing output is judged as dangling
    result.outputs_checked += 1
    if check.actual != check.expected:
        result.wrong_inputs += 1
        expected = "refused by the model" if check.expected is None else _shown(check.expected)
        findings.problem(
            "wrong inputs",
            f"{uri} (version {check.version_id}): output {_shown(check.actual)} is not the model's prediction for "
            f"this version's bytes ({expected})",
        )


def _judge_output_name(
    result: Audit, findings: _Findings, output_path: str, job: Job, received: list[ReceivedEvent], uri: str
) -> None:
    """A COMPLETED input's output (its job's and its events') must sit where InvokeEndpointAsync said it would
    (``OutputLocation``, recorded at submission); for a job whose submitter never recorded it, at the name derived
    from its key and id. How SageMaker joins S3OutputPath, the extension and Filename is UNVERIFIED, so the derived
    name is only the fallback, and a difference between the two is reported with it."""
    if not output_path or job.status != "COMPLETED":
        return
    derived = output_names.output_uri(output_path, s3_uris.key_of(uri), job.inference_id)
    expected = job.submitted_output_location or derived
    result.names_checked += 1
    found = {job.output_location} | {e.location for e in received if e.status == "COMPLETED"}
    if found != {expected}:
        result.misnamed += 1
        shown = ", ".join(sorted(str(f) for f in found - {expected}))
        whence = "returned at submission" if job.submitted_output_location else "derived; none was recorded"
        also = f"; the derived name is {derived}" if expected != derived else ""
        findings.problem("misnamed outputs", f"{uri}: output at {shown}, not {expected} ({whence}){also}")


def _judge_metadata(
    result: Audit,
    findings: _Findings,
    upload: Upload | None,
    job: Job | None,
    received: list[ReceivedEvent],
    uri: str,
) -> None:
    """Every event of an upload carries the metadata it was uploaded with; only a version gone before the submitter
    read it (its reason says so) may carry none."""
    if upload is None or upload.metadata is None or not received:
        return
    result.metadata_checked += 1
    gone = job is not None and job.failure_reason == VERSION_GONE
    wrong = [e for e in received if e.metadata != upload.metadata and not (gone and e.metadata is None)]
    if wrong:
        result.without_metadata += 1
        findings.problem("events without their file's metadata", f"{uri}: event metadata {wrong[0].metadata}")


def _shown(data: bytes, limit: int = 60) -> str:
    text = data.decode("utf-8", "replace").replace("\n", " ")
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _judge_job_locations(findings: _Findings, snapshot: Snapshot) -> None:
    for job in snapshot.jobs:
        if job.inference_id in snapshot.inputs and job.status in TERMINAL:
            findings.check_location(
                snapshot.inputs[job.inference_id],
                f"{job.input_location}: job",
                job.status,
                _job_location(job),
                job.failure_reason,
                snapshot.outputs,
            )


def _count_orphans(result: Audit, snapshot: Snapshot) -> None:
    referenced: set[str] = set()
    for job in snapshot.jobs:
        referenced.update(loc for loc in (job.output_location, job.failure_location) if loc)
    for event_list in snapshot.events.values():
        referenced.update(e.location for e in event_list if e.location)
    for location in snapshot.outputs - referenced:
        if location.endswith("-error.out"):
            result.orphan_failure_objects += 1
        else:
            result.orphan_outputs += 1


def _judge_strays(result: Audit, findings: _Findings, snapshot: Snapshot) -> None:
    """A job or event for one of this run's files under an id that is no input's: a file processed twice under
    two ids (a key decoded two ways, a version mixed up) would otherwise pass as one input with one event."""
    run = snapshot.run_location
    strays = {j.inference_id for j in snapshot.jobs if (j.input_location or "").startswith(run)}
    strays |= {
        e.inference_id
        for event_list in snapshot.events.values()
        for e in event_list
        if (e.input_location or "").startswith(run)
    }
    strays -= snapshot.inputs.keys()
    result.strays = len(strays)
    jobs = {job.inference_id: job for job in snapshot.jobs}
    for stray in sorted(strays)[:EXAMPLES_PER_KIND]:
        job = jobs.get(stray)
        findings.problem("strays", f"{stray}: {job.input_location if job else 'event only'}, not an input version's id")


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


def _job_location(job: Job) -> str | None:
    return job.output_location if job.status == "COMPLETED" else job.failure_location


def _missing_fields(record: Job | ReceivedEvent) -> list[str]:
    if record.status == "COMPLETED":
        location = _job_location(record) if isinstance(record, Job) else record.location
        return [] if location else ["without its output location"]
    if record.status == "FAILED":
        return [] if (record.failure_reason or "").strip() else ["without a failure reason"]
    return []


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]

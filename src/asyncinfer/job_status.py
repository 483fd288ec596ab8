"""One file's job, as ``asyncinfer status FILE|S3-URI|INFERENCE-ID`` shows it: its state, times, output or reason,
and, while it waits, how many files submitted before it are still open and whether the endpoint has an instance.

Which job: an inference id as it is; an S3 URI of the input bucket names its key's current version; a local file
names the key it was uploaded to (``--prefix`` + its name, or + the path below any folder above it, as
``submit FOLDER`` names keys: the nearest first) and, of that key's versions, the newest whose ETag is the file's
MD5 (the upload of these very bytes), else the newest. The reads are few and plain: GetItem, version listings, one
bounded Scan of the jobs (only while the job is open) and DescribeEndpoint.

"Files ahead" is approximate: it counts open jobs whose S3 event time is earlier (the endpoint's own queue is not
promised to be first in, first out), leaves out SUBMITTING jobs whose submitter gave up (dead-lettered: they wait
for ``asyncinfer redrive``, not for the endpoint), and stops after :data:`MAX_SCANNED` records (a Scan reads the
whole table, 30 days of jobs, at one read unit per 8 KB scanned): past that it says "at least".
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from async_pipeline import inference_ids, s3_uris
from async_pipeline.jobs import OPEN, Job, JobStore
from botocore.exceptions import ClientError

from asyncinfer import job_results
from asyncinfer.target import Target

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_INFERENCE_ID = re.compile(r"[0-9a-f]{64}")
MAX_SCANNED = 20_000  # job records one ``status`` reads at most to count the files ahead (about 2,500 read units)
# The submitter's EventInvokeConfig (template.yaml): Lambda retries an S3 event at most this long after it, then
# sends it to the dead-letter queue. A SUBMITTING job older than that, its lease run out, waits for a redrive.
SUBMITTER_MAX_EVENT_AGE_S = 3600
SUBMITTER_ATTEMPTS = 3  # the first invocation and MaximumRetryAttempts: 2


class NotFound(LookupError):
    """The reference names no file, version or job of this stack; the message says which."""


@dataclass(frozen=True)
class Resolved:
    inference_id: str
    input_uri: str | None = None  # None when given an inference id


@dataclass(frozen=True)
class Capacity:
    """The endpoint's instances (DescribeEndpoint, first variant)."""

    status: str
    current: int | None
    desired: int | None

    @property
    def scaling_out_from_zero(self) -> bool:
        return self.current == 0 and ((self.desired or 0) > 0 or self.status == "Updating")

    def describe(self) -> str:
        if self.current is None:
            return f"{self.status} (instance count not reported)"
        if self.scaling_out_from_zero:
            return f"scaling out from zero (desired {self.desired}): the first instance takes minutes"
        if self.current == 0:
            return "at zero instances: one is added once the backlog alarm fires (HasBacklogWithoutCapacity)"
        return f"{self.status}, {self.current} instance(s)"


@dataclass(frozen=True)
class Ahead:
    """Open jobs received before this one (approximate; see the module docstring)."""

    waiting: int
    dead_lettered: int = 0  # SUBMITTING jobs received before it whose submitter gave up
    complete: bool = True  # False: the scan stopped at MAX_SCANNED records, so the counts are lower bounds

    def describe(self) -> str:
        counted = f"about {self.waiting}" if self.complete else f"at least {self.waiting}"
        text = f"{counted} open file(s) received before it (approximate: by S3 event time)"
        if self.dead_lettered:
            text += f"; {self.dead_lettered} more dead-lettered (run asyncinfer redrive), not counted"
        return text


def dead_lettered(job: Job, now_s: float) -> bool:
    """A SUBMITTING job nobody is working on and Lambda will not retry: its lease ran out, and its submitter's
    attempts are used up or its S3 event is past the maximum event age. Only ``asyncinfer redrive`` moves it on."""
    if job.status != "SUBMITTING" or (job.lease_expires_at or 0) >= now_s * 1000:
        return False
    if job.attempts >= SUBMITTER_ATTEMPTS:
        return True
    received = _epoch_s(job.received_time)
    return received is not None and now_s - received > SUBMITTER_MAX_EVENT_AGE_S


def _epoch_s(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class Report:
    inference_id: str
    input_uri: str | None
    job: Job | None
    ahead: Ahead | None = None  # only while it is open
    capacity: Capacity | None = None  # only while it is open
    prediction: str | None = None
    notes: list[str] = field(default_factory=list)


def resolve(target: Target, reference: str, prefix: str = "") -> Resolved:
    if _INFERENCE_ID.fullmatch(reference):
        return Resolved(reference)
    bucket = target.outputs["InputBucketName"]
    s3 = target.client("s3")
    if reference.startswith(("s3://", "https://")):
        ref_bucket, key = s3_uris.parse_uri(reference)
        if ref_bucket != bucket:
            raise NotFound(f"{reference} is not in the input bucket {bucket}")
        version = _current_version(s3, bucket, key, reference)
    else:
        path = Path(reference)
        if not path.is_file():
            raise NotFound(f"{reference} is no file, S3 URI (s3://…) or inference id (64 hex digits)")
        key, version = _version_of_file(s3, bucket, prefix, path)
    uri = s3_uris.format_uri(bucket, key)
    return Resolved(inference_ids.of_version(bucket, key, version), uri)


def _current_version(s3: S3Client, bucket: str, key: str, reference: str) -> str:
    try:
        version = s3.head_object(Bucket=bucket, Key=key).get("VersionId")
    except ClientError as exc:
        raise NotFound(f"{reference}: {exc.response.get('Error', {}).get('Code')} (no current version)") from exc
    if not version or version == "null":
        raise NotFound(f"{reference} has no version id (is the input bucket versioned?)")
    return version


def _version_of_file(s3: S3Client, bucket: str, prefix: str, path: Path) -> tuple[str, str]:
    """The key a local file was submitted as (``submit FILE``, or ``submit FOLDER`` of any folder above it, the
    nearest first) and, of its versions, the newest holding the file's bytes (single-part ETag = MD5), else the
    newest."""
    with path.open("rb") as file:  # in chunks: a file may be up to 1 GB
        digest = hashlib.file_digest(file, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()
    parts = path.resolve().parts[1:]  # without the root
    keys = [prefix + "/".join(parts[start:]) for start in range(len(parts) - 1, -1, -1)]
    for key in keys:
        versions = [
            v
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key)
            for v in page.get("Versions", [])
            if v["Key"] == key and v.get("VersionId") not in (None, "null")
        ]
        if versions:
            versions.sort(key=lambda v: v["LastModified"], reverse=True)
            same = [v for v in versions if v.get("ETag", "").strip('"') == digest]
            return key, str((same or versions)[0]["VersionId"])
    shown = " or ".join(f"s3://{bucket}/{key}" for key in keys)
    raise NotFound(f"{path} was never uploaded as {shown} (wrong --prefix?)")


def capacity(target: Target) -> Capacity:
    endpoint = target.client("sagemaker").describe_endpoint(EndpointName=target.outputs["EndpointName"])
    variants = endpoint.get("ProductionVariants", [])
    current = variants[0].get("CurrentInstanceCount") if variants else None
    desired = variants[0].get("DesiredInstanceCount") if variants else None
    return Capacity(str(endpoint.get("EndpointStatus", "unknown")), current, desired)


def open_ahead(target: Target, job: Job, now_s: float | None = None, max_scanned: int = MAX_SCANNED) -> Ahead:
    """The open jobs received before this one (a Scan of the open jobs, projected to what the count needs; S3's
    event time first, the submission time on a tie), dead-lettered ones apart; at most ``max_scanned`` records read."""
    dynamodb = target.client("dynamodb")
    now_s = time.time() if now_s is None else now_s
    mine = (job.received_time or "", job.submitted_at or "")
    waiting = stranded = scanned = 0
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=target.outputs["JobsTableName"],
        FilterExpression="#s IN (:a, :b)",
        ProjectionExpression="inferenceId, #s, receivedTime, submittedAt, leaseExpiresAt, attempts",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":a": {"S": "SUBMITTING"}, ":b": {"S": "SUBMITTED"}},
        PaginationConfig={"PageSize": min(1000, max_scanned)},
    ):
        for item in page.get("Items", []):
            other = Job.from_item(item)
            if other.inference_id == job.inference_id or (other.received_time or "", other.submitted_at or "") >= mine:
                continue
            if dead_lettered(other, now_s):
                stranded += 1
            else:
                waiting += 1
        scanned += int(page.get("ScannedCount", 0))
        if scanned >= max_scanned and page.get("LastEvaluatedKey"):
            return Ahead(waiting, stranded, complete=False)
    return Ahead(waiting, stranded)


def report(target: Target, resolved: Resolved) -> Report:
    store = JobStore(target.client("dynamodb"), target.outputs["JobsTableName"], retention_seconds=0)
    job = store.get(resolved.inference_id)
    result = Report(resolved.inference_id, resolved.input_uri or (job.input_location if job else None), job)
    if job is None:
        result.notes.append("no job yet: the submitter has not claimed this version (or it is not an input)")
        return result
    if job.status in OPEN and dead_lettered(job, time.time()):
        result.notes.append("dead-lettered: its submitter gave up; run asyncinfer redrive to submit it again")
    elif job.status in OPEN:
        result.ahead = open_ahead(target, job)
        result.capacity = capacity(target)
    elif job.status == "COMPLETED":
        data, source = job_results.prediction(
            target.client("s3"), job.response_content, job.response_encoding, job.output_location
        )
        result.prediction = job_results.shown(data) if data is not None else f"({source})"
    return result


def rows(result: Report) -> list[tuple[str, str]]:
    """The report as (label, value) rows, in the order shown (pure)."""
    job = result.job
    shown: list[tuple[str, str]] = [("inference id", result.inference_id)]
    if result.input_uri:
        shown.append(("input", result.input_uri))
    if job is None:
        return [*shown, ("state", "unknown"), *(("note", n) for n in result.notes)]
    shown.append(("state", str(job.status)))
    if job.object_version:
        shown.append(("version", job.object_version))
    for label, value in (
        ("received", job.received_time),
        ("submitted", job.submitted_at),
        ("completed", job.completed_time),
        ("took", f"{job.duration_ms} ms" if job.duration_ms is not None else None),
    ):
        if value:
            shown.append((label, value))
    if job.status == "COMPLETED":
        shown.append(("output", job.output_location or "?"))
        if result.prediction is not None:
            shown.append(("prediction", result.prediction))
    elif job.status == "FAILED":
        shown.append(("reason", job.failure_reason or "unknown"))
        if job.failure_location:
            shown.append(("failure object", job.failure_location))
    else:
        if job.attempts:
            shown.append(("attempts", f"{job.attempts} (last error: {job.last_error})"))
        if result.ahead is not None:
            shown.append(("waiting behind", result.ahead.describe()))
        if result.capacity is not None:
            shown.append(("endpoint", result.capacity.describe()))
    if job.metadata:
        shown.append(("metadata", ", ".join(f"{k}={v}" for k, v in sorted(job.metadata.items()))))
    return shown + [("note", n) for n in result.notes]

"""What the stack holds for one soak run, read once when the run is over: the snapshot the judgement works on.

Only what the stack itself holds: the input bucket (every version under the run's prefix), the jobs table, the
result events and dead letters gathered during the run (``collectors``) and the output bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from async_pipeline import inference_ids, s3_uris
from async_pipeline.jobs import Job

from asyncinfer import job_records, target
from asyncinfer.dead_letters import DeadLetter

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class Upload:
    """A file the soak put into the input bucket."""

    key: str
    uri: str
    version_id: str | None
    inference_id: str
    expected: str  # COMPLETED | FAILED (what the file is made to do without faults)
    uploaded_at: float


@dataclass(frozen=True)
class ReceivedEvent:
    """A result event as the results queue delivered it."""

    event_id: str  # EventBridge's id: one per PutEvents entry
    inference_id: str
    status: str
    input_location: str | None
    location: str | None  # outputLocation or failureLocation
    failure_reason: str | None
    received_at: float


@dataclass(frozen=True)
class Snapshot:
    run_location: str  # s3://input-bucket/prefix: this run's inputs are the versions under it
    uploads: list[Upload]
    inputs: dict[str, str]  # inference id → uri of every input version, from the bucket itself
    jobs: list[Job]
    events: dict[str, list[ReceivedEvent]]  # by inference id (distinct EventBridge events)
    dead_letters: dict[str, DeadLetter]  # by message id
    outputs: set[str]  # URIs of the output bucket's objects written since the run began


def read(
    stack: target.Target,
    uploads: list[Upload],
    prefix: str,
    events: dict[str, list[ReceivedEvent]],
    dead_letters: dict[str, DeadLetter],
    since: float,
) -> Snapshot:
    """The snapshot of a run whose inputs are under ``prefix``, begun at ``since``."""
    s3: S3Client = stack.client("s3")
    in_bucket, out_bucket = stack.outputs["InputBucketName"], stack.outputs["OutputBucketName"]
    inputs = {
        inference_ids.of_version(in_bucket, key, version_id): s3_uris.format_uri(in_bucket, key)
        for key, version_id in _list_versions(s3, in_bucket, prefix)
    }
    return Snapshot(
        run_location=s3_uris.format_uri(in_bucket, prefix),
        uploads=list(uploads),
        inputs=inputs,
        jobs=job_records.list_jobs(stack),
        events=events,
        dead_letters=dead_letters,
        outputs=_list_objects(s3, out_bucket, since),
    )


def _list_versions(s3: S3Client, bucket: str, prefix: str) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            vid = version.get("VersionId")
            found.append((version["Key"], None if vid in (None, "null") else vid))
    return found


def _list_objects(s3: S3Client, bucket: str, since: float) -> set[str]:
    found: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            if obj["LastModified"].timestamp() >= since - 2:
                found.add(s3_uris.format_uri(bucket, obj["Key"]))
    return found

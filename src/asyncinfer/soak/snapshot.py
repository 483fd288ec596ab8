"""What the stack holds for one soak run, read once when the run is over: the snapshot the judgement works on.

Only what the stack itself holds: the input bucket (every version under the run's prefix), the jobs table, the
result events and dead letters gathered during the run (``collectors``) and the output bucket; and, given a
``Predictor`` (the model container), what the model predicts for each completed job's own input version, beside
the output the job points to.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from async_pipeline import content_types, inference_ids, s3_uris
from async_pipeline.jobs import Job, JobStatus
from botocore.exceptions import ClientError

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
    metadata: dict[str, str] | None = None  # the user metadata it was uploaded with (None: not checked)


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
    metadata: dict[str, str] | None = None  # the event's ``metadata`` (None: it had none)


@dataclass(frozen=True)
class OutputCheck:
    """A COMPLETED job's output beside the model's prediction for the bytes of the job's own input version."""

    uri: str
    version_id: str | None
    output_location: str
    expected: bytes | None  # the model's answer for the version's bytes (None: the model refused them)
    actual: bytes | None  # the output object (None: it could not be read)


STAGING_PREFIX = "staging/"  # the staging place's prefix in the output bucket (STAGING_LOCATION)

# (payload, content type) -> the model's answer, or None when the model refuses the payload.
Predictor = Callable[[bytes, str], bytes | None]


@dataclass(frozen=True)
class Snapshot:
    run_location: str  # s3://input-bucket/prefix: this run's inputs are the versions under it
    uploads: list[Upload]
    inputs: dict[str, str]  # inference id → uri of every input version, from the bucket itself
    jobs: list[Job]
    events: dict[str, list[ReceivedEvent]]  # by inference id (distinct EventBridge events)
    dead_letters: dict[str, DeadLetter]  # by message id
    outputs: set[str]  # URIs of the output bucket's objects written since the run began (staged inputs aside)
    output_checks: dict[str, OutputCheck] = field(default_factory=dict)  # by inference id (COMPLETED jobs)
    output_path: str = ""  # the endpoint's S3OutputPath, under which outputs have derived names ("": not checked)


def read(
    stack: target.Target,
    uploads: list[Upload],
    prefix: str,
    events: dict[str, list[ReceivedEvent]],
    dead_letters: dict[str, DeadLetter],
    since: float,
    predict: Predictor | None = None,
) -> Snapshot:
    """The snapshot of a run whose inputs are under ``prefix``, begun at ``since``; with ``predict``, the output
    checks of its completed jobs."""
    s3: S3Client = stack.client("s3")
    in_bucket, out_bucket = stack.outputs["InputBucketName"], stack.outputs["OutputBucketName"]
    versions = input_versions(s3, in_bucket, prefix)
    jobs = job_records.list_jobs(stack)
    return Snapshot(
        run_location=s3_uris.format_uri(in_bucket, prefix),
        uploads=list(uploads),
        inputs={iid: s3_uris.format_uri(in_bucket, key) for iid, (key, _) in versions.items()},
        jobs=jobs,
        events=events,
        dead_letters=dead_letters,
        outputs={uri for uri in _list_objects(s3, out_bucket, since) if not _staged(uri, out_bucket)},
        output_checks=check_outputs(s3, in_bucket, versions, jobs, predict) if predict else {},
        output_path=endpoint_output_path(stack),
    )


def endpoint_output_path(stack: target.Target) -> str:
    """The endpoint's ``S3OutputPath`` as its configuration says (DescribeEndpoint, DescribeEndpointConfig); "" for
    a target that names no endpoint (then output names are not judged)."""
    if "EndpointName" not in stack.outputs:
        return ""
    sagemaker = stack.client("sagemaker")
    config = sagemaker.describe_endpoint(EndpointName=stack.outputs["EndpointName"])["EndpointConfigName"]
    described = sagemaker.describe_endpoint_config(EndpointConfigName=config)
    return str(described.get("AsyncInferenceConfig", {}).get("OutputConfig", {}).get("S3OutputPath") or "")


def check_outputs(
    s3: S3Client,
    bucket: str,
    versions: dict[str, tuple[str, str | None]],
    jobs: list[Job],
    predict: Predictor,
    default_content_type: str = "text/csv",
) -> dict[str, OutputCheck]:
    """For each COMPLETED job of one of ``versions`` (inference id -> key, version): its output and the model's
    prediction for the bytes of that very version, sent with the content type the submitter would choose."""

    def check(job: Job) -> tuple[str, OutputCheck]:
        assert job.output_location is not None
        key, version_id = versions[job.inference_id]
        if version_id:
            got = s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)
        else:
            got = s3.get_object(Bucket=bucket, Key=key)
        content_type, _ = content_types.choose(got.get("ContentType"), key, default_content_type)
        expected = predict(got["Body"].read(), content_type)
        out_bucket, out_key = s3_uris.parse_uri(job.output_location)
        try:
            actual: bytes | None = s3.get_object(Bucket=out_bucket, Key=out_key)["Body"].read()
        except ClientError:
            actual = None
        uri = s3_uris.format_uri(bucket, key)
        return job.inference_id, OutputCheck(uri, version_id, job.output_location, expected, actual)

    completed = [
        job
        for job in jobs
        if job.status is JobStatus.COMPLETED and job.output_location and job.inference_id in versions
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(check, completed))


def input_versions(s3: S3Client, bucket: str, prefix: str) -> dict[str, tuple[str, str | None]]:
    """Every object version under ``prefix`` by its inference id: the soak's own uploads and the versions a fault
    (``input-changed``) wrote over them."""
    return {
        inference_ids.of_version(bucket, key, version_id): (key, version_id)
        for key, version_id in _list_versions(s3, bucket, prefix)
    }


def _list_versions(s3: S3Client, bucket: str, prefix: str) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            vid = version.get("VersionId")
            found.append((version["Key"], None if vid in (None, "null") else vid))
    return found


def _staged(uri: str, bucket: str) -> bool:
    """An input the submitter staged for the endpoint (template.yaml's STAGING_LOCATION), not a result."""
    return uri.startswith(s3_uris.format_uri(bucket, STAGING_PREFIX))


def _list_objects(s3: S3Client, bucket: str, since: float) -> set[str]:
    found: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            if obj["LastModified"].timestamp() >= since - 2:
                found.add(s3_uris.format_uri(bucket, obj["Key"]))
    return found

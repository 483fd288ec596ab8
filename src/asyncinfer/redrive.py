"""Redrive: re-submit FAILED jobs and replay dead-letter messages, idempotently, on a local or deployed stack.

* A FAILED job is re-submitted by copying its input object version onto its key: a new version, so a new
  inference through the normal trigger (S3 → submitter), exactly as a user's re-upload would be. The old job is
  claimed first with a conditional write, so two redrives (or a redrive run twice) copy it once; it then points to
  the new version (``redrivenTo``).
* A dead-letter message goes back where it failed: a Lambda destination record is invoked again, asynchronously,
  on the function named in it (the functions are idempotent: a replayed S3 event never invokes the endpoint twice);
  a notification SNS could not deliver is published again on its topic; a result event EventBridge could not
  deliver is sent to the results queue. The message is deleted only once its replay was accepted.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from async_pipeline import s3_uris
from async_pipeline.jobs import Job, JobStatus
from botocore.exceptions import BotoCoreError, ClientError

from asyncinfer import dead_letters
from asyncinfer.job_records import list_jobs
from asyncinfer.target import Target

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopySourceTypeDef, HeadObjectOutputTypeDef, HeadObjectRequestTypeDef
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

STALE_CLAIM_SECONDS = 300  # a redrive claim older than this was abandoned (its run died) and may be taken again
REDRIVE_OF = "redrive-of"  # metadata of a redriven copy: the inference id of the job it re-submits
DRY_RUN_HIDE_SECONDS = 30  # a dry run hides what it has listed, then gives it back


@dataclass(frozen=True)
class Action:
    source: Literal["job"] | dead_letters.Kind
    subject: str  # inference id, function, topic …
    outcome: str  # what was (or, with --dry-run, would be) done
    reason: str = ""


def redrivable_jobs(target: Target, reason: str | None = None, limit: int | None = None) -> list[Job]:
    jobs = [
        job
        for job in list_jobs(target, JobStatus.FAILED)
        if job.origin == "s3"
        and job.input_location
        and "redrivenTo" not in job.extra
        and (reason is None or reason.lower() in (job.failure_reason or "").lower())
    ]
    return jobs[:limit] if limit is not None else jobs


def redrive_job(target: Target, job: Job, dry_run: bool) -> Action:
    assert job.input_location is not None
    bucket, key = s3_uris.parse_uri(job.input_location)
    if dry_run:
        return Action(
            "job", job.inference_id, f"would copy s3://{bucket}/{key} to a new version", job.failure_reason or ""
        )
    dynamodb: DynamoDBClient = target.client("dynamodb")
    s3: S3Client = target.client("s3")
    table = target.outputs["JobsTableName"]
    now = int(time.time())
    token = secrets.token_hex(8)
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"inferenceId": {"S": job.inference_id}},
            UpdateExpression="SET redriveClaim = :token, redriveClaimedAt = :now",
            ConditionExpression="#s = :failed AND attribute_not_exists(redrivenTo) AND "
            "(attribute_not_exists(redriveClaimedAt) OR redriveClaimedAt < :stale)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":token": {"S": token},
                ":now": {"N": str(now)},
                ":failed": {"S": "FAILED"},
                ":stale": {"N": str(now - STALE_CLAIM_SECONDS)},
            },
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return Action("job", job.inference_id, "skipped: already redriven (or being redriven)")
        raise
    source: CopySourceTypeDef = {"Bucket": bucket, "Key": key}
    if job.version_source == "versionId" and job.object_version:
        source["VersionId"] = job.object_version
    if "redriveClaimedAt" in job.extra:
        # An earlier run claimed this job and died: its copy may exist without redrivenTo recorded.
        earlier = _earlier_redrive(s3, bucket, key, job.inference_id)
        if earlier is not None:
            _record_redrive(dynamodb, table, job.inference_id, token, earlier)
            return Action("job", job.inference_id, f"recorded an earlier redrive (version {earlier})")
    head = _head(s3, "the input object version", bucket, key, source.get("VersionId"))
    if isinstance(head, Unreadable):
        _release(dynamodb, table, job.inference_id, token)
        return Action("job", job.inference_id, head.outcome, head.reason)
    current = _head(s3, "the key's current object", bucket, key)
    if isinstance(current, Unreadable):
        _release(dynamodb, table, job.inference_id, token)
        return Action("job", job.inference_id, current.outcome, current.reason)
    if "VersionId" in source and current.get("VersionId") != source["VersionId"]:
        # Copying the old version on top would make it current again: the user's newer upload would be shadowed.
        _release(dynamodb, table, job.inference_id, token)
        return Action(
            "job",
            job.inference_id,
            "skipped: a newer version of the key exists",
            f"current version {current.get('VersionId')}",
        )
    # Copying an object onto itself needs a changed attribute: the metadata names the job it redrives.
    try:
        copied = s3.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource=source,
            MetadataDirective="REPLACE",
            Metadata={**head.get("Metadata", {}), REDRIVE_OF: job.inference_id},
            ContentType=head.get("ContentType", "binary/octet-stream"),
        )
    except ClientError as exc:
        # Refused (permissions, KMS): nothing was copied, so the claim is given back for a later run.
        _release(dynamodb, table, job.inference_id, token)
        return Action("job", job.inference_id, "failed: the copy was refused", str(exc))
    new_version = copied.get("VersionId") or "unversioned"
    try:
        _record_redrive(dynamodb, table, job.inference_id, token, new_version)
    except ClientError as exc:
        # The copy is made (the file is re-submitted); only the bookkeeping failed: a later run finds the copy.
        return Action(
            "job", job.inference_id, f"re-submitted (version {new_version}); not recorded on the job", str(exc)
        )
    return Action(
        "job", job.inference_id, f"re-submitted s3://{bucket}/{key} (version {new_version})", job.failure_reason or ""
    )


@dataclass(frozen=True)
class Unreadable:
    outcome: str
    reason: str


def _head(
    s3: S3Client, what: str, bucket: str, key: str, version_id: str | None = None
) -> HeadObjectOutputTypeDef | Unreadable:
    request: HeadObjectRequestTypeDef = {"Bucket": bucket, "Key": key}
    if version_id is not None:
        request["VersionId"] = version_id
    try:
        return s3.head_object(**request)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code in ("404", "NoSuchKey", "NoSuchVersion"):  # a key deleted since has a delete marker on top
            return Unreadable(f"skipped: {what} is gone", code)
        return Unreadable(f"failed: cannot read {what}", f"{code}: {exc}")


def _record_redrive(dynamodb: DynamoDBClient, table: str, inference_id: str, token: str, version: str) -> None:
    dynamodb.update_item(
        TableName=table,
        Key={"inferenceId": {"S": inference_id}},
        UpdateExpression="SET redrivenTo = :version REMOVE redriveClaim",
        ConditionExpression="redriveClaim = :token",
        ExpressionAttributeValues={":version": {"S": version}, ":token": {"S": token}},
    )


def _release(dynamodb: DynamoDBClient, table: str, inference_id: str, token: str) -> None:
    """Give a claim back (nothing was copied), so that a later run may try again."""
    with contextlib.suppress(ClientError):
        dynamodb.update_item(
            TableName=table,
            Key={"inferenceId": {"S": inference_id}},
            UpdateExpression="REMOVE redriveClaim, redriveClaimedAt",
            ConditionExpression="redriveClaim = :token",
            ExpressionAttributeValues={":token": {"S": token}},
        )


def _earlier_redrive(s3: S3Client, bucket: str, key: str, inference_id: str) -> str | None:
    """The version of ``key`` a previous redrive of ``inference_id`` made, if any (its metadata names the job)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        for version in page.get("Versions", []):
            if version["Key"] != key:
                continue
            head = s3.head_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
            if head.get("Metadata", {}).get(REDRIVE_OF) == inference_id:
                return str(version["VersionId"])
    return None


def _messages(target: Target, visibility: int) -> Iterator[MessageTypeDef]:
    sqs: SQSClient = target.client("sqs")
    url = target.outputs["DeadLetterQueueUrl"]
    seen: set[str] = set()
    while True:
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=visibility, WaitTimeSeconds=1
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield message


def replay(target: Target, body: dict[str, Any], dry_run: bool) -> Action:
    kind = dead_letters.classify(body)
    if kind == "lambda":
        function = body["requestContext"]["functionArn"].rsplit(":$LATEST", 1)[0]
        reason = str(body.get("responsePayload", {}).get("errorMessage", ""))
        if not dry_run:
            target.client("lambda").invoke(
                FunctionName=function, InvocationType="Event", Payload=json.dumps(body["requestPayload"]).encode()
            )
        return Action(
            "lambda", function.rsplit(":", 1)[-1], "would invoke again" if dry_run else "invoked again", reason
        )
    if kind == "sns":
        if not dry_run:
            target.client("sns").publish(TopicArn=body["TopicArn"], Message=body["Message"])
        return Action(
            "sns", body["TopicArn"].rsplit(":", 1)[-1], "would publish again" if dry_run else "published again"
        )
    if kind == "events":
        if not dry_run:
            target.client("sqs").send_message(QueueUrl=target.outputs["ResultsQueueUrl"], MessageBody=json.dumps(body))
        return Action(
            "events",
            str(body["detail"].get("inferenceId", "")),
            "would deliver to the results queue" if dry_run else "delivered to the results queue",
        )
    return Action("unknown", "?", f"left in the queue: {dead_letters.NOT_OURS}")


def replay_dead_letters(target: Target, dry_run: bool, limit: int | None = None) -> list[Action]:
    """Replay the messages that are in the queue now; what arrives meanwhile (a replay that failed again) waits
    for the next run, so a message that keeps failing cannot make a run go round forever. A replay that fails
    leaves its message in the queue, with the error, and the run goes on."""
    sqs: SQSClient = target.client("sqs")
    url = target.outputs["DeadLetterQueueUrl"]
    counts = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    present = sum(
        int(counts.get(name, 0)) for name in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    )
    limit = present if limit is None else min(limit, present)
    actions: list[Action] = []
    listed: list[str] = []  # receipt handles a dry run gives back
    try:
        for message in _messages(target, visibility=DRY_RUN_HIDE_SECONDS if dry_run else 60):
            listed.append(message["ReceiptHandle"])
            if len(actions) >= limit:
                break
            try:
                body = dead_letters.load_body(message["Body"])
            except dead_letters.UnreadableBody as exc:
                actions.append(Action("unknown", message["MessageId"], f"left in the queue: {exc}"))
                continue
            try:
                action = replay(target, body, dry_run)
            except (ClientError, BotoCoreError, KeyError, TypeError) as exc:
                kind = dead_letters.classify(body)
                actions.append(Action(kind, message["MessageId"], "failed: left in the queue", str(exc)))
                continue
            actions.append(action)
            if not dry_run and action.source != "unknown":
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    finally:
        if dry_run:
            for handle in listed:
                with contextlib.suppress(ClientError, BotoCoreError):
                    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return actions

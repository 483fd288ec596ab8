"""Job records and their state machine in DynamoDB: every transition is one conditional write.

See docs/design.md for the diagram. The store never reads before it writes: conditions decide, and a failed
condition returns the record as it was (``ReturnValuesOnConditionCheckFailure``), so a duplicate costs one call.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class JobStatus(StrEnum):
    SUBMITTING = "SUBMITTING"  # claimed by a submitter invocation (leaseExpiresAt); endpoint call may be under way
    SUBMITTED = "SUBMITTED"  # the endpoint accepted the request
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})
OPEN = frozenset({JobStatus.SUBMITTING, JobStatus.SUBMITTED})


@dataclass(slots=True)
class Job:
    """A job record. Attribute names are camelCase in DynamoDB (see :data:`_ATTRIBUTES`)."""

    inference_id: str
    status: JobStatus
    input_location: str | None = None
    endpoint_name: str | None = None
    content_type: str | None = None
    accept: str | None = None
    version_source: str | None = None
    object_version: str | None = None  # the version id / sequencer / ETag the inference id was derived from
    object_size: int | None = None
    output_location: str | None = None
    failure_location: str | None = None
    failure_reason: str | None = None
    submitted_at: str | None = None
    received_time: str | None = None
    completed_time: str | None = None
    duration_ms: int | None = None
    response_content: str | None = None
    response_encoding: str | None = None
    response_content_type: str | None = None
    lease_expires_at: int | None = None  # epoch ms; only meaningful while SUBMITTING
    claim_token: str | None = None
    last_error: str | None = None
    attempts: int = 0
    event_pending: bool = False
    publish_lease_until: int | None = None  # epoch ms; the deadline of the invocation that owes the event
    event_published_at: str | None = None
    origin: str = "s3"  # "s3" (submitted by this pipeline) | "notification" (first seen in a notification)
    expires_at: int | None = None  # epoch seconds; the table's TTL attribute
    extra: dict[str, Any] = field(default_factory=dict)

    def owes_event(self, now_ms: int) -> bool:
        """Finished, its event not yet on the bus, and no live invocation publishing it (lease run out)."""
        return self.status in TERMINAL and self.event_pending and (self.publish_lease_until or 0) < now_ms

    def to_plain(self) -> dict[str, Any]:
        """The record as it is stored (camelCase attributes), as plain JSON-able values."""
        values = asdict(self)
        values.pop("extra")
        plain = {_ATTRIBUTES[name]: value for name, value in values.items() if value is not None}
        plain["status"] = str(self.status)
        plain.update(self.extra)
        return plain

    def to_item(self) -> dict[str, Any]:
        return {name: _serializer.serialize(value) for name, value in self.to_plain().items()}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Job:
        plain = {name: _deserializer.deserialize(value) for name, value in item.items()}
        kwargs: dict[str, Any] = {}
        for attr, name in _ATTRIBUTES.items():
            if name in plain:
                value = plain.pop(name)
                # DynamoDB numbers come back as Decimal.
                kwargs[attr] = int(value) if attr in _INTEGERS else value
        kwargs["status"] = JobStatus(kwargs["status"])
        return cls(**kwargs, extra=plain)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_ATTRIBUTES = {f.name: _camel(f.name) for f in fields(Job) if f.name != "extra"}
_INTEGERS = frozenset(
    {"object_size", "duration_ms", "lease_expires_at", "publish_lease_until", "attempts", "expires_at"}
)


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claimed: bool
    job: Job  # the claimed record, or the one that was there


@dataclass(frozen=True, slots=True)
class FinishResult:
    transitioned: bool  # this call moved the job to its terminal state
    job: Job  # the record after this call (or as it was, when nothing changed)

    def owes_event(self, now_ms: int) -> bool:
        return self.job.owes_event(now_ms)


@dataclass(frozen=True, slots=True)
class Terminal:
    """The data of a terminal transition."""

    status: JobStatus
    completed_time: str
    output_location: str | None = None
    failure_location: str | None = None
    failure_reason: str | None = None
    received_time: str | None = None
    duration_ms: int | None = None
    endpoint_name: str | None = None
    input_location: str | None = None
    response_content: str | None = None
    response_encoding: str | None = None
    response_content_type: str | None = None


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _old_item(exc: ClientError) -> Job | None:
    item: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
    return Job.from_item(item) if item else None


class JobStore:
    """The jobs table. ``client`` is a boto3 DynamoDB client; times are passed in so tests control them."""

    def __init__(self, client: Any, table_name: str, retention_seconds: int) -> None:
        self._client = client
        self._table = table_name
        self._retention = retention_seconds

    def _key(self, inference_id: str) -> dict[str, Any]:
        return {"inferenceId": {"S": inference_id}}

    def _expiry(self, now_s: float) -> int:
        return int(now_s) + self._retention

    def get(self, inference_id: str) -> Job | None:
        item = self._client.get_item(TableName=self._table, Key=self._key(inference_id), ConsistentRead=True).get(
            "Item"
        )
        return Job.from_item(item) if item else None

    def claim(self, job: Job, *, lease_expires_at_ms: int, now_s: float) -> ClaimResult:
        """Create the SUBMITTING record, or take over one whose owner's lease has run out."""
        job.status = JobStatus.SUBMITTING
        job.lease_expires_at = lease_expires_at_ms
        job.claim_token = secrets.token_hex(8)
        job.expires_at = self._expiry(now_s)
        try:
            self._client.put_item(
                TableName=self._table,
                Item=job.to_item(),
                ConditionExpression="attribute_not_exists(inferenceId) OR (#s = :submitting AND leaseExpiresAt < :now)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":submitting": {"S": JobStatus.SUBMITTING},
                    ":now": {"N": str(int(now_s * 1000))},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            existing = _old_item(exc) if _condition_failed(exc) else None
            if existing is None:
                raise
            return ClaimResult(claimed=False, job=existing)
        return ClaimResult(claimed=True, job=job)

    def release(self, job: Job, *, reason: str, now_s: float) -> None:
        """Give a claim back after a transient failure so the next attempt can take it at once."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(job.inference_id),
                UpdateExpression="SET leaseExpiresAt = :zero, lastError = :reason, expiresAt = :exp ADD attempts :one",
                ConditionExpression="#s = :submitting AND claimToken = :token",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":zero": {"N": "0"},
                    ":reason": {"S": reason[:1000]},
                    ":exp": {"N": str(self._expiry(now_s))},
                    ":one": {"N": "1"},
                    ":submitting": {"S": JobStatus.SUBMITTING},
                    ":token": {"S": job.claim_token or ""},
                },
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise

    def mark_submitted(
        self, job: Job, *, output_location: str | None, failure_location: str | None, submitted_at: str, now_s: float
    ) -> bool:
        """SUBMITTING → SUBMITTED. False when a notification already finished the job (fast endpoints)."""
        names = {"#s": "status"}
        values: dict[str, Any] = {
            ":submitted": {"S": JobStatus.SUBMITTED},
            ":submitting": {"S": JobStatus.SUBMITTING},
            ":token": {"S": job.claim_token or ""},
            ":at": {"S": submitted_at},
            ":exp": {"N": str(self._expiry(now_s))},
        }
        sets = ["#s = :submitted", "submittedAt = :at", "expiresAt = :exp"]
        for attr, value in (("outputLocation", output_location), ("failureLocation", failure_location)):
            if value:
                sets.append(f"{attr} = :{attr}")
                values[f":{attr}"] = {"S": value}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(job.inference_id),
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE leaseExpiresAt",
                ConditionExpression="#s = :submitting AND claimToken = :token",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    def finish(
        self, inference_id: str, terminal: Terminal, *, publish_lease_until_ms: int, now_s: float
    ) -> FinishResult:
        """Open → terminal, flagging ``eventPending`` under this invocation's publish lease.

        Returns the record after the write, or as it was when it was not open (a duplicate).
        """
        values: dict[str, Any] = {
            ":status": {"S": terminal.status},
            ":submitting": {"S": JobStatus.SUBMITTING},
            ":submitted": {"S": JobStatus.SUBMITTED},
            ":true": {"BOOL": True},
            ":lease": {"N": str(publish_lease_until_ms)},
            ":exp": {"N": str(self._expiry(now_s))},
        }
        sets = ["#s = :status", "eventPending = :true", "publishLeaseUntil = :lease", "expiresAt = :exp"]
        data = {
            "completedTime": terminal.completed_time,
            "outputLocation": terminal.output_location,
            "failureLocation": terminal.failure_location,
            "failureReason": terminal.failure_reason,
            "receivedTime": terminal.received_time,
            "durationMs": terminal.duration_ms,
            "responseContent": terminal.response_content,
            "responseEncoding": terminal.response_encoding,
            "responseContentType": terminal.response_content_type,
        }
        for name, value in data.items():
            if value is not None:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = _serializer.serialize(value)
        # Locations known from the request (the job) win over what a notification may omit.
        for name, value in (("endpointName", terminal.endpoint_name), ("inputLocation", terminal.input_location)):
            if value is not None:
                sets.append(f"{name} = if_not_exists({name}, :{name})")
                values[f":{name}"] = {"S": value}
        try:
            result = self._client.update_item(
                TableName=self._table,
                Key=self._key(inference_id),
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE leaseExpiresAt, claimToken",
                ConditionExpression="attribute_exists(inferenceId) AND #s IN (:submitting, :submitted)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            existing = _old_item(exc)
            if existing is None:
                return self._record_unknown(inference_id, terminal, publish_lease_until_ms, now_s=now_s)
            return FinishResult(transitioned=False, job=existing)
        return FinishResult(transitioned=True, job=Job.from_item(result["Attributes"]))

    def _record_unknown(
        self, inference_id: str, terminal: Terminal, publish_lease_until_ms: int, *, now_s: float
    ) -> FinishResult:
        """A notification for an id this stack never claimed (someone called the endpoint directly): keep it."""
        job = Job(
            inference_id=inference_id,
            status=terminal.status,
            input_location=terminal.input_location,
            endpoint_name=terminal.endpoint_name,
            output_location=terminal.output_location,
            failure_location=terminal.failure_location,
            failure_reason=terminal.failure_reason,
            received_time=terminal.received_time,
            completed_time=terminal.completed_time,
            duration_ms=terminal.duration_ms,
            response_content=terminal.response_content,
            response_encoding=terminal.response_encoding,
            response_content_type=terminal.response_content_type,
            event_pending=True,
            publish_lease_until=publish_lease_until_ms,
            origin="notification",
            expires_at=self._expiry(now_s),
        )
        try:
            self._client.put_item(
                TableName=self._table,
                Item=job.to_item(),
                ConditionExpression="attribute_not_exists(inferenceId)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            existing = _old_item(exc) if _condition_failed(exc) else None
            if existing is None:
                raise
            # Raced with a claim or another notification: act on what is there now.
            if existing.status in OPEN:
                return self.finish(inference_id, terminal, publish_lease_until_ms=publish_lease_until_ms, now_s=now_s)
            return FinishResult(transitioned=False, job=existing)
        return FinishResult(transitioned=True, job=job)

    def take_publish_lease(self, inference_id: str, *, lease_until_ms: int, now_ms: int) -> Job | None:
        """Take over an owed event whose publisher died (its lease ran out). None when someone else has it."""
        try:
            result = self._client.update_item(
                TableName=self._table,
                Key=self._key(inference_id),
                UpdateExpression="SET publishLeaseUntil = :lease",
                ConditionExpression="eventPending = :true AND (attribute_not_exists(publishLeaseUntil) "
                "OR publishLeaseUntil < :now)",
                ExpressionAttributeValues={
                    ":lease": {"N": str(lease_until_ms)},
                    ":true": {"BOOL": True},
                    ":now": {"N": str(now_ms)},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return None
            raise
        return Job.from_item(result["Attributes"])

    def release_publish_lease(self, inference_id: str) -> None:
        """After a failed publish, let the retry take the event over at once instead of waiting for the lease."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(inference_id),
                UpdateExpression="SET publishLeaseUntil = :zero",
                ConditionExpression="eventPending = :true",
                ExpressionAttributeValues={":zero": {"N": "0"}, ":true": {"BOOL": True}},
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise

    def clear_event_pending(self, inference_id: str, *, published_at: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(inference_id),
                UpdateExpression="SET eventPublishedAt = :at REMOVE eventPending, publishLeaseUntil",
                ConditionExpression="eventPending = :true",
                ExpressionAttributeValues={":at": {"S": published_at}, ":true": {"BOOL": True}},
            )
        except ClientError as exc:
            # Another delivery cleared it first: the event is on the bus, which is all that matters here.
            if not _condition_failed(exc):
                raise

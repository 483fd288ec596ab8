"""Job records and their state machine in DynamoDB: every transition is one conditional write.

See docs/design.md for the diagram. The store never reads before it writes: conditions decide, and a failed
condition returns the record as it was (``ReturnValuesOnConditionCheckFailure``), so a duplicate costs one call.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar, get_args, get_type_hints

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

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
    metadata: dict[str, str] | None = None  # the input version's user metadata (x-amz-meta-*), once read
    output_location: str | None = None
    failure_location: str | None = None
    # InvokeEndpointAsync's OutputLocation, as answered; output_location is the notification's once finished.
    submitted_output_location: str | None = None
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

    def to_item(self) -> dict[str, AttributeValueTypeDef]:
        return {name: _serializer.serialize(value) for name, value in self.to_plain().items()}

    @classmethod
    def from_item(cls, item: Mapping[str, AttributeValueTypeDef]) -> Job:
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
# DynamoDB numbers come back as Decimal: the fields declared ``int`` are turned back into ints.
_INTEGERS = frozenset(name for name, hint in get_type_hints(Job).items() if hint is int or int in get_args(hint))


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


# Field metadata key: a terminal field that does not overwrite a value the job already has.
_KEEP_EXISTING = "keep_existing"


@dataclass(frozen=True, slots=True)
class Terminal:
    """The data of a terminal transition. Every field is the :class:`Job` field of the same name; the ones marked
    ``_KEEP_EXISTING`` (declared last) do not overwrite what the job already has."""

    status: JobStatus
    completed_time: str
    output_location: str | None = None
    failure_location: str | None = None
    failure_reason: str | None = None
    received_time: str | None = None
    duration_ms: int | None = None
    response_content: str | None = None
    response_encoding: str | None = None
    response_content_type: str | None = None
    # Locations known from the request (the job) win over what a notification may omit.
    endpoint_name: str | None = field(default=None, metadata={_KEEP_EXISTING: True})
    input_location: str | None = field(default=None, metadata={_KEEP_EXISTING: True})
    metadata: dict[str, str] | None = field(default=None, metadata={_KEEP_EXISTING: True})

    def job_fields(self) -> dict[str, Any]:
        """The fields as :class:`Job` keyword arguments (``status`` included)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def update_clauses(self) -> tuple[list[str], dict[str, AttributeValueTypeDef]]:
        """``SET`` clauses and their values for every field that has a value (``status`` aside)."""
        sets: list[str] = []
        values: dict[str, AttributeValueTypeDef] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "status" or value is None:
                continue
            name = _ATTRIBUTES[f.name]
            sets.append(
                f"{name} = if_not_exists({name}, :{name})" if f.metadata.get(_KEEP_EXISTING) else f"{name} = :{name}"
            )
            values[f":{name}"] = _serializer.serialize(value)
        return sets, values


Response = TypeVar("Response")


@dataclass(frozen=True, slots=True)
class Refused:
    """A conditional write whose condition did not hold, with the record as it was (when the call asked for it)."""

    error: ClientError
    existing: Job | None

    def existing_or_raise(self) -> Job:
        """The record that stopped the write; a refusal that did not return it is an error to pass on."""
        if self.existing is None:
            raise self.error
        return self.existing


def conditionally(write: Callable[[], Response]) -> Response | Refused:
    """Make one conditional write: its response, or :class:`Refused` when its condition failed (other errors
    propagate)."""
    try:
        return write()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        item: dict[str, AttributeValueTypeDef] | None = exc.response.get("Item")  # type: ignore[assignment]
        return Refused(exc, Job.from_item(item) if item else None)


class JobStore:
    """The jobs table, on a boto3 DynamoDB client; times are passed in so tests control them."""

    def __init__(self, client: DynamoDBClient, table_name: str, retention_seconds: int) -> None:
        self._client = client
        self._table = table_name
        self._retention = retention_seconds

    def _key(self, inference_id: str) -> dict[str, AttributeValueTypeDef]:
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
        written = conditionally(
            lambda: self._client.put_item(
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
        )
        if isinstance(written, Refused):
            return ClaimResult(claimed=False, job=written.existing_or_raise())
        return ClaimResult(claimed=True, job=job)

    def release(self, job: Job, *, reason: str, now_s: float) -> None:
        """Give a claim back after a transient failure so the next attempt can take it at once."""
        conditionally(
            lambda: self._client.update_item(
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
        )

    def mark_submitted(
        self,
        job: Job,
        *,
        output_location: str | None,
        failure_location: str | None,
        submitted_at: str,
        now_s: float,
    ) -> bool:
        """SUBMITTING → SUBMITTED. False when a notification already finished the job (fast endpoints; the claim
        recorded the input's metadata, so its event carries it all the same)."""
        values: dict[str, AttributeValueTypeDef] = {
            ":submitted": {"S": JobStatus.SUBMITTED},
            ":submitting": {"S": JobStatus.SUBMITTING},
            ":token": {"S": job.claim_token or ""},
            ":at": {"S": submitted_at},
            ":exp": {"N": str(self._expiry(now_s))},
        }
        sets = ["#s = :submitted", "submittedAt = :at", "expiresAt = :exp"]
        located = (
            ("outputLocation", output_location),
            ("submittedOutputLocation", output_location),
            ("failureLocation", failure_location),
        )
        for attr, value in located:
            if value:
                sets.append(f"{attr} = :{attr}")
                values[f":{attr}"] = {"S": value}
        written = conditionally(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=self._key(job.inference_id),
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE leaseExpiresAt",
                ConditionExpression="#s = :submitting AND claimToken = :token",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )
        )
        return not isinstance(written, Refused)

    def finish(
        self, inference_id: str, terminal: Terminal, *, publish_lease_until_ms: int, now_s: float
    ) -> FinishResult:
        """Open → terminal, flagging ``eventPending`` under this invocation's publish lease.

        Returns the record after the write, or as it was when it was not open (a duplicate).
        """
        data_sets, data_values = terminal.update_clauses()
        sets = ["#s = :status", "eventPending = :true", "publishLeaseUntil = :lease", "expiresAt = :exp", *data_sets]
        values: dict[str, AttributeValueTypeDef] = {
            ":status": {"S": terminal.status},
            ":submitting": {"S": JobStatus.SUBMITTING},
            ":submitted": {"S": JobStatus.SUBMITTED},
            ":true": {"BOOL": True},
            ":lease": {"N": str(publish_lease_until_ms)},
            ":exp": {"N": str(self._expiry(now_s))},
            **data_values,
        }
        written = conditionally(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=self._key(inference_id),
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE leaseExpiresAt, claimToken",
                ConditionExpression="attribute_exists(inferenceId) AND #s IN (:submitting, :submitted)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )
        if not isinstance(written, Refused):
            return FinishResult(transitioned=True, job=Job.from_item(written["Attributes"]))
        if written.existing is None:
            return self._record_unknown(inference_id, terminal, publish_lease_until_ms, now_s=now_s)
        return FinishResult(transitioned=False, job=written.existing)

    def _record_unknown(
        self, inference_id: str, terminal: Terminal, publish_lease_until_ms: int, *, now_s: float
    ) -> FinishResult:
        """A notification for an id this stack never claimed (someone called the endpoint directly): keep it."""
        job = Job(
            inference_id=inference_id,
            **terminal.job_fields(),
            event_pending=True,
            publish_lease_until=publish_lease_until_ms,
            origin="notification",
            expires_at=self._expiry(now_s),
        )
        written = conditionally(
            lambda: self._client.put_item(
                TableName=self._table,
                Item=job.to_item(),
                ConditionExpression="attribute_not_exists(inferenceId)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )
        if not isinstance(written, Refused):
            return FinishResult(transitioned=True, job=job)
        existing = written.existing_or_raise()
        # Raced with a claim or another notification: act on what is there now.
        if existing.status in OPEN:
            return self.finish(inference_id, terminal, publish_lease_until_ms=publish_lease_until_ms, now_s=now_s)
        return FinishResult(transitioned=False, job=existing)

    def take_publish_lease(self, inference_id: str, *, lease_until_ms: int, now_ms: int) -> Job | None:
        """Take over an owed event whose publisher died (its lease ran out). None when someone else has it."""
        written = conditionally(
            lambda: self._client.update_item(
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
        )
        return None if isinstance(written, Refused) else Job.from_item(written["Attributes"])

    def release_publish_lease(self, inference_id: str) -> None:
        """After a failed publish, let the retry take the event over at once instead of waiting for the lease."""
        conditionally(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=self._key(inference_id),
                UpdateExpression="SET publishLeaseUntil = :zero",
                ConditionExpression="eventPending = :true",
                ExpressionAttributeValues={":zero": {"N": "0"}, ":true": {"BOOL": True}},
            )
        )

    def clear_event_pending(self, inference_id: str, *, published_at: str) -> None:
        """The event is on the bus."""
        # A refusal means another delivery cleared it first: the event is on the bus, which is all that matters.
        conditionally(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=self._key(inference_id),
                UpdateExpression="SET eventPublishedAt = :at REMOVE eventPending, publishLeaseUntil",
                ConditionExpression="eventPending = :true",
                ExpressionAttributeValues={":at": {"S": published_at}, ":true": {"BOOL": True}},
            )
        )

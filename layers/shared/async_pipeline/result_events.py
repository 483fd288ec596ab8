"""The result event this pipeline publishes, once per job, on its EventBridge bus.

Its ``detail`` is described by ``schemas/result-event.schema.json``; tests validate every event against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from async_pipeline.jobs import Job, JobStatus

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

SOURCE = "async-inference-pipeline"
# 1.1 added ``metadata`` (additive: a 1.0 consumer reads 1.1 events unchanged). Fields are added, never removed or
# retyped, within a major version.
SCHEMA_VERSION = "1.1"
DETAIL_TYPES = {JobStatus.COMPLETED: "Inference Completed", JobStatus.FAILED: "Inference Failed"}
# PutEvents takes entries up to 256 KB; leave room for the envelope before dropping an embedded response.
MAX_DETAIL_BYTES = 250_000


class PublishFailed(RuntimeError):
    """EventBridge did not accept the event; the message carries its error code."""


@dataclass(frozen=True, slots=True)
class ResultEvent:
    detail_type: str
    detail: dict[str, Any]

    @property
    def inference_id(self) -> str:
        return str(self.detail["inferenceId"])

    @property
    def status(self) -> str:
        return str(self.detail.get("status"))

    @property
    def input_location(self) -> str | None:
        return _optional_str(self.detail.get("inputLocation"))

    @property
    def location(self) -> str | None:
        """Where the result is: the output of a COMPLETED event, the failure object of a FAILED one."""
        key = "outputLocation" if self.status == JobStatus.COMPLETED else "failureLocation"
        return _optional_str(self.detail.get(key))

    @property
    def failure_reason(self) -> str | None:
        return _optional_str(self.detail.get("failureReason"))

    @property
    def metadata(self) -> dict[str, str] | None:
        """The input's user metadata (``x-amz-meta-*``, keys without the prefix); None when the pipeline could not
        read it (the version was gone before it was read, or the job was first seen in a notification)."""
        value = self.detail.get("metadata")
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None

    def to_entry(self, bus_name: str) -> PutEventsRequestEntryTypeDef:
        return {
            "Source": SOURCE,
            "DetailType": self.detail_type,
            "Detail": json.dumps(self.detail, separators=(",", ":")),
            "EventBusName": bus_name,
        }


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def from_envelope(envelope: dict[str, Any]) -> ResultEvent:
    """The event as a consumer receives it from EventBridge (e.g. the results queue's message body)."""
    if envelope.get("source") != SOURCE or envelope.get("detail-type") not in DETAIL_TYPES.values():
        raise ValueError(f"not a result event of this pipeline: {envelope.get('source')}/{envelope.get('detail-type')}")
    detail = envelope.get("detail")
    if not isinstance(detail, dict):
        raise ValueError("result event without a detail object")
    return ResultEvent(str(envelope["detail-type"]), detail)


def build(job: Job) -> ResultEvent:
    """The event for a terminal job. Built from the record alone, so a retry rebuilds the same event."""
    if job.status not in DETAIL_TYPES:
        raise ValueError(f"job {job.inference_id} is {job.status}, not terminal")
    detail: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "inferenceId": job.inference_id,
        "status": str(job.status),
        "endpointName": job.endpoint_name,
        "inputLocation": job.input_location,
        "receivedTime": job.received_time,
        "completedTime": job.completed_time,
        "durationMs": job.duration_ms,
    }
    if job.metadata is not None:
        detail["metadata"] = job.metadata
    if job.status is JobStatus.COMPLETED:
        detail["outputLocation"] = job.output_location
    else:
        detail["failureLocation"] = job.failure_location
        detail["failureReason"] = job.failure_reason or "unknown"
    if job.response_content is not None:
        detail["inferenceResponse"] = {
            "content": job.response_content,
            "encoding": job.response_encoding,
            "contentType": job.response_content_type,
        }
        if len(json.dumps(detail)) > MAX_DETAIL_BYTES:
            del detail["inferenceResponse"]
            detail["inferenceResponseOmitted"] = "larger than an EventBridge entry allows; read the output object"
    return ResultEvent(DETAIL_TYPES[job.status], detail)


class EventPublisher:
    """Puts result events on the bus."""

    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, event: ResultEvent) -> None:
        response = self._client.put_events(Entries=[event.to_entry(self._bus)])
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise PublishFailed(
                f"PutEvents rejected the result event of {event.inference_id}: "
                f"{entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            )

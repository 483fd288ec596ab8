"""SageMaker asynchronous inference notifications (the SNS ``Message`` JSON), parsed and built.

Parsing follows what AWS documents and what real messages were observed to carry; where the reference marks a
field UNVERIFIED (``failureLocation`` top-level or inside ``responseParameters``, ``responseBody`` as an object or a
string) both forms are accepted. The local endpoint emulator builds its messages with :meth:`to_message`, so the
two directions cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

EVENT_SOURCE = "aws:sagemaker"
INFERENCE_RESULT = "InferenceResult"
TEST_NOTIFICATION = "TestNotification"
STATUS_COMPLETED = "Completed"
STATUS_FAILED = "Failed"
UNKNOWN_FAILURE = "SageMaker reported a failure without a failureReason"


class MalformedNotification(ValueError):
    """The message is not a SageMaker async notification this pipeline can act on; the message says why."""


@dataclass(frozen=True, slots=True)
class InferenceResponse:
    """The model's response embedded in the notification (``IncludeInferenceResponseIn``, ≤ 128 KB)."""

    content: str
    encoding: str | None = None  # "BASE64" when content is base64; None when it came as plain text
    message: str | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class TestNotification:
    """Sent on CreateEndpoint/UpdateEndpoint to check the topic; carries no inference."""

    event_time: str | None = None

    def to_message(self) -> dict[str, Any]:
        return {"eventVersion": "1.0", "eventSource": EVENT_SOURCE, "eventName": TEST_NOTIFICATION}


@dataclass(frozen=True, slots=True)
class InferenceNotification:
    inference_id: str
    invocation_status: str
    endpoint_name: str | None = None
    input_location: str | None = None
    output_location: str | None = None
    failure_location: str | None = None
    failure_reason: str | None = None
    received_time: str | None = None
    event_time: str | None = None
    aws_region: str | None = None
    request_content_type: str | None = None
    accept: str | None = None
    response_content_type: str | None = None
    custom_attributes: str | None = None
    response: InferenceResponse | None = None

    @property
    def succeeded(self) -> bool:
        # AWS-authored consumers treat anything but "completed" (any case) as a failure.
        return self.invocation_status.lower() == STATUS_COMPLETED.lower()

    @property
    def duration_ms(self) -> int | None:
        return duration_ms(self.received_time, self.event_time)

    def to_message(self) -> dict[str, Any]:
        """The message as SageMaker publishes it (success: documented example; error: observed shape)."""
        request: dict[str, Any] = {}
        if self.request_content_type is not None:
            request["contentType"] = self.request_content_type
        if self.accept is not None:
            request["accept"] = self.accept
        if self.custom_attributes is not None:
            request["customAttributes"] = self.custom_attributes
        request["endpointName"] = self.endpoint_name
        request["inputLocation"] = self.input_location
        message: dict[str, Any] = {
            "awsRegion": self.aws_region,
            "eventTime": self.event_time,
            "receivedTime": self.received_time,
            "invocationStatus": self.invocation_status,
            "requestParameters": request,
        }
        response: dict[str, Any] = {}
        if self.response_content_type is not None:
            response["contentType"] = self.response_content_type
        if self.output_location is not None:
            response["outputLocation"] = self.output_location
        if self.failure_location is not None:
            response["failureLocation"] = self.failure_location
        if response:
            message["responseParameters"] = response
        if not self.succeeded:
            message["failureReason"] = self.failure_reason or UNKNOWN_FAILURE
        if self.response is not None:
            body: dict[str, Any] = {"content": self.response.content}
            if self.response.message is not None:
                body["message"] = self.response.message
            if self.response.encoding is not None:
                body["encoding"] = self.response.encoding
            message["responseBody"] = body
        message.update(
            {
                "inferenceId": self.inference_id,
                "eventVersion": "1.0",
                "eventSource": EVENT_SOURCE,
                "eventName": INFERENCE_RESULT,
            }
        )
        return message


Notification = InferenceNotification | TestNotification


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``, as SageMaker writes its times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def duration_ms(start: str | None, end: str | None) -> int | None:
    began, ended = parse_time(start), parse_time(end)
    if began is None or ended is None:
        return None
    return max(0, round((ended - began).total_seconds() * 1000))


def _str(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return value if isinstance(value, str) and value else None


def _response(value: Any, content_type: str | None) -> InferenceResponse | None:
    if value is None:
        return None
    if isinstance(value, str):
        return InferenceResponse(content=value, content_type=content_type)
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return InferenceResponse(
            content=value["content"],
            encoding=_str(value, "encoding"),
            message=_str(value, "message"),
            content_type=content_type,
        )
    raise MalformedNotification("responseBody is neither a string nor an object with 'content'")


def parse_notification(message: str | Mapping[str, Any]) -> Notification:
    """Parse an SNS ``Message``; raise :class:`MalformedNotification` with the reason when it cannot be used."""
    if isinstance(message, str):
        try:
            decoded = json.loads(message)
        except ValueError as exc:
            raise MalformedNotification(f"message is not JSON: {exc}") from exc
    else:
        decoded = message
    if not isinstance(decoded, Mapping):
        raise MalformedNotification("message is not a JSON object")
    source = decoded.get("eventSource")
    if source != EVENT_SOURCE:
        raise MalformedNotification(f"eventSource is {source!r}, not {EVENT_SOURCE!r}")
    name = decoded.get("eventName")
    if name == TEST_NOTIFICATION:
        return TestNotification(event_time=_str(decoded, "eventTime"))
    if name != INFERENCE_RESULT:
        raise MalformedNotification(f"unknown eventName {name!r}")
    inference_id = _str(decoded, "inferenceId")
    if inference_id is None:
        raise MalformedNotification("InferenceResult without inferenceId")
    status = _str(decoded, "invocationStatus")
    if status is None:
        raise MalformedNotification(f"InferenceResult {inference_id} without invocationStatus")
    request = decoded.get("requestParameters") or {}
    response = decoded.get("responseParameters") or {}
    if not isinstance(request, Mapping) or not isinstance(response, Mapping):
        raise MalformedNotification("requestParameters/responseParameters are not objects")
    return InferenceNotification(
        inference_id=inference_id,
        invocation_status=status,
        endpoint_name=_str(request, "endpointName"),
        input_location=_str(request, "inputLocation"),
        output_location=_str(response, "outputLocation"),
        failure_location=_str(decoded, "failureLocation") or _str(response, "failureLocation"),
        failure_reason=_str(decoded, "failureReason"),
        received_time=_str(decoded, "receivedTime"),
        event_time=_str(decoded, "eventTime"),
        aws_region=_str(decoded, "awsRegion"),
        request_content_type=_str(request, "contentType"),
        accept=_str(request, "accept"),
        response_content_type=_str(response, "contentType"),
        custom_attributes=_str(request, "customAttributes"),
        response=_response(decoded.get("responseBody"), _str(response, "contentType")),
    )

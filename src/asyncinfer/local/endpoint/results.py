"""Settling a request: write the output (or the failure object) to S3, then publish the success (or error)
notification, built by :func:`notification_for`, to the endpoint's topic.

A refused write is retried after ``retry_delays``; when the output cannot be written the request fails, and when the
failure object cannot be written either the notification names no failureLocation and says why (UNVERIFIED
choices, see docs/local-stack.md).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from async_pipeline import s3_uris
from async_pipeline.notifications import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    InferenceNotification,
    InferenceResponse,
    TestNotification,
    format_time,
)
from botocore.exceptions import BotoCoreError, ClientError

from asyncinfer.local.endpoint.events import EmulatorEvent, EventKind, Published, PublishFailed
from asyncinfer.local.endpoint.failure_reasons import upload_failed_reason, with_unwritten_failure
from asyncinfer.local.endpoint.invocation import Answer, Failure
from asyncinfer.local.endpoint.settings import (
    ERROR_NOTIFICATION_TOPIC,
    SUCCESS_NOTIFICATION_TOPIC,
    EndpointSettings,
    NotificationTopic,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

    from asyncinfer.local.endpoint.events import EventDetail
    from asyncinfer.local.endpoint.hooks import EndpointHooks
    from asyncinfer.local.endpoint.queue import CounterName
    from asyncinfer.local.endpoint.requests import InvocationRequest, WriteTarget

logger = logging.getLogger(__name__)

MAX_RESPONSE_IN_NOTIFICATION = 128 * 1024  # "≤ 128 KB" (reference §2)
# The message observed next to an embedded response body (reference §3.2, UNVERIFIED beyond one observation).
RESPONSE_BODY_MESSAGE = "Check S3 path location(if configured) or Cloudwatch for additional details."
TEXT_PLAIN = "text/plain; charset=utf-8"


class Tally(Protocol):
    """Where the writer counts (the endpoint's queue, whose counters ``stats()`` reports)."""

    def count(self, *counters: CounterName) -> None:
        """Add one to each counter, all at once (``stats()`` never sees some of them without the others)."""
        ...


# --- pure: what is written and what is notified -----------------------------------------------------------------------


def timestamp(seconds: float) -> str:
    return format_time(datetime.fromtimestamp(seconds, UTC))


def embedded_response(settings: EndpointSettings, topic: NotificationTopic, body: bytes) -> InferenceResponse | None:
    """The model's answer as the notification carries it, if IncludeInferenceResponseIn names ``topic`` and the
    answer is small enough."""
    if topic not in settings.include_response_in or len(body) > MAX_RESPONSE_IN_NOTIFICATION:
        return None
    return InferenceResponse(
        content=base64.b64encode(body).decode("ascii"), encoding="BASE64", message=RESPONSE_BODY_MESSAGE
    )


def failure_object(failure: Failure) -> tuple[bytes, str]:
    """The failure object's body and content type: the model's error answer, or else the reason as text."""
    answer = failure.model_answer
    if answer is not None:
        return answer.body, answer.content_type or "application/octet-stream"
    return failure.reason.encode(), TEXT_PLAIN


def notification_for(
    request: InvocationRequest,
    outcome: Answer | Failure,
    *,
    region: str,
    event_time: float,
    failure_location: str | None = None,
) -> InferenceNotification:
    """The success notification of an :class:`Answer`, or the error notification of a :class:`Failure` (whose
    failure object is at ``failure_location``, if it could be written)."""
    answer: Answer | None
    if isinstance(outcome, Answer):
        status, answer, topic, reason = STATUS_COMPLETED, outcome, SUCCESS_NOTIFICATION_TOPIC, None
        output_location, failure_location = request.output_location, None
    else:
        status, answer, topic, reason = STATUS_FAILED, outcome.model_answer, ERROR_NOTIFICATION_TOPIC, outcome.reason
        output_location = None
    return InferenceNotification(
        inference_id=request.inference_id,
        invocation_status=status,
        endpoint_name=request.endpoint_name,
        input_location=request.input_location,
        output_location=output_location,
        failure_location=failure_location,
        failure_reason=reason,
        received_time=timestamp(request.received_at),
        event_time=timestamp(event_time),
        aws_region=region,
        request_content_type=request.content_type,
        accept=request.accept,
        response_content_type=answer.content_type if answer is not None else None,
        custom_attributes=request.custom_attributes,
        response=embedded_response(request.settings, topic, answer.body) if answer is not None else None,
    )


# --- the writer -----------------------------------------------------------------------------------------------------


class ResultWriter:
    """Writes results and publishes notifications for every endpoint of one emulator.

    ``clock`` gives the notifications' eventTime; ``before_write`` of ``hooks`` may refuse a write (fault injection).
    """

    def __init__(
        self,
        s3: S3Client,
        sns: SNSClient,
        region: str,
        hooks: EndpointHooks,
        *,
        clock: Callable[[], float],
        retry_delays: tuple[float, ...],
    ) -> None:
        self._s3 = s3
        self._sns = sns
        self._region = region
        self._hooks = hooks
        self._clock = clock
        self._retry_delays = retry_delays
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Give up on refused writes at once from now on (no more retries)."""
        self._stopping.set()

    def settle(self, request: InvocationRequest, outcome: Answer | Failure, tally: Tally) -> None:
        """Write the result of ``request`` and send its notification (a failed output write fails the request)."""
        if isinstance(outcome, Answer):
            self._succeed(request, outcome, tally)
        else:
            self._fail(request, outcome, tally)

    def _succeed(self, request: InvocationRequest, answer: Answer, tally: Tally) -> None:
        if request.output_location is not None:
            try:
                self._write(tally, request.output_location, answer.body, answer.content_type, "output")
            except (BotoCoreError, ClientError, ValueError) as exc:
                attempts = len(self._retry_delays) + 1
                self._fail(request, Failure(upload_failed_reason(request.output_location, attempts, exc)), tally)
                return
        notification = notification_for(request, answer, region=self._region, event_time=self._clock())
        tally.count("completed")
        self._emit(EventKind.COMPLETED, request.endpoint_name, request.inference_id, notification)
        topic = request.settings.success_topic
        if topic:
            self.publish(tally, request.endpoint_name, request.inference_id, topic, notification.to_message())

    def _fail(self, request: InvocationRequest, failure: Failure, tally: Tally) -> None:
        """Write the failure object (the model's error body, or the reason as text) and send the error notification."""
        failure_location = request.failure_location
        if failure_location is not None:
            data, data_type = failure_object(failure)
            try:
                self._write(tally, failure_location, data, data_type, "failure")
            except (BotoCoreError, ClientError, ValueError) as exc:
                logger.warning("could not write the failure object %s: %s", failure_location, exc)
                # Never point consumers at an object that does not exist, and say why there is none (a consumer
                # that fell back to the FailureLocation of the endpoint call's answer learns it from the reason).
                failure = replace(failure, reason=with_unwritten_failure(failure.reason, failure_location, exc))
                failure_location = None
        notification = notification_for(
            request, failure, region=self._region, event_time=self._clock(), failure_location=failure_location
        )
        if failure.cause in ("expired", "timed_out"):
            tally.count("failed", failure.cause)
        else:
            tally.count("failed")
        kind = EventKind.EXPIRED if failure.cause == "expired" else EventKind.FAILED
        self._emit(kind, request.endpoint_name, request.inference_id, notification)
        topic = request.settings.error_topic
        if topic:
            self.publish(tally, request.endpoint_name, request.inference_id, topic, notification.to_message())

    def publish_test_notifications(self, settings: EndpointSettings, tally: Tally) -> None:
        """A TestNotification to each configured topic (as CreateEndpoint, UpdateEndpoint and
        UpdateEndpointWeightsAndCapacities send)."""
        message = TestNotification().to_message()
        for topic in settings.topics:
            self.publish(tally, settings.name, None, topic, message)

    def publish(
        self,
        tally: Tally,
        endpoint_name: str,
        inference_id: str | None,
        topic: str,
        message: Mapping[str, object],
    ) -> None:
        try:
            self._sns.publish(TopicArn=topic, Message=json.dumps(message))
        except (BotoCoreError, ClientError) as exc:
            # SageMaker counts these (NotificationFailures) and moves on; so does the emulator.
            logger.warning("could not publish to %s: %s", topic, exc)
            tally.count("publish_failed")
            self._emit(EventKind.PUBLISH_FAILED, endpoint_name, inference_id, PublishFailed(topic, str(exc)))
            return
        tally.count("published")
        self._emit(EventKind.PUBLISHED, endpoint_name, inference_id, Published(topic, message))

    def _write(self, tally: Tally, location: str, body: bytes, content_type: str | None, target: WriteTarget) -> None:
        """Write an output or failure object, retrying a refused write (``retry_delays``) before giving up with the
        last error."""
        delays = iter(self._retry_delays)
        while True:
            try:
                self._hooks.before_write(location, target)
                self._put(location, body, content_type)
                return
            except (BotoCoreError, ClientError) as exc:
                delay = next(delays, None)
                if delay is None or self._stopping.is_set():
                    tally.count("upload_failed")  # SageMaker's ResponseUploadFailures (UNVERIFIED)
                    raise
                logger.info("writing %s failed (%s); retrying in %.1f s", location, exc, delay)
                tally.count("upload_retries")
                time.sleep(delay)

    def _put(self, location: str, body: bytes, content_type: str | None) -> None:
        bucket, key = s3_uris.parse_uri(location)
        if content_type:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        else:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body)

    def _emit(self, kind: EventKind, endpoint_name: str, inference_id: str | None, detail: EventDetail) -> None:
        self._hooks.on_event(EmulatorEvent(kind, endpoint_name, inference_id, detail))

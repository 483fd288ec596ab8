"""One request against the model container: fetch the payload, call ``POST /invocations``, judge the answer.

:meth:`Invoker.run` returns the :data:`Outcome` for :mod:`.results` to write and notify: an :class:`Answer`, a
:class:`Failure` (with its failureReason), or None when there is nothing to report (the request went back to the
queue because the container refused the call, or ``stop()`` cut the call).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

from async_pipeline import s3_uris
from botocore.exceptions import BotoCoreError, ClientError

from asyncinfer.local.endpoint.container import ContainerCall, ContainerRefused, ContainerTimeout, ContainerUnreachable
from asyncinfer.local.endpoint.events import EmulatorEvent, EventKind, Held
from asyncinfer.local.endpoint.failure_reasons import (
    download_failed_reason,
    error_reason,
    missing_content_length_reason,
    timeout_reason,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from asyncinfer.local.endpoint.events import EventDetail
    from asyncinfer.local.endpoint.hooks import EndpointHooks
    from asyncinfer.local.endpoint.queue import EndpointQueue
    from asyncinfer.local.endpoint.requests import InvocationRequest

# The model container's base URL, or a function of the endpoint name returning it (asked for each invocation, so a
# restarted container may move).
ContainerUrl: TypeAlias = str | Callable[[str], str]
FailureCause = Literal["error", "timed_out", "expired"]
HOLD_PAUSE_SECONDS = 0.25  # a worker whose container refused a call is out of service for this long


@dataclass(frozen=True, slots=True)
class Answer:
    """What the model answered (its 2xx answer; or, inside a :class:`Failure`, its error answer)."""

    body: bytes
    content_type: str | None


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed request: its failureReason; the model's error answer, if it gave one (that is the failure object)."""

    reason: str
    model_answer: Answer | None = None
    cause: FailureCause = "error"


Outcome: TypeAlias = Answer | Failure | None


class ContainerCalls:
    """The container calls in flight, so that ``stop()`` can cut them (as stopping an instance would)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: set[ContainerCall] = set()
        self._cut = False

    def add(self, call: ContainerCall) -> None:
        with self._lock:
            self._calls.add(call)
            cut = self._cut
        if cut:  # cut_all() already ran: this call must not start
            call.cancel()

    def discard(self, call: ContainerCall) -> None:
        with self._lock:
            self._calls.discard(call)

    def cut_all(self) -> None:
        """Cut every call in flight, and from now on every call as soon as it is added."""
        with self._lock:
            self._cut = True
            calls = list(self._calls)
        for call in calls:
            call.cancel()


class Invoker:
    """Runs requests against the model container (from the workers of every endpoint)."""

    def __init__(
        self, s3: S3Client, container_url: ContainerUrl, hooks: EndpointHooks, *, require_content_length: bool
    ) -> None:
        self._s3 = s3
        self._container_url = container_url
        self._hooks = hooks
        self._require_content_length = require_content_length
        self.calls = ContainerCalls()

    def run(self, request: InvocationRequest, queue: EndpointQueue) -> Outcome:
        self._emit(EventKind.STARTED, request, request)
        try:
            payload = request.body if request.body is not None else self._download(request.input_location or "")
        except (BotoCoreError, ClientError, ValueError) as exc:
            return Failure(download_failed_reason(request.input_location, exc))
        try:
            self._hooks.before_invoke(request)
        except Exception as exc:
            return Failure(str(exc) or type(exc).__name__)
        try:
            target = self._container_url
            call = ContainerCall(target(request.endpoint_name) if callable(target) else target)
        except Exception as exc:
            return Failure(f"ClientError: no model container for {request.endpoint_name}: {exc}")
        self.calls.add(call)
        try:
            reply = call.invoke(payload, container_headers(request), request.invocation_timeout_seconds)
        except ContainerTimeout:
            queue.container_answered()
            if self._cancelled(request, queue, call):
                return None
            return Failure(timeout_reason(request.invocation_timeout_seconds), cause="timed_out")
        except ContainerRefused as exc:
            if self._cancelled(request, queue, call) or self._hold(request, queue):
                return None
            return Failure(str(exc))
        except ContainerUnreachable as exc:
            queue.container_answered()
            return None if self._cancelled(request, queue, call) else Failure(str(exc))
        finally:
            self.calls.discard(call)
        queue.container_answered()
        if not 200 <= reply.status < 300:
            return Failure(error_reason(reply.status, reply.body), Answer(reply.body, reply.content_type))
        if self._require_content_length and not reply.has_content_length and reply.status != 204:
            return Failure(missing_content_length_reason())
        return Answer(reply.body, reply.content_type)

    def _hold(self, request: InvocationRequest, queue: EndpointQueue) -> bool:
        """Put the request back (:meth:`EndpointQueue.hold`) and keep this worker out of service for a moment."""
        if not queue.hold(request):
            return False
        self._emit(EventKind.HELD, request, Held("container refused the call"))
        time.sleep(HOLD_PAUSE_SECONDS)
        return True

    def _cancelled(self, request: InvocationRequest, queue: EndpointQueue, call: ContainerCall) -> bool:
        if not call.cancelled:
            return False
        queue.count("cancelled")
        self._emit(EventKind.CANCELLED, request)
        return True

    def _download(self, location: str) -> bytes:
        bucket, key = s3_uris.parse_uri(location)
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def _emit(self, kind: EventKind, request: InvocationRequest, detail: EventDetail = None) -> None:
        self._hooks.on_event(EmulatorEvent(kind, request.endpoint_name, request.inference_id, detail))


def container_headers(request: InvocationRequest) -> dict[str, str]:
    """The headers of the container call: the request's content type, accept and custom attributes, when given."""
    headers: dict[str, str] = {}
    for name, value in (
        ("Content-Type", request.content_type),
        ("Accept", request.accept),
        ("X-Amzn-SageMaker-Custom-Attributes", request.custom_attributes),
    ):
        if value is not None:
            headers[name] = value
    return headers

"""What the endpoint emulator tells its observers (``on_event``): one event per thing that happens, typed payloads.

Standard library only at run time (the fault hooks of the Lambda worker processes import it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from async_pipeline.notifications import InferenceNotification

    from asyncinfer.local.endpoint.requests import InvocationRequest
    from asyncinfer.local.endpoint.settings import EndpointSettings


class EventKind(StrEnum):
    """What happened; the payload (``EmulatorEvent.detail``) each kind carries is in brackets."""

    REGISTERED = "registered"  # the endpoint is served [EndpointSettings]
    UPDATED = "updated"  # its configuration was read again [EndpointSettings]
    INSTANCES = "instances"  # scaled [InstanceCount]
    ACCEPTED = "accepted"  # queued [InvocationRequest]
    STARTED = "started"  # taken by a worker [InvocationRequest]
    HELD = "held"  # back to the head of the queue: the container refused the call [Held]
    COMPLETED = "completed"  # output written [InferenceNotification]
    FAILED = "failed"  # failure written (or not writable) [InferenceNotification]
    EXPIRED = "expired"  # RequestTTLSeconds passed while queued; a failure too [InferenceNotification]
    CANCELLED = "cancelled"  # cut in flight by stop() [None]
    DROPPED = "dropped"  # still queued at stop() [None]
    PUBLISHED = "published"  # a notification went out [Published]
    PUBLISH_FAILED = "publish_failed"  # SNS refused it [PublishFailed]


@dataclass(frozen=True, slots=True)
class InstanceCount:
    instances: int


@dataclass(frozen=True, slots=True)
class Held:
    reason: str


@dataclass(frozen=True, slots=True)
class Published:
    topic: str
    message: Mapping[str, object]  # the notification, as published (JSON)


@dataclass(frozen=True, slots=True)
class PublishFailed:
    topic: str
    error: str


if TYPE_CHECKING:
    EventDetail: TypeAlias = (
        EndpointSettings
        | InvocationRequest
        | InferenceNotification
        | InstanceCount
        | Held
        | Published
        | PublishFailed
        | None
    )


@dataclass(frozen=True, slots=True)
class EmulatorEvent:
    kind: EventKind
    endpoint_name: str
    inference_id: str | None = None
    detail: EventDetail = None

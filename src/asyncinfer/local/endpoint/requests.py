"""An accepted InvokeEndpointAsync request, as queued, and the names of its result objects (pure)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from asyncinfer.local.endpoint.protocol import DEFAULT_TIMEOUT_SECONDS, DEFAULT_TTL_SECONDS, InvokeParams, join_location
from asyncinfer.local.endpoint.settings import EndpointSettings

# The two objects a request may leave in S3: the model's answer, or the failure (what ``before_write`` is told).
WriteTarget = Literal["output", "failure"]


@dataclass(frozen=True, slots=True)
class InvocationRequest:
    """An accepted request, as queued (also what ``before_invoke`` receives). ``received_at`` is ``clock()``."""

    endpoint_name: str
    inference_id: str
    input_location: str | None
    content_type: str | None
    accept: str | None
    custom_attributes: str | None
    request_ttl_seconds: int
    invocation_timeout_seconds: int
    output_location: str | None
    failure_location: str | None
    received_at: float
    settings: EndpointSettings = field(repr=False)
    body: bytes | None = field(default=None, repr=False)

    def expired(self, now: float) -> bool:
        return now - self.received_at > self.request_ttl_seconds


def result_locations(settings: EndpointSettings, params: InvokeParams, object_id: str) -> tuple[str | None, str | None]:
    """Where the output and the failure object will go (None: no such path configured).

    ``{S3OutputPath}/[{S3OutputPathExtension}/]{object_id}.out`` and ``{S3FailurePath}/[…/]{object_id}-error.out``;
    with ``Filename``, the output is named exactly that and the failure ``{stem}-error.out``.
    """
    if params.filename:
        output_name, failure_stem = params.filename, params.filename.split(".", 1)[0]
    else:
        output_name, failure_stem = f"{object_id}.out", object_id
    extension = params.s3_output_path_extension
    output = join_location(settings.output_path, extension, output_name) if settings.output_path else None
    failure = (
        join_location(settings.failure_path, extension, f"{failure_stem}-error.out") if settings.failure_path else None
    )
    return output, failure


def new_request(params: InvokeParams, settings: EndpointSettings, received_at: float) -> InvocationRequest:
    """The request to queue for validated ``params``: its inference id (generated when not given), defaults applied,
    result locations named with a fresh uuid that is not the inference id (real output names are unrelated uuids)."""
    output_location, failure_location = result_locations(settings, params, str(uuid.uuid4()))
    return InvocationRequest(
        endpoint_name=settings.name,
        inference_id=params.inference_id or str(uuid.uuid4()),
        input_location=params.input_location,
        content_type=params.content_type,
        accept=params.accept,
        custom_attributes=params.custom_attributes,
        request_ttl_seconds=params.request_ttl_seconds or DEFAULT_TTL_SECONDS,
        invocation_timeout_seconds=params.invocation_timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
        output_location=output_location,
        failure_location=failure_location,
        received_at=received_at,
        settings=settings,
        body=params.body,
    )

"""Small builders the scaling tests share."""

from __future__ import annotations

from asyncinfer.local.endpoint.requests import InvocationRequest
from asyncinfer.local.endpoint.settings import EndpointSettings

SETTINGS = EndpointSettings(
    name="ep",
    account="123456789012",
    config_name="ep-config",
    variant_name="AllTraffic",
    output_path="s3://bucket/output/",
    failure_path="s3://bucket/failure/",
    success_topic=None,
    error_topic=None,
    include_response_in=frozenset(),
    max_concurrent_invocations_per_instance=1,
    initial_instance_count=1,
)


def request(inference_id: str, received_at: float) -> InvocationRequest:
    return InvocationRequest(
        endpoint_name="ep",
        inference_id=inference_id,
        input_location=None,
        content_type="text/csv",
        accept=None,
        custom_attributes=None,
        request_ttl_seconds=3600,
        invocation_timeout_seconds=900,
        output_location=None,
        failure_location=None,
        received_at=received_at,
        settings=SETTINGS,
        body=b"1,2",
    )

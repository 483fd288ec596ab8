"""Running one request against the container (asyncinfer.local.endpoint.invocation): the payload, the container's
answers, the invocation timeout."""

from __future__ import annotations

import time

from asyncinfer.local.endpoint.emulator import AsyncEndpointEmulator
from asyncinfer.local.endpoint.invocation import container_headers
from asyncinfer.local.endpoint.protocol import InvokeParams
from asyncinfer.local.endpoint.requests import new_request
from asyncinfer.local.endpoint.settings import ControlPlane, EndpointSettings
from tests.unit.endpoint.world import (
    BUCKET,
    World,
    notification,
    runtime,
)


def test_reads_an_input_key_with_unicode_spaces_and_plus(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    source = world.put_input("dossier/résumé 日本 +%20.csv", b"7,8,9")
    reply = runtime(emulator.url).invoke_endpoint_async(
        EndpointName=ep.name, InputLocation=source, ContentType="text/csv"
    )
    note = notification(world.messages(ep.success_queue, 1)[0])
    assert note.input_location == source
    assert world.container.requests[0]["body"] == b"7,8,9"
    assert world.s3_object(reply["OutputLocation"])[0] == b"0.5\n"


def test_a_missing_input_object_fails_the_request(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    missing = f"s3://{BUCKET}/inputs/never-uploaded.csv"
    reply = runtime(emulator.url).invoke_endpoint_async(EndpointName=ep.name, InputLocation=missing)
    note = notification(world.messages(ep.error_queue, 1)[0])
    assert note.failure_reason is not None and note.failure_reason.startswith(
        f"ClientError: Failed to download the request payload from {missing}"
    )
    assert note.failure_location == reply["FailureLocation"]
    assert world.container.requests == []


def test_a_chunked_container_response_fails_as_on_sagemaker(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    runtime(emulator.url).invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="application/x-chunked")
    note = notification(world.messages(ep.error_queue, 1)[0])
    assert note.failure_reason is not None and "Content-Length" in note.failure_reason


def test_invocation_timeout(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    started = time.monotonic()
    reply = runtime(emulator.url).invoke_endpoint_async(
        EndpointName=ep.name, Body=b"sleep:3", ContentType="text/csv", InvocationTimeoutSeconds=1
    )
    note = notification(world.messages(ep.error_queue, 1)[0])
    assert time.monotonic() - started < 2.8  # failed at the timeout, not when the model finished
    assert note.failure_reason is not None and "InvocationTimeoutSeconds (1 s)" in note.failure_reason
    assert note.response is None and note.response_content_type is None
    body, content_type = world.s3_object(reply["FailureLocation"])
    assert body.decode() == note.failure_reason and content_type.startswith("text/plain")
    assert emulator.stats(ep.name)["timed_out"] == 1


def test_the_container_gets_only_the_headers_the_request_has(world: World) -> None:
    ep = world.endpoint()
    request = new_request(
        InvokeParams(ep.name, content_type="text/csv", custom_attributes="a=b", body=b"1"),
        _describe(world, ep.name),
        received_at=0.0,
    )
    assert container_headers(request) == {"Content-Type": "text/csv", "X-Amzn-SageMaker-Custom-Attributes": "a=b"}


def _describe(world: World, name: str) -> EndpointSettings:
    return ControlPlane(world.client("sagemaker"), world.client("sts")).describe(name)


def test_the_input_location_is_read_when_the_request_runs_not_when_it_is_accepted(
    world: World, emulator: AsyncEndpointEmulator
) -> None:
    """As on SageMaker (the request names no version, and S3 returns the current one): a key overwritten while the
    request waits in the queue (here: no instance yet) is inferred as its new content, and a key deleted meanwhile
    fails the request. Inline bodies are what the request carried, whatever happens to any key."""
    ep = world.endpoint()
    emulator.register_endpoint(ep.name)
    emulator.set_instance_count(ep.name, 0)
    changed = world.put_input("waiting/changed.csv", b"1,1,1")
    deleted = world.put_input("waiting/deleted.csv", b"2,2,2")
    client = runtime(emulator.url)
    for location in (changed, deleted):
        client.invoke_endpoint_async(EndpointName=ep.name, InputLocation=location, ContentType="text/csv")
    client.invoke_endpoint_async(EndpointName=ep.name, Body=b"3,3,3", ContentType="text/csv")
    world.put_input("waiting/changed.csv", b"9,9,9")
    world.client("s3").delete_object(Bucket=BUCKET, Key="waiting/deleted.csv")
    emulator.set_instance_count(ep.name, 1)
    world.messages(ep.success_queue, 2)
    [failed] = world.messages(ep.error_queue, 1)
    assert sorted(r["body"] for r in world.container.requests) == [b"3,3,3", b"9,9,9"]
    reason = notification(failed).failure_reason
    assert reason is not None
    assert reason.startswith(f"ClientError: Failed to download the request payload from {deleted}")

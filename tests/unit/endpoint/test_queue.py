"""The endpoint's queue (asyncinfer.local.endpoint.queue): concurrency, scale to zero, RequestTTLSeconds."""

from __future__ import annotations

import time

from asyncinfer.local.endpoint.emulator import AsyncEndpointEmulator, EmulatorOptions
from asyncinfer.local.endpoint.protocol import InvokeParams
from asyncinfer.local.endpoint.queue import EndpointQueue
from asyncinfer.local.endpoint.requests import new_request
from asyncinfer.local.endpoint.settings import EndpointSettings
from tests.unit.endpoint.world import (
    ACCOUNT,
    REGION,
    FakeClock,
    World,
    notification,
    runtime,
    wait_for,
)


def test_concurrency_is_instances_times_max_concurrent_invocations(
    world: World, emulator: AsyncEndpointEmulator
) -> None:
    ep = world.endpoint(instances=2, concurrency=2)
    rt = runtime(emulator.url)
    container = world.container
    wait_for(lambda: container.current == 0)  # nothing left over from other tests
    container.reset()
    container.gate.clear()
    for _ in range(8):
        rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")
    wait_for(lambda: container.current == 4)
    time.sleep(0.3)  # room for a fifth request, were the pool too large
    assert container.max_seen == 4
    stats = emulator.stats(ep.name)
    assert (stats["in_flight"], stats["queued"], stats["backlog"], stats["workers"]) == (4, 4, 8, 4)
    container.gate.set()
    world.messages(ep.success_queue, 8)

    # Scaling in resizes the pool: 1 instance x 2.
    emulator.set_instance_count(ep.name, 1)
    container.reset()
    container.gate.clear()
    for _ in range(4):
        rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")
    wait_for(lambda: container.current == 2)
    time.sleep(0.3)
    assert container.max_seen == 2
    container.gate.set()
    world.messages(ep.success_queue, 4)
    assert emulator.stats(ep.name)["completed"] == 12


def test_scaled_to_zero_requests_wait_then_run(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    emulator.register_endpoint(ep.name)
    emulator.set_instance_count(ep.name, 0)
    rt = runtime(emulator.url)
    for _ in range(3):
        rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")
    assert not emulator.wait_until_idle(ep.name, 0.3)
    assert world.container.requests == []
    assert emulator.stats(ep.name)["queued"] == 3
    emulator.set_instance_count(ep.name, 1)
    assert len(world.messages(ep.success_queue, 3)) == 3
    assert emulator.stats(ep.name)["backlog"] == 0


def test_request_ttl_expires_queued_requests(world: World, emulator: AsyncEndpointEmulator, clock: FakeClock) -> None:
    ep = world.endpoint()
    emulator.register_endpoint(ep.name)
    emulator.set_instance_count(ep.name, 0)
    rt = runtime(emulator.url)
    short = rt.invoke_endpoint_async(
        EndpointName=ep.name, Body=b"1", ContentType="text/csv", RequestTTLSeconds=60, InferenceId="short"
    )
    rt.invoke_endpoint_async(
        EndpointName=ep.name, Body=b"1", ContentType="text/csv", RequestTTLSeconds=120, InferenceId="long"
    )
    clock.advance(61)
    emulator.sweep_expired(ep.name)  # the background sweeper would do it within sweep_interval
    note = notification(world.messages(ep.error_queue, 1)[0])
    assert note.inference_id == "short"
    assert note.failure_reason is not None and "RequestTTLSeconds (60 s)" in note.failure_reason
    assert note.failure_location == short["FailureLocation"]
    assert note.duration_ms is not None and note.duration_ms >= 61_000
    assert world.s3_object(short["FailureLocation"])[0].decode() == note.failure_reason
    stats = emulator.stats(ep.name)
    assert (stats["expired"], stats["failed"], stats["queued"]) == (1, 1, 1)

    # The other one is still within its TTL and runs once there is capacity again.
    emulator.set_instance_count(ep.name, 1)
    assert notification(world.messages(ep.success_queue, 1)[0]).inference_id == "long"
    assert [r["body"] for r in world.container.requests] == [b"1"]


def test_background_sweeper_expires_without_instances(world: World, clock: FakeClock) -> None:
    ep = world.endpoint()
    with AsyncEndpointEmulator(
        world.moto_url,
        REGION,
        world.container.url,
        clock=clock,
        options=EmulatorOptions(sweep_interval=0.05),
        session=world.session,
    ) as emu:
        emu.register_endpoint(ep.name)
        emu.set_instance_count(ep.name, 0)
        runtime(emu.url).invoke_endpoint_async(EndpointName=ep.name, Body=b"1", RequestTTLSeconds=60)
        clock.advance(60.5)
        note = notification(world.messages(ep.error_queue, 1)[0])
        assert "RequestTTLSeconds" in (note.failure_reason or "")
        assert emu.stats(ep.name)["expired"] == 1


def test_a_queue_without_instances_holds_sweeps_and_drops() -> None:
    processed: list[str] = []
    expired: list[str] = []
    queue = EndpointQueue(
        "ep",
        2,
        0,
        process=lambda request, _: processed.append(request.inference_id),
        expire=lambda request, _: expired.append(request.inference_id),
        clock=lambda: 1000.0,
        sweep_interval=0.05,
        container_down_grace_seconds=60.0,
    )
    settings = EndpointSettings("ep", ACCOUNT, "ep", "AllTraffic", None, None, None, None, frozenset(), 2, 0)
    for inference_id, ttl in (("a", 60), ("b", 120), ("c", 60)):
        params = InvokeParams("ep", inference_id=inference_id, request_ttl_seconds=ttl, body=b"1")
        assert queue.put(new_request(params, settings, received_at=1000.0))
    assert queue.hold(new_request(InvokeParams("ep", inference_id="d", body=b"1"), settings, received_at=1000.0))
    stats = queue.stats()
    assert (stats["queued"], stats["workers"], stats["accepted"], stats["container_refused"]) == (4, 0, 3, 1)
    assert queue.sweep(ahead_seconds=90) == 2 and expired == ["a", "c"]
    dropped = queue.stop()
    assert [r.inference_id for r in dropped] == ["d", "b"]  # a held request goes back to the head
    assert not queue.put(dropped[0]) and queue.stats()["dropped"] == 2
    assert processed == [] and queue.wait_until_idle(0)

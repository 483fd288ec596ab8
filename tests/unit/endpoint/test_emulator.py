"""The endpoint emulator as a whole (asyncinfer.local.endpoint.emulator): a request from the unchanged boto3 client to
its notification, hooks and observers, shutdown."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from asyncinfer.local.endpoint.emulator import AsyncEndpointEmulator
from asyncinfer.local.endpoint.events import EmulatorEvent, EventKind
from asyncinfer.local.endpoint.hooks import BaseEndpointHooks, HookList
from asyncinfer.local.endpoint.protocol import ApiError, InvokeParams
from asyncinfer.local.endpoint.requests import InvocationRequest
from tests.unit.endpoint.world import (
    REGION,
    FakeClock,
    World,
    notification,
    runtime,
    wait_for,
)

# --- from request to notification -------------------------------------------------------------------------------------


def test_accepts_with_202_and_the_locations_then_completes(
    world: World, emulator: AsyncEndpointEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = world.endpoint()
    emulator.register_endpoint(ep.name)
    source = world.put_input("inputs/a.csv")
    # The unchanged client, pointed at the emulator by the environment alone.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", emulator.url)
    reply = runtime().invoke_endpoint_async(
        EndpointName=ep.name,
        InputLocation=source,
        ContentType="text/csv",
        Accept="text/csv",
        CustomAttributes="trace=abc",
        InferenceId="req-0001",
    )
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert reply["InferenceId"] == "req-0001"
    output, failure = reply["OutputLocation"], reply["FailureLocation"]
    assert output.startswith(ep.output_path) and output.endswith(".out")
    assert failure.startswith(f"{ep.failure_path}/") and failure.endswith("-error.out")
    assert "req-0001" not in output  # an unrelated uuid, as observed on SageMaker

    (raw,) = world.messages(ep.success_queue, 1)
    assert raw["eventSource"] == "aws:sagemaker" and raw["eventName"] == "InferenceResult"
    note = notification(raw)
    assert note.succeeded and note.invocation_status == "Completed"
    assert note.inference_id == "req-0001"
    assert note.output_location == output
    assert note.input_location == source
    assert note.endpoint_name == ep.name
    assert note.aws_region == REGION
    assert (note.request_content_type, note.accept, note.custom_attributes) == ("text/csv", "text/csv", "trace=abc")
    assert note.response_content_type == "text/csv"
    assert note.response is None  # IncludeInferenceResponseIn is empty
    assert note.duration_ms is not None and note.duration_ms >= 0
    assert world.s3_object(output) == (b"0.5\n", "text/csv")

    (seen,) = world.container.requests
    assert seen["body"] == b"1.5,16.0,14,23.0"
    assert seen["headers"]["Content-Type"] == "text/csv"
    assert seen["headers"]["Accept"] == "text/csv"
    assert seen["headers"]["X-Amzn-SageMaker-Custom-Attributes"] == "trace=abc"
    stats = emulator.stats(ep.name)
    assert (stats["accepted"], stats["completed"], stats["failed"], stats["backlog"]) == (1, 1, 0, 0)


# --- hooks and observers ----------------------------------------------------------------------------------------------


def test_before_invoke_hook_can_fail_an_invocation_and_events_are_observable(world: World, clock: FakeClock) -> None:
    ep = world.endpoint()
    events: list[EmulatorEvent] = []

    class Inject(BaseEndpointHooks):
        def before_invoke(self, request: InvocationRequest) -> None:
            if request.inference_id == "doomed":
                raise RuntimeError("InjectedFault: instance lost")

        def on_event(self, event: EmulatorEvent) -> None:
            events.append(event)

    with AsyncEndpointEmulator(
        world.moto_url,
        REGION,
        lambda name: world.container.url,
        clock=clock,
        hooks=[Inject()],
        session=world.session,
    ) as emu:
        rt = runtime(emu.url)
        rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv", InferenceId="doomed")
        note = notification(world.messages(ep.error_queue, 1)[0])
        assert note.failure_reason == "InjectedFault: instance lost"
        assert emu.wait_until_idle(ep.name, 5)
    assert world.container.requests == []
    kinds = [e.kind for e in events if e.inference_id == "doomed"]
    assert kinds[:3] == ["accepted", "started", "failed"] and "published" in kinds


def test_every_registered_hook_is_called_in_order_and_none_replaces_another(
    world: World, emulator: AsyncEndpointEmulator
) -> None:
    ep = world.endpoint()
    seen: list[str] = []

    class Observer(BaseEndpointHooks):
        def __init__(self, name: str) -> None:
            self.name = name

        def on_event(self, event: EmulatorEvent) -> None:
            if event.kind is EventKind.ACCEPTED:
                seen.append(self.name)

    class Refuser(BaseEndpointHooks):
        def before_accept(self, params: InvokeParams) -> None:
            if params.inference_id == "refused":
                raise ApiError(400, "ThrottlingException", "Rate exceeded")

    emulator.add_hooks(Observer("first"))
    emulator.add_hooks(Observer("second"), Refuser())
    rt = runtime(emulator.url)
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")
    assert seen == ["first", "second"]
    with pytest.raises(ClientError) as caught:
        rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv", InferenceId="refused")
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert seen == ["first", "second"]  # refused before it was queued
    assert emulator.wait_until_idle(ep.name, 5)


def test_a_failing_hook_is_logged_and_the_next_one_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    class Broken(BaseEndpointHooks):
        def before_accept(self, params: InvokeParams) -> None:
            raise RuntimeError("bug in a hook")

        def on_event(self, event: EmulatorEvent) -> None:
            raise RuntimeError("bug in a hook")

    class Recorder(BaseEndpointHooks):
        def before_accept(self, params: InvokeParams) -> None:
            calls.append("before_accept")

        def on_event(self, event: EmulatorEvent) -> None:
            calls.append(event.kind)

    hooks = HookList([Broken()])
    hooks.add(Recorder())
    hooks.before_accept(InvokeParams("ep", body=b"1"))
    hooks.on_event(EmulatorEvent(EventKind.DROPPED, "ep", "id"))
    assert calls == ["before_accept", "dropped"]
    assert len(hooks) == 2
    assert [r.message for r in caplog.records] == ["before_accept hook failed", "on_event hook failed for dropped"]


# --- shutdown ---------------------------------------------------------------------------------------------------------


def test_stop_cuts_in_flight_work_quickly_and_publishes_nothing(world: World, clock: FakeClock) -> None:
    ep = world.endpoint()
    emu = AsyncEndpointEmulator(world.moto_url, REGION, world.container.url, clock=clock, session=world.session)
    url = emu.start()
    emu.register_endpoint(ep.name)
    emu.set_instance_count(ep.name, 1)
    rt = runtime(url)
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"sleep:3", ContentType="text/csv")
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")  # stays queued
    wait_for(lambda: len(world.container.requests) == 1)
    started = time.monotonic()
    emu.stop(grace_seconds=0.2)
    assert time.monotonic() - started < 2.5
    stats = emu.stats(ep.name)
    assert (stats["cancelled"], stats["dropped"], stats["completed"], stats["failed"]) == (1, 1, 0, 0)
    assert world.pending(ep.error_queue) == 1 and world.pending(ep.success_queue) == 1  # TestNotifications only
    with pytest.raises(EndpointConnectionError):
        rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1")
    emu.stop()  # idempotent

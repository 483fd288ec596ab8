"""Results and notifications (asyncinfer.local.endpoint.results): output and failure objects, the success and error
notifications, IncludeInferenceResponseIn."""

from __future__ import annotations

import base64

from asyncinfer.local.endpoint.emulator import AsyncEndpointEmulator
from asyncinfer.local.endpoint.invocation import Answer, Failure
from asyncinfer.local.endpoint.protocol import InvokeParams
from asyncinfer.local.endpoint.requests import InvocationRequest, new_request
from asyncinfer.local.endpoint.results import embedded_response, failure_object, notification_for
from asyncinfer.local.endpoint.settings import EndpointSettings
from tests.unit.endpoint.world import (
    ACCOUNT,
    BIG,
    REGION,
    World,
    notification,
    runtime,
)

# --- over the wire ----------------------------------------------------------------------------------------------------


def test_without_topics_or_failure_path_nothing_is_published(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint(failure_path=False, notifications=False)
    reply = runtime(emulator.url).invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")
    assert "FailureLocation" not in reply
    assert emulator.wait_until_idle(ep.name, 5)
    assert world.s3_object(reply["OutputLocation"])[0] == b"0.5\n"
    stats = emulator.stats(ep.name)
    assert (stats["completed"], stats["notifications_published"]) == (1, 0)


def test_model_errors_write_the_failure_object_and_notify(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    rt = runtime(emulator.url)
    r415 = rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"{}", ContentType="application/json", InferenceId="a")
    assert emulator.wait_until_idle(ep.name, 5)  # keeps the notifications in order
    r500 = rt.invoke_endpoint_async(
        EndpointName=ep.name, Body=b"1", ContentType="application/x-fail500", InferenceId="b"
    )
    first, second = (notification(raw) for raw in world.messages(ep.error_queue, 2))

    assert (first.inference_id, first.invocation_status, first.succeeded) == ("a", "Failed", False)
    assert first.failure_reason == (
        'ClientError: Received client error (415) from model with message "Content-type application/json is not '
        'supported.". See the SageMaker Endpoint logs in your account for more information.'
    )
    assert first.failure_location == r415["FailureLocation"]
    assert first.response_content_type == "text/plain"
    assert first.response is None
    assert world.s3_object(r415["FailureLocation"]) == (
        b"Content-type application/json is not supported.",
        "text/plain",
    )

    assert second.inference_id == "b"
    assert second.failure_reason is not None
    assert second.failure_reason.startswith('ClientError: Received server error (500) from model with message "boom"')
    assert world.s3_object(r500["FailureLocation"])[0] == b"boom"
    assert world.pending(ep.success_queue) == 1  # only the TestNotification
    stats = emulator.stats(ep.name)
    assert (stats["completed"], stats["failed"]) == (0, 2)


def test_include_inference_response_in_success_only(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint(include=("SUCCESS_NOTIFICATION_TOPIC",))
    rt = runtime(emulator.url)
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"{}", ContentType="application/json")
    success = world.messages(ep.success_queue, 1)[0]
    assert success["responseBody"]["encoding"] == "BASE64"
    note = notification(success)
    assert note.response is not None and base64.b64decode(note.response.content) == b"0.5\n"
    assert "responseBody" not in world.messages(ep.error_queue, 1)[0]
    # Bodies over 128 KB are never embedded.
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv", Accept="application/x-big")
    big = world.messages(ep.success_queue, 1)[0]
    assert "responseBody" not in big
    assert len(world.s3_object(big["responseParameters"]["outputLocation"])[0]) == BIG


def test_include_inference_response_in_error_only(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint(include=("ERROR_NOTIFICATION_TOPIC",))
    rt = runtime(emulator.url)
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"{}", ContentType="application/json")
    assert "responseBody" not in world.messages(ep.success_queue, 1)[0]
    note = notification(world.messages(ep.error_queue, 1)[0])
    assert note.response is not None and note.response.encoding == "BASE64"
    assert base64.b64decode(note.response.content) == b"Content-type application/json is not supported."


# --- one notification builder -----------------------------------------------------------------------------------------


def _request(include: frozenset[str] = frozenset()) -> InvocationRequest:
    settings = EndpointSettings(
        name="ep",
        account=ACCOUNT,
        config_name="ep",
        variant_name="AllTraffic",
        output_path="s3://b/out",
        failure_path="s3://b/failure",
        success_topic="arn:success",
        error_topic="arn:error",
        include_response_in=include,
        max_concurrent_invocations_per_instance=1,
        initial_instance_count=1,
    )
    params = InvokeParams("ep", content_type="text/csv", accept="text/csv", inference_id="i-1", body=b"1")
    return new_request(params, settings, received_at=1_700_000_000.0)


def test_the_success_notification_names_the_output() -> None:
    request = _request(frozenset({"SUCCESS_NOTIFICATION_TOPIC"}))
    note = notification_for(request, Answer(b"0.5\n", "text/csv"), region=REGION, event_time=1_700_000_001.5)
    assert (note.invocation_status, note.inference_id, note.endpoint_name) == ("Completed", "i-1", "ep")
    assert note.output_location == request.output_location and note.failure_location is None
    assert note.failure_reason is None and note.response_content_type == "text/csv"
    assert note.duration_ms == 1500 and note.aws_region == REGION
    assert note.response is not None and base64.b64decode(note.response.content) == b"0.5\n"


def test_the_error_notification_carries_the_reason_and_the_model_answer_only_when_there_is_one() -> None:
    request = _request(frozenset({"ERROR_NOTIFICATION_TOPIC"}))
    failed = Failure("boom", Answer(b"bad input", None))
    note = notification_for(request, failed, region=REGION, event_time=0.0, failure_location="s3://b/failure/x")
    assert (note.invocation_status, note.failure_reason, note.failure_location) == (
        "Failed",
        "boom",
        "s3://b/failure/x",
    )
    assert note.output_location is None and note.response_content_type is None
    assert note.response is not None and base64.b64decode(note.response.content) == b"bad input"
    assert failure_object(failed) == (b"bad input", "application/octet-stream")
    bare = notification_for(request, Failure("expired", cause="expired"), region=REGION, event_time=0.0)
    assert bare.response is None and bare.failure_location is None
    assert failure_object(Failure("expired")) == (b"expired", "text/plain; charset=utf-8")


def test_large_answers_are_never_embedded() -> None:
    settings = _request(frozenset({"SUCCESS_NOTIFICATION_TOPIC"})).settings
    assert embedded_response(settings, "SUCCESS_NOTIFICATION_TOPIC", b"x" * (128 * 1024)) is not None
    assert embedded_response(settings, "SUCCESS_NOTIFICATION_TOPIC", b"x" * (128 * 1024 + 1)) is None
    assert embedded_response(settings, "ERROR_NOTIFICATION_TOPIC", b"x") is None

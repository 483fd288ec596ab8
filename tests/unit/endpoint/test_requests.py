"""Accepted requests (asyncinfer.local.endpoint.requests): inference ids, inline bodies, the names of result objects."""

from __future__ import annotations

import uuid
from typing import Any

from asyncinfer.local.endpoint.emulator import AsyncEndpointEmulator
from asyncinfer.local.endpoint.protocol import InvokeParams
from asyncinfer.local.endpoint.requests import new_request, result_locations
from asyncinfer.local.endpoint.settings import EndpointSettings
from tests.unit.endpoint.world import (
    ACCOUNT,
    World,
    notification,
    runtime,
)


def test_generates_an_inference_id_and_takes_an_inline_body(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    reply = runtime(emulator.url).invoke_endpoint_async(EndpointName=ep.name, Body=b"1,2,3", ContentType="text/csv")
    uuid.UUID(reply["InferenceId"])
    note = notification(world.messages(ep.success_queue, 1)[0])
    assert note.inference_id == reply["InferenceId"]
    assert note.input_location is None  # an inline payload has no S3 location
    assert world.container.requests[0]["body"] == b"1,2,3"
    assert world.s3_object(reply["OutputLocation"])[0] == b"0.5\n"


def test_filename_and_output_path_extension_name_the_objects(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    rt = runtime(emulator.url)
    ok = rt.invoke_endpoint_async(
        EndpointName=ep.name,
        Body=b"1",
        ContentType="text/csv",
        S3OutputPathExtension="batch/7",
        Filename="result.csv",
    )
    assert ok["OutputLocation"] == f"{ep.output_path}batch/7/result.csv"
    assert ok["FailureLocation"] == f"{ep.failure_path}/batch/7/result-error.out"
    bad = rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="application/json", Filename="x.json")
    world.messages(ep.success_queue, 1)
    note = notification(world.messages(ep.error_queue, 1)[0])
    assert note.failure_location == bad["FailureLocation"] == f"{ep.failure_path}/x-error.out"
    assert world.s3_object(ok["OutputLocation"])[0] == b"0.5\n"


def _settings(**overrides: Any) -> EndpointSettings:
    values: dict[str, Any] = {
        "name": "ep",
        "account": ACCOUNT,
        "config_name": "cfg",
        "variant_name": "AllTraffic",
        "output_path": "s3://b/out/",
        "failure_path": "s3://b/failure",
        "success_topic": None,
        "error_topic": None,
        "include_response_in": frozenset(),
        "max_concurrent_invocations_per_instance": 1,
        "initial_instance_count": 1,
    }
    return EndpointSettings(**{**values, **overrides})


def test_result_locations_are_named_from_the_paths_extension_and_filename() -> None:
    settings = _settings()
    plain = InvokeParams("ep", body=b"1")
    assert result_locations(settings, plain, "u-1") == ("s3://b/out/u-1.out", "s3://b/failure/u-1-error.out")
    named = InvokeParams("ep", body=b"1", s3_output_path_extension="/batch/7/", filename="result.csv")
    assert result_locations(settings, named, "u-1") == (
        "s3://b/out/batch/7/result.csv",
        "s3://b/failure/batch/7/result-error.out",
    )
    assert result_locations(_settings(output_path=None, failure_path=None), plain, "u-1") == (None, None)


def test_a_new_request_gets_the_defaults_and_an_unrelated_object_name() -> None:
    request = new_request(InvokeParams("ep", input_location="s3://b/in.csv"), _settings(), received_at=100.0)
    uuid.UUID(request.inference_id)
    assert request.inference_id not in (request.output_location or "")
    assert (request.request_ttl_seconds, request.invocation_timeout_seconds) == (21_600, 900)
    assert request.input_location == "s3://b/in.csv" and request.body is None
    assert not request.expired(100.0 + 21_600) and request.expired(100.0 + 21_600.5)
    given = new_request(InvokeParams("ep", inference_id="x", request_ttl_seconds=60), _settings(), received_at=0.0)
    assert given.inference_id == "x" and given.request_ttl_seconds == 60

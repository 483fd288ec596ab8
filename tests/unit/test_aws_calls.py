"""AWS API calls per file, counted with botocore's ``before-call`` hook on the clients the handlers use.

The happy path costs 7 calls: submitter 4 (GetObject of the exact version, claim carrying its metadata,
InvokeEndpointAsync, confirm) and topic handler 3 (terminal write with ``eventPending``, PutEvents, clear; never an
S3 call). A file over 128,000 bytes costs one more:
the CopyObject that stages the exact version for the endpoint (8 calls). The issue's target is 5; each of the 7 is
what one of the guarantees below rests on (docs/performance.md, "AWS calls per file", says which). A duplicate
S3 delivery costs two calls (the ranged GetObject is made before the claim, so that the claim records the metadata)
and neither invokes nor publishes. ``make bench`` reports the same counts.
"""

from __future__ import annotations

import copy
from typing import Any

import error_handler
import pytest
import submitter
import success_handler
from async_pipeline import wiring
from async_pipeline.inference_ids import identify
from async_pipeline.jobs import Job, JobStatus
from async_pipeline.s3_events import parse_record

from tests.moto_world import CallCounter, World
from tests.samples import FakeLambdaContext, load_event

SERVICES = ("dynamodb", "s3", "sagemaker-runtime", "events")
SUBMIT = ["s3:GetObject", "dynamodb:PutItem", "sagemaker-runtime:InvokeEndpointAsync", "dynamodb:UpdateItem"]
DUPLICATE = ["s3:GetObject", "dynamodb:PutItem"]  # the failed claim returns the record it found
SUBMIT_STAGED = [*SUBMIT[:2], "s3:CopyObject", *SUBMIT[2:]]
FINISH = ["dynamodb:UpdateItem", "events:PutEvents", "dynamodb:UpdateItem"]
PER_FILE = 7  # the target is 5: missed by 2 (see the module docstring)
PER_LARGE_FILE = 8  # over 128,000 bytes: + CopyObject


@pytest.fixture
def calls(world: World) -> CallCounter:
    counter = CallCounter()
    for service in SERVICES:
        wiring.client(service).meta.events.register("before-call", counter)
    return counter


def _submitted(
    world: World, calls: CallCounter, key: str = "incoming/a.csv", body: bytes = b"1.0,2.0,3.0,4.0\n"
) -> tuple[dict[str, Any], str]:
    event = world.s3_event(key, body)
    assert submitter.lambda_handler(event, FakeLambdaContext()) == {"submitted": 1}
    assert calls.take() == (SUBMIT if len(body) <= 128_000 else SUBMIT_STAGED)
    return event, identify(parse_record(event["Records"][0])).inference_id


@pytest.mark.parametrize(("succeeded", "handler"), [(True, success_handler), (False, error_handler)])
def test_a_file_costs_seven_calls_from_upload_to_result_event(
    world: World, calls: CallCounter, succeeded: bool, handler: Any
) -> None:
    _, inference_id = _submitted(world, calls)
    notification = world.notification_event(inference_id, succeeded=succeeded)
    assert handler.lambda_handler(notification, FakeLambdaContext()) == {"handled": {"recorded": 1}}
    assert calls.take() == FINISH
    assert len(SUBMIT) + len(FINISH) == PER_FILE
    assert len(world.endpoint.calls) == 1
    [result] = world.results()
    assert result["detail"]["inferenceId"] == inference_id


@pytest.mark.parametrize(("succeeded", "handler"), [(True, success_handler), (False, error_handler)])
def test_a_file_over_128000_bytes_costs_one_call_more(
    world: World, calls: CallCounter, succeeded: bool, handler: Any
) -> None:
    _, inference_id = _submitted(world, calls, "incoming/large.csv", b"1.0,2.0,3.0,4.0\n" * 8_001)
    handler.lambda_handler(world.notification_event(inference_id, succeeded=succeeded), FakeLambdaContext())
    assert calls.take() == FINISH
    assert len(SUBMIT_STAGED) + len(FINISH) == PER_LARGE_FILE


def test_duplicate_s3_delivery_costs_two_calls_and_never_invokes_again(world: World, calls: CallCounter) -> None:
    event, inference_id = _submitted(world, calls)
    assert submitter.lambda_handler(copy.deepcopy(event), FakeLambdaContext()) == {"duplicate": 1}
    assert calls.take() == DUPLICATE
    success_handler.lambda_handler(world.notification_event(inference_id, succeeded=True), FakeLambdaContext())
    calls.take()
    assert submitter.lambda_handler(copy.deepcopy(event), FakeLambdaContext()) == {"duplicate": 1}
    assert calls.take() == DUPLICATE
    assert len(world.endpoint.calls) == 1
    assert len(world.results()) == 1


def test_delivery_while_another_holds_the_claim_costs_two_calls(world: World, calls: CallCounter) -> None:
    event = world.s3_event("incoming/a.csv")
    job_id = identify(parse_record(event["Records"][0])).inference_id
    # A live invocation has claimed the file and is calling the endpoint.
    wiring.job_store().claim(
        Job(inference_id=job_id, status=JobStatus.SUBMITTING), lease_expires_at_ms=2**62, now_s=0.0
    )
    calls.take()
    assert submitter.lambda_handler(event, FakeLambdaContext()) == {"in_progress": 1}
    assert calls.take() == DUPLICATE
    assert world.endpoint.calls == []


@pytest.mark.parametrize(("succeeded", "handler"), [(True, success_handler), (False, error_handler)])
def test_duplicate_sns_delivery_costs_one_call_and_publishes_nothing(
    world: World, calls: CallCounter, succeeded: bool, handler: Any
) -> None:
    _, inference_id = _submitted(world, calls)
    notification = world.notification_event(inference_id, succeeded=succeeded)
    handler.lambda_handler(notification, FakeLambdaContext())
    calls.take()
    assert handler.lambda_handler(copy.deepcopy(notification), FakeLambdaContext()) == {"handled": {"duplicate": 1}}
    assert calls.take() == ["dynamodb:UpdateItem"]  # the failed transition returns the record it found
    assert len(world.results()) == 1


def test_an_empty_file_rejected_before_the_endpoint_costs_six_calls(world: World, calls: CallCounter) -> None:
    """S3 refuses a range of an empty object without its metadata: a second, whole GetObject (0 bytes) reads it,
    so that the failure event still carries the file's metadata."""
    event = world.s3_event("incoming/empty.csv", b"", Metadata={"batch": "7"})
    assert submitter.lambda_handler(event, FakeLambdaContext()) == {"rejected": 1}
    assert calls.take() == ["s3:GetObject", "s3:GetObject", "dynamodb:PutItem", *FINISH]
    assert submitter.lambda_handler(copy.deepcopy(event), FakeLambdaContext()) == {"duplicate": 1}
    assert calls.take() == ["s3:GetObject", "s3:GetObject", "dynamodb:PutItem"]
    assert world.endpoint.calls == []
    [event_sent] = world.results()
    assert event_sent["detail"]["metadata"] == {"batch": "7"}


def test_test_events_cost_no_call(world: World, calls: CallCounter) -> None:
    assert submitter.lambda_handler(load_event("s3-test-event.json"), FakeLambdaContext()) == {"ignored": 1}
    notification = load_event("sns-test-notification.json")
    assert success_handler.lambda_handler(notification, FakeLambdaContext()) == {"handled": {"test_notification": 1}}
    assert calls.take() == []

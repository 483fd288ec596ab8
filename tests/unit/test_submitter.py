"""The submitter handler against moto S3/DynamoDB/EventBridge/SQS, with the endpoint stubbed at the HTTP layer."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
import submitter
from async_pipeline.inference_ids import identify
from async_pipeline.s3_events import parse_record

from tests.moto_world import ENDPOINT_NAME, World
from tests.samples import FakeLambdaContext, load_event

AWKWARD_KEYS = [
    "incoming/daily report € + 50%.csv",
    "incoming/plus+sign&amp=equals?.csv",
    "incoming/日本語/über naïve.csv",
    "incoming/emoji 😀 (1).csv",
    "incoming/%41 literally percent-four-one.csv",
    "incoming/tab\tseparated.csv",
]


def _inference_id(event: dict[str, Any], index: int = 0) -> str:
    return identify(parse_record(event["Records"][index])).inference_id


def test_sample_event_submits_decoded_key_once(world: World, lambda_context: FakeLambdaContext) -> None:
    event = world.s3_event("incoming/daily report € + 50%.csv")
    result = submitter.lambda_handler(event, lambda_context)
    assert result == {"submitted": 1}
    [call] = world.endpoint.calls
    assert call["url"].endswith(f"/endpoints/{ENDPOINT_NAME}/async-invocations")
    assert call["X-Amzn-SageMaker-InputLocation"] == (
        "s3://async-pipeline-input-example/incoming/daily report € + 50%.csv"
    )
    assert call["X-Amzn-SageMaker-Content-Type"] == "text/csv"
    assert call["X-Amzn-SageMaker-Accept"] == "text/csv"
    assert call["X-Amzn-SageMaker-RequestTTLSeconds"] == "3600"
    assert call["X-Amzn-SageMaker-InvocationTimeoutSeconds"] == "900"
    inference_id = _inference_id(event)
    assert call["X-Amzn-SageMaker-Inference-Id"] == inference_id
    job = world.job(inference_id)
    assert job is not None and job["status"] == "SUBMITTED"
    assert job["outputLocation"].endswith(f"{inference_id}.out") and "leaseExpiresAt" not in job
    assert world.results() == []  # nothing is published until the endpoint answers


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_awkward_keys_reach_the_endpoint_decoded(world: World, lambda_context: FakeLambdaContext, key: str) -> None:
    submitter.lambda_handler(world.s3_event(key), lambda_context)
    [location] = world.endpoint.input_locations()
    assert location == f"s3://async-pipeline-input-example/{key}"


def test_every_record_of_a_batch_is_submitted(world: World, lambda_context: FakeLambdaContext) -> None:
    events = [world.s3_event(key) for key in AWKWARD_KEYS]
    batch = {"Records": [e["Records"][0] for e in events]}
    assert submitter.lambda_handler(batch, lambda_context) == {"submitted": len(AWKWARD_KEYS)}
    assert len(world.endpoint.calls) == len(AWKWARD_KEYS)


def test_duplicate_delivery_invokes_once(world: World, lambda_context: FakeLambdaContext) -> None:
    event = world.s3_event("incoming/a.csv")
    submitter.lambda_handler(event, lambda_context)
    assert submitter.lambda_handler(copy.deepcopy(event), lambda_context) == {"duplicate": 1}
    assert len(world.endpoint.calls) == 1


def test_concurrent_deliveries_invoke_once(world: World) -> None:
    event = world.s3_event("incoming/a.csv")
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(4)

    def deliver() -> None:
        barrier.wait()
        results.append(submitter.lambda_handler(copy.deepcopy(event), FakeLambdaContext()))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(world.endpoint.calls) == 1
    assert sorted(next(iter(r)) for r in results).count("submitted") == 1


def test_new_version_of_the_same_key_is_a_new_inference(world: World, lambda_context: FakeLambdaContext) -> None:
    submitter.lambda_handler(world.s3_event("incoming/a.csv", b"1,2,3,4\n"), lambda_context)
    submitter.lambda_handler(world.s3_event("incoming/a.csv", b"5,6,7,8\n"), lambda_context)
    ids = {call["X-Amzn-SageMaker-Inference-Id"] for call in world.endpoint.calls}
    assert len(ids) == 2


def test_s3_test_event_and_folder_keys_are_ignored(world: World, lambda_context: FakeLambdaContext) -> None:
    assert submitter.lambda_handler(load_event("s3-test-event.json"), lambda_context) == {"ignored": 1}
    folder = world.s3_event("incoming/folder/", b"")
    assert submitter.lambda_handler(folder, lambda_context) == {"ignored": 1}
    assert world.endpoint.calls == []


def test_empty_object_is_rejected_with_a_failure_event(world: World, lambda_context: FakeLambdaContext) -> None:
    event = world.s3_event("incoming/empty.csv", b"")
    assert submitter.lambda_handler(event, lambda_context) == {"rejected": 1}
    assert world.endpoint.calls == []
    job = world.job(_inference_id(event))
    assert job is not None and job["status"] == "FAILED" and "0 bytes" in job["failureReason"]
    assert "eventPending" not in job
    [result] = world.results()
    assert result["detail-type"] == "Inference Failed" and result["source"] == "async-inference-pipeline"
    assert result["detail"]["failureReason"] == job["failureReason"]
    assert result["detail"]["inputLocation"] == "s3://async-pipeline-input-example/incoming/empty.csv"
    # A second delivery neither invokes nor publishes again.
    assert submitter.lambda_handler(event, lambda_context) == {"duplicate": 1}
    assert world.results() == []


def test_object_over_one_gigabyte_is_rejected(world: World, lambda_context: FakeLambdaContext) -> None:
    event = world.s3_event("incoming/huge.csv")

    def huge(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        parsed["ContentLength"] = 1_500_000_000

    from async_pipeline import wiring

    wiring.client("s3").meta.events.register("after-call.s3.HeadObject", huge)
    assert submitter.lambda_handler(event, lambda_context) == {"rejected": 1}
    assert world.endpoint.calls == []
    [result] = world.results()
    assert "at most 1 GB" in result["detail"]["failureReason"]


def test_object_deleted_before_submission_is_rejected(world: World, lambda_context: FakeLambdaContext) -> None:
    event = world.s3_event("incoming/gone.csv")
    version = event["Records"][0]["s3"]["object"]["versionId"]
    world.s3.delete_object(Bucket="async-pipeline-input-example", Key="incoming/gone.csv", VersionId=version)
    assert submitter.lambda_handler(event, lambda_context) == {"rejected": 1}
    assert "no longer exists" in world.results()[0]["detail"]["failureReason"]


def test_content_type_from_the_object_wins(world: World, lambda_context: FakeLambdaContext) -> None:
    submitter.lambda_handler(world.s3_event("incoming/rows.data", ContentType="text/libsvm"), lambda_context)
    assert world.endpoint.calls[0]["X-Amzn-SageMaker-Content-Type"] == "text/libsvm"


@pytest.mark.usefixtures("no_backoff")
def test_throttling_fails_the_record_releases_the_claim_and_the_retry_submits(
    world: World, lambda_context: FakeLambdaContext
) -> None:
    event = world.s3_event("incoming/a.csv")
    # More 503s than the client's retries: the invocation fails, so Lambda retries it.
    world.endpoint.failures = [(503, "ServiceUnavailable", "busy")] * 4
    with pytest.raises(submitter.SubmissionFailed, match="ServiceUnavailable"):
        submitter.lambda_handler(event, lambda_context)
    job = world.job(_inference_id(event))
    assert job is not None and job["status"] == "SUBMITTING" and job["leaseExpiresAt"] == 0
    assert len(world.endpoint.calls) == 4
    assert submitter.lambda_handler(event, lambda_context) == {"submitted": 1}
    assert world.job(_inference_id(event))["status"] == "SUBMITTED"  # type: ignore[index]


@pytest.mark.usefixtures("no_backoff")
def test_a_short_throttling_burst_is_absorbed_by_client_retries(
    world: World, lambda_context: FakeLambdaContext
) -> None:
    world.endpoint.failures = [(400, "ThrottlingException", "slow down"), (503, "ServiceUnavailable", "busy")]
    assert submitter.lambda_handler(world.s3_event("incoming/a.csv"), lambda_context) == {"submitted": 1}
    assert len(world.endpoint.calls) == 3


def test_validation_error_is_a_terminal_failure(world: World, lambda_context: FakeLambdaContext) -> None:
    world.endpoint.failures = [(400, "ValidationError", "Content type is not supported")]
    assert submitter.lambda_handler(world.s3_event("incoming/a.csv"), lambda_context) == {"rejected": 1}
    [result] = world.results()
    assert "Content type is not supported" in result["detail"]["failureReason"]


def test_missing_endpoint_is_retried_not_failed(world: World, lambda_context: FakeLambdaContext) -> None:
    world.endpoint.failures = [(400, "ValidationError", f"Endpoint {ENDPOINT_NAME} of account 1 not found.")]
    with pytest.raises(submitter.SubmissionFailed, match="not found"):
        submitter.lambda_handler(world.s3_event("incoming/a.csv"), lambda_context)
    assert world.results() == []


def test_one_bad_record_fails_the_invocation_after_the_others_are_submitted(
    world: World, lambda_context: FakeLambdaContext
) -> None:
    good = world.s3_event("incoming/good.csv")["Records"][0]
    bad = copy.deepcopy(good)
    del bad["s3"]["object"]["key"]
    with pytest.raises(submitter.SubmissionFailed, match=r"record 0: record lacks s3.object.key"):
        submitter.lambda_handler({"Records": [bad, good]}, lambda_context)
    assert len(world.endpoint.calls) == 1


def test_missing_configuration_is_named(
    world: World, lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from async_pipeline import wiring

    monkeypatch.delenv("ENDPOINT_NAME")
    wiring.reset()
    with pytest.raises(wiring.ConfigurationError, match="ENDPOINT_NAME"):
        submitter.lambda_handler(world.s3_event("incoming/a.csv"), lambda_context)

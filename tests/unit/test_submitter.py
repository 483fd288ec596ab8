"""The submitter handler against moto S3/DynamoDB/EventBridge/SQS, with the endpoint stubbed at the HTTP layer."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
import submitter
from async_pipeline.inference_ids import identify
from async_pipeline.s3_events import parse_record
from async_pipeline.submission import MAX_INLINE_BYTES

from tests.moto_world import ENDPOINT_NAME, INPUT_BUCKET, OUTPUT_BUCKET, World
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
    event = world.s3_event(
        "incoming/daily report € + 50%.csv",
        b"1.0,2.0,3.0,4.0\n",
        Metadata={"custom-attributes": "trace=abc; user=7", "batch": "2026-12"},
    )
    result = submitter.lambda_handler(event, lambda_context)
    assert result == {"submitted": 1}
    [call] = world.endpoint.calls
    assert call["url"].endswith(f"/endpoints/{ENDPOINT_NAME}/async-invocations")
    # A small input goes inline: the exact bytes of the version, and no location in any header.
    assert "X-Amzn-SageMaker-InputLocation" not in call
    assert world.endpoint.bodies == [b"1.0,2.0,3.0,4.0\n"]
    assert call["X-Amzn-SageMaker-Content-Type"] == "text/csv"
    assert call["X-Amzn-SageMaker-Accept"] == "text/csv"
    assert call["X-Amzn-SageMaker-RequestTTLSeconds"] == "3600"
    assert call["X-Amzn-SageMaker-InvocationTimeoutSeconds"] == "900"
    inference_id = _inference_id(event)
    assert call["X-Amzn-SageMaker-Inference-Id"] == inference_id
    # The designated metadata key, verbatim; outputs under the input's folder, named after the inference id.
    assert call["X-Amzn-SageMaker-Custom-Attributes"] == "trace=abc; user=7"
    assert call["X-Amzn-SageMaker-S3OutputPathExtension"] == "incoming"
    assert call["X-Amzn-SageMaker-Filename"] == f"{inference_id[:28]}.out"
    job = world.job(inference_id)
    assert job is not None and job["status"] == "SUBMITTED"
    # The job keeps the user's own object: bucket, key and version.
    assert job["inputLocation"] == "s3://async-pipeline-input-example/incoming/daily report € + 50%.csv"
    assert job["objectVersion"] == event["Records"][0]["s3"]["object"]["versionId"]
    assert (
        job["outputLocation"]
        == job["submittedOutputLocation"]
        == f"s3://{OUTPUT_BUCKET}/output/incoming/{inference_id[:28]}.out"
    )
    assert "leaseExpiresAt" not in job
    assert job["metadata"] == {"custom-attributes": "trace=abc; user=7", "batch": "2026-12"}
    assert world.results() == []  # nothing is published until the endpoint answers


def _staged(world: World, location: str | None) -> bytes:
    assert location is not None and location.startswith(f"s3://{OUTPUT_BUCKET}/staging/")
    key = location.removeprefix(f"s3://{OUTPUT_BUCKET}/")
    body: bytes = world.s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)["Body"].read()
    return body


def _rows(size: int, seed: int = 1) -> bytes:
    """A CSV payload of exactly ``size`` bytes."""
    line = f"{seed}.0,2.0,3.0,4.0\n".encode()
    body = line * (size // len(line) + 1)
    return body[: size - 1] + b"\n"


@pytest.mark.parametrize("key", AWKWARD_KEYS)
@pytest.mark.parametrize("size", [16, 200_000])
def test_awkward_keys_never_reach_a_header(
    world: World, lambda_context: FakeLambdaContext, key: str, size: int
) -> None:
    """Non-ASCII, percent-bearing and control characters in keys: small inputs travel inline, large ones as a copy
    whose location is plain ASCII (the staging key is the inference id and a safe extension)."""
    body = _rows(size)
    event = world.s3_event(key, body)
    assert submitter.lambda_handler(event, lambda_context) == {"submitted": 1}
    [location] = world.endpoint.input_locations()
    if size <= MAX_INLINE_BYTES:
        assert location is None and world.endpoint.bodies == [body]
    else:
        assert world.endpoint.bodies == [b""]
        assert location == f"s3://{OUTPUT_BUCKET}/staging/{_inference_id(event)}.csv"
        assert location.isascii() and "%" not in location and " " not in location
        assert _staged(world, location) == body
    job = world.job(_inference_id(event))
    assert job is not None and job["inputLocation"] == f"s3://async-pipeline-input-example/{key}"


@pytest.mark.parametrize(
    ("size", "inline"), [(MAX_INLINE_BYTES - 1, True), (MAX_INLINE_BYTES, True), (MAX_INLINE_BYTES + 1, False)]
)
def test_inline_up_to_128000_bytes_staged_above(
    world: World, lambda_context: FakeLambdaContext, size: int, inline: bool
) -> None:
    body = _rows(size)
    assert len(body) == size
    submitter.lambda_handler(world.s3_event("incoming/boundary.csv", body), lambda_context)
    [location] = world.endpoint.input_locations()
    if inline:
        assert location is None and world.endpoint.bodies == [body]
    else:
        assert world.endpoint.bodies == [b""] and _staged(world, location) == body


@pytest.mark.parametrize("size", [64, 300_000])
@pytest.mark.parametrize("change", ["overwrite", "delete"])
def test_the_version_that_triggered_the_job_is_the_one_sent(
    world: World, lambda_context: FakeLambdaContext, size: int, change: str
) -> None:
    """The key is overwritten (or deleted) after the event and before the submitter runs: the endpoint still gets
    the triggering version's bytes. (Before, InputLocation named the key, and SageMaker read whatever was current
    when the request ran.)"""
    first = _rows(size, seed=1)
    event = world.s3_event("incoming/changing.csv", first)
    if change == "overwrite":
        world.put_object("incoming/changing.csv", _rows(size, seed=2))
    else:
        world.s3.delete_object(Bucket=INPUT_BUCKET, Key="incoming/changing.csv")  # a delete marker
    assert submitter.lambda_handler(event, lambda_context) == {"submitted": 1}
    [location] = world.endpoint.input_locations()
    sent = world.endpoint.bodies[0] if location is None else _staged(world, location)
    assert sent == first
    # The staged copy is the endpoint's to read: changing the user's key afterwards changes nothing there.
    world.put_object("incoming/changing.csv", _rows(size, seed=3))
    if location is not None:
        assert _staged(world, location) == first


@pytest.mark.parametrize("overwritten", [False, True])
def test_without_a_version_id_only_the_events_etag_is_read(
    world: World, lambda_context: FakeLambdaContext, overwritten: bool
) -> None:
    """An unversioned bucket's event names no version: the submitter reads the key only if it still has the
    event's ETag (If-Match), so another upload in between fails the job as gone rather than inferring it."""
    event = world.s3_event("incoming/unversioned.csv", b"1,2,3,4\n")
    del event["Records"][0]["s3"]["object"]["versionId"]
    if overwritten:
        world.put_object("incoming/unversioned.csv", b"5,6,7,8\n")
    result = submitter.lambda_handler(event, lambda_context)
    if overwritten:
        assert result == {"rejected": 1} and world.endpoint.calls == []
        assert "no longer exists" in world.results()[0]["detail"]["failureReason"]
    else:
        assert result == {"submitted": 1} and world.endpoint.bodies == [b"1,2,3,4\n"]


@pytest.mark.usefixtures("no_backoff")
def test_a_retry_after_the_copy_stages_the_same_bytes_under_the_same_key(
    world: World, lambda_context: FakeLambdaContext
) -> None:
    """The copy is made, then the endpoint call fails (as a crash between the two would leave it): the retry copies
    the same version to the same key again and invokes once with it, even though the key changed meanwhile."""
    first = _rows(150_000, seed=1)
    event = world.s3_event("incoming/big.csv", first)
    world.endpoint.failures = [(503, "ServiceUnavailable", "busy")] * 4
    with pytest.raises(submitter.SubmissionFailed, match="ServiceUnavailable"):
        submitter.lambda_handler(event, lambda_context)
    failed_locations = set(world.endpoint.input_locations())
    world.put_object("incoming/big.csv", _rows(150_000, seed=2))
    assert submitter.lambda_handler(event, lambda_context) == {"submitted": 1}
    locations = world.endpoint.input_locations()
    assert len(locations) == 5 and set(locations) == failed_locations
    assert _staged(world, locations[-1]) == first


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
        parsed["ContentRange"] = "bytes 0-15/1500000000"

    from async_pipeline import wiring

    wiring.client("s3").meta.events.register("after-call.s3.GetObject", huge)
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

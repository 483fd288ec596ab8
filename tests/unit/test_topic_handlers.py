"""Success and error handlers against moto DynamoDB/EventBridge/SQS, driven by events/ and AWS's messages."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import error_handler
import pytest
import success_handler
from async_pipeline import completion, wiring
from async_pipeline.batch_reports import BatchReport
from async_pipeline.clock import Clock
from async_pipeline.completion import CompletionAction, CompletionOutcome, Publisher
from async_pipeline.jobs import Job, JobStatus, JobStore
from async_pipeline.topic_handler import NotificationFailed

from tests.moto_world import ERROR_TOPIC, World
from tests.samples import FakeLambdaContext, load_event, validate_result_detail


def _submitted(inference_id: str, input_location: str = "s3://async-pipeline-input-example/incoming/x.csv") -> None:
    """A job as the submitter leaves it after InvokeEndpointAsync returned."""
    store = wiring.job_store()
    job = Job(
        inference_id=inference_id,
        status=JobStatus.SUBMITTING,
        input_location=input_location,
        endpoint_name="async-pipeline-endpoint",
    )
    claim = store.claim(job, lease_expires_at_ms=int(time.time() * 1000) + 30_000, now_s=time.time())
    store.mark_submitted(
        claim.job,
        output_location=None,
        failure_location=f"s3://async-pipeline-output-example/failure/{inference_id}.out",
        submitted_at="2026-11-24T12:00:00.500Z",
        now_s=time.time(),
    )


def _message_id(event: dict[str, Any]) -> str:
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    return str(message["inferenceId"])


def test_success_completes_the_job_and_publishes_one_event(world: World, lambda_context: FakeLambdaContext) -> None:
    event = load_event("sns-success.json")
    inference_id = _message_id(event)
    _submitted(inference_id)
    assert success_handler.lambda_handler(event, lambda_context) == {"handled": {"recorded": 1}}
    job = world.job(inference_id)
    assert job is not None and job["status"] == "COMPLETED" and "eventPending" not in job
    assert job["durationMs"] == 7153 and job["receivedTime"] == "2026-11-24T12:00:00.455Z"
    [result] = world.results()
    assert result["source"] == "async-inference-pipeline" and result["detail-type"] == "Inference Completed"
    detail = result["detail"]
    validate_result_detail(detail)
    assert detail["inferenceId"] == inference_id and detail["status"] == "COMPLETED"
    assert detail["outputLocation"].endswith("2f4dcf85-01b8-418c-8c93-2b30fcdd1ab8.out")
    assert detail["inputLocation"] == "s3://async-pipeline-input-example/incoming/x.csv"  # the job's, not echoed
    assert detail["completedTime"] == "2026-11-24T12:00:07.608Z" and detail["durationMs"] == 7153


def test_duplicate_notification_publishes_nothing_twice(world: World, lambda_context: FakeLambdaContext) -> None:
    event = load_event("sns-success.json")
    _submitted(_message_id(event))
    success_handler.lambda_handler(event, lambda_context)
    assert success_handler.lambda_handler(copy.deepcopy(event), lambda_context) == {"handled": {"duplicate": 1}}
    assert len(world.results()) == 1


def test_error_records_failure_reason_and_location(world: World, lambda_context: FakeLambdaContext) -> None:
    event = load_event("sns-error.json")
    inference_id = _message_id(event)
    _submitted(inference_id)
    assert error_handler.lambda_handler(event, lambda_context) == {"handled": {"recorded": 1}}
    [result] = world.results()
    detail = result["detail"]
    validate_result_detail(detail)
    assert result["detail-type"] == "Inference Failed" and detail["status"] == "FAILED"
    assert detail["failureReason"].startswith("ClientError: Received server error (500)")
    # The notification did not carry it: the location InvokeEndpointAsync returned is used.
    assert detail["failureLocation"] == f"s3://async-pipeline-output-example/failure/{inference_id}.out"


def test_included_response_body_is_carried_in_the_event(world: World, lambda_context: FakeLambdaContext) -> None:
    event = load_event("sns-success-with-response.json")
    _submitted(_message_id(event))
    success_handler.lambda_handler(event, lambda_context)
    [result] = world.results()
    assert result["detail"]["inferenceResponse"] == {
        "content": "MC44MjMxNDUyCjAuMTA0NTExOQo=",
        "encoding": "BASE64",
        "contentType": "text/csv; charset=utf-8",
    }


def test_test_notification_is_skipped(world: World, lambda_context: FakeLambdaContext) -> None:
    assert success_handler.lambda_handler(load_event("sns-test-notification.json"), lambda_context) == {
        "handled": {"test_notification": 1}
    }
    assert world.results() == []


def test_unknown_inference_id_is_recorded_and_published(world: World, lambda_context: FakeLambdaContext) -> None:
    event = load_event("sns-success.json")
    success_handler.lambda_handler(event, lambda_context)
    job = world.job(_message_id(event))
    assert job is not None and job["origin"] == "notification" and job["status"] == "COMPLETED"
    [result] = world.results()
    assert result["detail"]["inputLocation"].endswith("daily report € + 50%.csv")  # from the notification


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json", "not JSON"),
        (json.dumps({"eventSource": "aws:sagemaker", "eventName": "ModelDrift"}), "unknown eventName"),
        (json.dumps({"eventSource": "aws:sagemaker", "eventName": "InferenceResult"}), "without inferenceId"),
    ],
)
def test_malformed_message_fails_with_its_reason(
    world: World, lambda_context: FakeLambdaContext, message: str, reason: str
) -> None:
    event = load_event("sns-success.json")
    event["Records"][0]["Sns"]["Message"] = message
    with pytest.raises(NotificationFailed, match=reason):
        success_handler.lambda_handler(event, lambda_context)
    assert world.results() == []


def test_message_from_a_foreign_topic_is_refused(world: World, lambda_context: FakeLambdaContext) -> None:
    event = load_event("sns-success.json")  # success topic, delivered to the error handler
    with pytest.raises(NotificationFailed, match=f"not {ERROR_TOPIC}"):
        error_handler.lambda_handler(event, lambda_context)


def test_event_that_is_not_sns_is_refused(world: World, lambda_context: FakeLambdaContext) -> None:
    with pytest.raises(NotificationFailed, match="Records"):
        success_handler.lambda_handler({"hello": "world"}, lambda_context)


def test_crash_between_job_write_and_event_is_recovered_by_the_retry(
    world: World, lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = load_event("sns-success.json")
    inference_id = _message_id(event)
    _submitted(inference_id)
    publisher = wiring.publisher()
    real_publish = publisher.publish

    def down(_: object) -> None:
        raise RuntimeError("EventBridge unavailable")

    monkeypatch.setattr(publisher, "publish", down)
    with pytest.raises(NotificationFailed, match="EventBridge unavailable"):
        success_handler.lambda_handler(event, lambda_context)
    job = world.job(inference_id)
    assert job is not None and job["status"] == "COMPLETED" and job["eventPending"] is True
    assert world.results() == []
    monkeypatch.setattr(publisher, "publish", real_publish)
    assert success_handler.lambda_handler(copy.deepcopy(event), lambda_context) == {"handled": {"republished": 1}}
    assert len(world.results()) == 1
    assert success_handler.lambda_handler(copy.deepcopy(event), lambda_context) == {"handled": {"duplicate": 1}}
    assert world.results() == []


def test_duplicate_while_the_first_delivery_is_still_publishing_does_not_publish(
    world: World, lambda_context: FakeLambdaContext
) -> None:
    event = load_event("sns-success.json")
    inference_id = _message_id(event)
    _submitted(inference_id)
    # The first delivery wrote the terminal state and holds the publish lease (it is alive, mid-publish).
    store = wiring.job_store()
    from async_pipeline.jobs import Terminal

    store.finish(
        inference_id,
        Terminal(status=JobStatus.COMPLETED, completed_time="t", output_location="s3://o/x"),
        publish_lease_until_ms=int(time.time() * 1000) + 60_000,
        now_s=time.time(),
    )
    assert success_handler.lambda_handler(event, lambda_context) == {"handled": {"duplicate": 1}}
    assert world.results() == []


def _unconfigured() -> JobStore:
    raise wiring.ConfigurationError("environment variable JOBS_TABLE_NAME is not set")


def _no_publisher() -> Publisher:
    raise AssertionError("not asked for: the store failed first")


def test_complete_event_reports_every_record_and_builds_its_dependencies_in_each_records_turn() -> None:
    clock = Clock(now_s=time.time, deadline_ms=0)
    nothing = completion.complete_event(
        {"hello": "world"}, expected_topic_arn=ERROR_TOPIC, store=_unconfigured, publisher=_no_publisher, clock=clock
    )
    assert nothing.outcomes == [] and [(f.index, f.message) for f in nothing.failures] == [
        (None, "event has no 'Records' list")
    ]
    event = load_event("sns-success.json")
    event["Records"].insert(0, {"EventSource": "aws:sqs"})
    report = completion.complete_event(
        event, expected_topic_arn=ERROR_TOPIC, store=_unconfigured, publisher=_no_publisher, clock=clock
    )
    assert [(f.index, f.message) for f in report.failures] == [
        (0, "MalformedSnsRecord: record is not from aws:sns"),
        (1, "ConfigurationError: environment variable JOBS_TABLE_NAME is not set"),
    ]
    assert isinstance(report.failures[1].error, wiring.ConfigurationError)
    assert report.failure_summary().count("; ") == 1


def test_batch_report_counts_actions_in_the_order_they_first_occur() -> None:
    report: BatchReport[CompletionOutcome] = BatchReport(
        [
            CompletionOutcome(CompletionAction.DUPLICATE),
            CompletionOutcome(CompletionAction.RECORDED),
            CompletionOutcome(CompletionAction.DUPLICATE),
        ]
    )
    assert list(report.counts().items()) == [("duplicate", 2), ("recorded", 1)]
    assert report.count(CompletionAction.RECORDED) == 1 and report.count(CompletionAction.REPUBLISHED) == 0

"""Dead letters are classified and read from the bodies the services really write (samples in events/)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from async_pipeline import result_events
from async_pipeline.inference_ids import identify, of_version
from async_pipeline.jobs import Job, JobStatus
from async_pipeline.s3_events import parse_record

from asyncinfer import dead_letters
from tests.samples import load_event

SUBMITTER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:async-pipeline-SubmitterFunction-Ab12Cd34Ef56"
ERROR_INFERENCE_ID = "33333333-4444-5555-6666-777777777777"  # the inference of events/sns-error.json


def _on_failure(payload: dict[str, Any], function: str = "async-pipeline-ErrorHandlerFunction-X1") -> dict[str, Any]:
    """Lambda's on-failure destination record around ``payload``, as events/lambda-on-failure-record.json."""
    record = load_event("lambda-on-failure-record.json")
    record["requestContext"]["functionArn"] = f"arn:aws:lambda:us-east-1:123456789012:function:{function}:$LATEST"
    record["requestPayload"] = payload
    return record


def _undelivered_notification(sample: str) -> dict[str, Any]:
    """The JSON envelope SNS puts in a subscription's dead-letter queue, for the notification of ``sample``."""
    sns = load_event(sample)["Records"][0]["Sns"]
    return {key: sns[key] for key in ("Type", "MessageId", "TopicArn", "Message", "Timestamp")}


def _undelivered_result_event() -> dict[str, Any]:
    job = Job(
        inference_id="a" * 64,
        status=JobStatus.FAILED,
        input_location="s3://in/k ü.csv",
        failure_reason="ClientError: 415",
    )
    event = result_events.build(job)
    return {"id": "e-1", "source": result_events.SOURCE, "detail-type": event.detail_type, "detail": event.detail}


def test_a_submitter_record_names_the_object_version_of_its_s3_event() -> None:
    body = load_event("lambda-on-failure-record.json")
    obj = parse_record(body["requestPayload"]["Records"][0])

    entry = dead_letters.parse("m1", json.dumps(body))

    assert (entry.message_id, entry.kind) == ("m1", "lambda")
    assert entry.source == "async-pipeline-SubmitterFunction-Ab12Cd34Ef56"
    assert entry.reason.startswith("RetriesExhausted: SubmissionFailed: 1 record(s) failed: ")
    assert entry.input_uris == [obj.uri] and "€" in obj.uri  # the key decoded
    assert entry.inference_ids == [identify(obj).inference_id]
    assert entry.inference_ids == [of_version(obj.bucket, obj.key, obj.version_id)]
    assert dead_letters.classify(body) == "lambda"


def test_a_handler_record_names_the_inferences_of_its_notifications() -> None:
    body = _on_failure(load_event("sns-error.json"))

    entry = dead_letters.parse("m2", json.dumps(body))

    assert (entry.kind, entry.source) == ("lambda", "async-pipeline-ErrorHandlerFunction-X1")
    assert entry.inference_ids == [ERROR_INFERENCE_ID]
    assert entry.input_uris == ["s3://async-pipeline-input-example/incoming/bad rows.csv"]


def test_a_test_notification_or_a_record_without_versions_names_no_inference() -> None:
    assert (
        dead_letters.parse("m", json.dumps(_on_failure(load_event("sns-test-notification.json")))).inference_ids == []
    )
    s3_event = load_event("s3-put.json")
    obj = s3_event["Records"][0]["s3"]["object"]
    for field in ("versionId", "sequencer", "eTag"):
        obj.pop(field, None)
    entry = dead_letters.parse("m", json.dumps(_on_failure(s3_event, "SubmitterFunction")))
    assert entry.inference_ids == [] and len(entry.input_uris) == 1  # the file is named, its version unknown


def test_a_notification_sns_could_not_deliver() -> None:
    body = _undelivered_notification("sns-error.json")

    entry = dead_letters.parse("m3", json.dumps(body))

    assert (entry.kind, entry.source) == ("sns", "async-pipeline-error")
    assert entry.reason == "SNS could not deliver the notification"
    assert entry.inference_ids == [ERROR_INFERENCE_ID]
    assert dead_letters.classify(body) == "sns"


def test_a_result_event_eventbridge_could_not_deliver() -> None:
    body = _undelivered_result_event()

    entry = dead_letters.parse("m4", json.dumps(body))

    assert (entry.kind, entry.source) == ("events", "results rule")
    assert (entry.inference_ids, entry.input_uris) == (["a" * 64], ["s3://in/k ü.csv"])
    assert dead_letters.classify(body) == "events"


def test_an_eventbridge_event_of_another_source_is_classified_but_not_ours() -> None:
    body = {**_undelivered_result_event(), "source": "aws.s3"}
    assert dead_letters.classify(body) == "events"  # redrive would deliver it to the results queue
    entry = dead_letters.parse("m5", json.dumps(body))
    assert (entry.kind, entry.reason, entry.inference_ids) == ("unknown", dead_letters.NOT_OURS, [])


@pytest.mark.parametrize(
    ("text", "reason"),
    [("not json", "not JSON"), ("[1, 2]", "not a JSON object"), ('{"hello": 1}', dead_letters.NOT_OURS)],
)
def test_what_is_not_a_dead_letter_of_this_pipeline_is_unknown(text: str, reason: str) -> None:
    entry = dead_letters.parse("m", text)
    assert (entry.kind, entry.source, entry.reason, entry.inference_ids) == ("unknown", "?", reason, [])


def test_an_unreadable_body_says_why() -> None:
    with pytest.raises(dead_letters.UnreadableBody, match="not JSON"):
        dead_letters.load_body("{")
    with pytest.raises(dead_letters.UnreadableBody, match="not a JSON object"):
        dead_letters.load_body('"text"')
    assert dead_letters.load_body('{"a": 1}') == {"a": 1}

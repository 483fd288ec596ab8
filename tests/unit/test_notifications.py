"""Parsing SageMaker notifications: the AWS documentation's examples, observed real messages, and bad input."""

from __future__ import annotations

import json

import pytest
from async_pipeline import notifications
from async_pipeline.notifications import (
    InferenceNotification,
    InferenceResponse,
    MalformedNotification,
    parse_notification,
)
from async_pipeline.notifications import (
    TestNotification as SageMakerTestNotification,
)

from tests.samples import load_event

# The success example of the SageMaker developer guide (async-inference-check-predictions), verbatim.
AWS_DOC_SUCCESS = """{
  "awsRegion": "us-east-1",
  "eventTime": "2022-01-25T22:46:00.608Z",
  "receivedTime": "2022-01-25T22:46:00.455Z",
  "invocationStatus": "Completed",
  "requestParameters": {
    "contentType": "text/csv",
    "endpointName": "<example-endpoint>",
    "inputLocation": "s3://<bucket>/<input-directory>/input-data.csv"
  },
  "responseParameters": {
    "contentType": "text/csv; charset=utf-8",
    "outputLocation": "s3://<bucket>/<output_directory>/prediction.out"
  },
  "inferenceId": "11111111-2222-3333-4444-555555555555",
  "eventVersion": "1.0",
  "eventSource": "aws:sagemaker",
  "eventName": "InferenceResult"
}"""
AWS_DOC_TEST = '{"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "TestNotification"}'


def _message(event_file: str) -> str:
    message: str = load_event(event_file)["Records"][0]["Sns"]["Message"]
    return message


def test_documented_success_example() -> None:
    parsed = parse_notification(AWS_DOC_SUCCESS)
    assert isinstance(parsed, InferenceNotification)
    assert parsed.succeeded
    assert parsed.inference_id == "11111111-2222-3333-4444-555555555555"
    assert parsed.output_location == "s3://<bucket>/<output_directory>/prediction.out"
    assert parsed.input_location == "s3://<bucket>/<input-directory>/input-data.csv"
    assert parsed.duration_ms == 153


def test_documented_test_notification() -> None:
    assert isinstance(parse_notification(AWS_DOC_TEST), SageMakerTestNotification)


def test_observed_success_without_content_type() -> None:
    observed = json.loads(AWS_DOC_SUCCESS)
    del observed["requestParameters"]["contentType"]
    observed["requestParameters"]["accept"] = "application/json;jpeg"
    parsed = parse_notification(json.dumps(observed))
    assert isinstance(parsed, InferenceNotification)
    assert parsed.request_content_type is None and parsed.accept == "application/json;jpeg"


def test_error_notification_sample() -> None:
    parsed = parse_notification(_message("sns-error.json"))
    assert isinstance(parsed, InferenceNotification)
    assert not parsed.succeeded
    assert parsed.failure_reason is not None and parsed.failure_reason.startswith(
        "ClientError: Received server error (500)"
    )
    assert parsed.failure_location is None


@pytest.mark.parametrize("where", ["top", "responseParameters"])
def test_failure_location_is_read_from_either_place(where: str) -> None:
    message = json.loads(_message("sns-error.json"))
    if where == "top":
        message["failureLocation"] = "s3://out/failure/x.out"
    else:
        message["responseParameters"] = {"failureLocation": "s3://out/failure/x.out"}
    parsed = parse_notification(json.dumps(message))
    assert isinstance(parsed, InferenceNotification) and parsed.failure_location == "s3://out/failure/x.out"


def test_embedded_response_object_and_string_forms() -> None:
    parsed = parse_notification(_message("sns-success-with-response.json"))
    assert isinstance(parsed, InferenceNotification) and parsed.response is not None
    assert parsed.response.encoding == "BASE64"
    assert parsed.response.content_type == "text/csv; charset=utf-8"
    as_string = json.loads(_message("sns-success-with-response.json"))
    as_string["responseBody"] = "0.82\n"
    parsed = parse_notification(json.dumps(as_string))
    assert isinstance(parsed, InferenceNotification)
    assert parsed.response == InferenceResponse(content="0.82\n", content_type="text/csv; charset=utf-8")


def test_status_other_than_completed_is_a_failure_in_any_case() -> None:
    message = json.loads(AWS_DOC_SUCCESS)
    message["invocationStatus"] = "COMPLETED"
    assert parse_notification(json.dumps(message)).succeeded  # type: ignore[union-attr]
    message["invocationStatus"] = "Expired"
    assert not parse_notification(json.dumps(message)).succeeded  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json {", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"eventSource": "aws:s3", "eventName": "InferenceResult"}', "eventSource"),
        ('{"eventSource": "aws:sagemaker", "eventName": "ModelDrift"}', "unknown eventName 'ModelDrift'"),
        (
            '{"eventSource": "aws:sagemaker", "eventName": "InferenceResult", "invocationStatus": "Completed"}',
            "without inferenceId",
        ),
        (
            '{"eventSource": "aws:sagemaker", "eventName": "InferenceResult", "inferenceId": "x"}',
            "without invocationStatus",
        ),
        (
            '{"eventSource": "aws:sagemaker", "eventName": "InferenceResult", "inferenceId": "x",'
            ' "invocationStatus": "Completed", "responseBody": 7}',
            "responseBody",
        ),
    ],
)
def test_malformed_messages_say_why(message: str, reason: str) -> None:
    with pytest.raises(MalformedNotification, match=reason):
        parse_notification(message)


@pytest.mark.parametrize("event_file", ["sns-success.json", "sns-error.json", "sns-success-with-response.json"])
def test_to_message_round_trips(event_file: str) -> None:
    parsed = parse_notification(_message(event_file))
    assert isinstance(parsed, InferenceNotification)
    assert parse_notification(json.dumps(parsed.to_message())) == parsed


def test_test_notification_built_is_the_documented_one() -> None:
    assert SageMakerTestNotification().to_message() == json.loads(AWS_DOC_TEST)


def test_time_format_matches_sagemaker() -> None:
    moment = notifications.parse_time("2022-01-25T22:46:00.608Z")
    assert moment is not None and notifications.format_time(moment) == "2022-01-25T22:46:00.608Z"

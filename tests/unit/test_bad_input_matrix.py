"""The bad-input matrix: every kind of bad input has a defined outcome, a logged reason, and never a silent drop.

Outcomes: a FAILED job with its reason and one result event; or a failed invocation whose error names the reason
(Lambda retries it twice, then the on-failure destination keeps it with that reason); or, for inputs that are not
work (test events, folders), an ignored record with a reason. The handlers run against moto as in production.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import error_handler
import pytest
import submitter
import success_handler
from async_pipeline.inference_ids import identify
from async_pipeline.s3_events import encode_key, parse_record
from async_pipeline.submission import MAX_INLINE_BYTES
from async_pipeline.topic_handler import NotificationFailed

from tests.moto_world import World
from tests.samples import FakeLambdaContext, load_event

# --------------------------------------------------------------------------------------------------- SNS messages


def _sns(message: str | dict[str, Any], topic: str | None = None) -> dict[str, Any]:
    event = load_event("sns-success.json")
    event["Records"][0]["Sns"]["Message"] = message if isinstance(message, str) else json.dumps(message)
    if topic is not None:
        event["Records"][0]["Sns"]["TopicArn"] = topic
    return event


def _success(**changes: Any) -> dict[str, Any]:
    message = json.loads(load_event("sns-success.json")["Records"][0]["Sns"]["Message"])
    message.update(changes)
    return {k: v for k, v in message.items() if v is not None}


DEAD_LETTERED_NOTIFICATIONS: list[tuple[str, dict[str, Any], str]] = [
    ("not JSON", _sns("<html>Service Unavailable</html>"), "message is not JSON"),
    ("JSON but not an object", _sns("[1, 2, 3]"), "not a JSON object"),
    ("empty message", _sns(""), "message is not JSON"),
    ("no eventSource", _sns(_success(eventSource=None)), "eventSource is None"),
    ("foreign eventSource", _sns(_success(eventSource="aws:s3")), "eventSource is 'aws:s3'"),
    ("no eventName", _sns(_success(eventName=None)), "unknown eventName None"),
    ("unknown eventName", _sns(_success(eventName="EndpointDeleted")), "unknown eventName 'EndpointDeleted'"),
    ("no inferenceId", _sns(_success(inferenceId=None)), "without inferenceId"),
    ("empty inferenceId", _sns(_success(inferenceId="")), "without inferenceId"),
    ("no invocationStatus", _sns(_success(invocationStatus=None)), "without invocationStatus"),
    ("requestParameters not an object", _sns(_success(requestParameters="x")), "are not objects"),
    ("responseBody of the wrong type", _sns(_success(responseBody=[1])), "responseBody"),
    (
        "topic outside this stack",
        _sns(_success(), topic="arn:aws:sns:us-east-1:999999999999:someone-elses"),
        "came from arn:aws:sns:us-east-1:999999999999:someone-elses",
    ),
    ("record that is not SNS", {"Records": [{"EventSource": "aws:sqs", "body": "{}"}]}, "not from aws:sns"),
    (
        "SNS record without Message",
        {"Records": [{"EventSource": "aws:sns", "Sns": {"TopicArn": "x"}}]},
        "Sns.Message is missing",
    ),
    ("event without Records", {"detail": {}}, "no 'Records' list"),
]


@pytest.mark.parametrize(
    ("event", "reason"), [c[1:] for c in DEAD_LETTERED_NOTIFICATIONS], ids=[c[0] for c in DEAD_LETTERED_NOTIFICATIONS]
)
def test_unusable_notifications_fail_with_their_reason(
    world: World, lambda_context: FakeLambdaContext, event: dict[str, Any], reason: str
) -> None:
    with pytest.raises(NotificationFailed) as failure:
        success_handler.lambda_handler(copy.deepcopy(event), lambda_context)
    assert reason in str(failure.value)
    assert world.results() == []  # nothing published for it


def test_notification_for_an_unknown_inference_id_is_kept(world: World, lambda_context: FakeLambdaContext) -> None:
    event = _sns(_success(inferenceId="submitted-by-someone-else", invocationStatus="Failed", failureReason="boom"))
    event["Records"][0]["Sns"]["TopicArn"] = "arn:aws:sns:us-east-1:123456789012:async-pipeline-error"
    assert error_handler.lambda_handler(event, lambda_context) == {"handled": {"recorded": 1}}
    job = world.job("submitted-by-someone-else")
    assert job is not None and job["origin"] == "notification" and job["failureReason"] == "boom"
    [result] = world.results()
    assert result["detail"]["status"] == "FAILED"


def test_oversized_embedded_response_is_dropped_from_the_event_not_the_job(
    world: World, lambda_context: FakeLambdaContext
) -> None:
    big = "A" * 300_000  # beyond what an EventBridge entry can carry
    event = _sns(_success(inferenceId="big-one", responseBody={"content": big, "encoding": "BASE64"}))
    success_handler.lambda_handler(event, lambda_context)
    [result] = world.results()
    assert "inferenceResponse" not in result["detail"] and "inferenceResponseOmitted" in result["detail"]
    job = world.job("big-one")
    assert job is not None and len(job["responseContent"]) == len(big)


def test_status_on_the_wrong_topic_follows_the_status(world: World, lambda_context: FakeLambdaContext) -> None:
    # A Failed status delivered by the success topic is a failure: the status is what SageMaker decided.
    success_handler.lambda_handler(_sns(_success(invocationStatus="Failed", failureReason="x")), lambda_context)
    [result] = world.results()
    assert result["detail"]["status"] == "FAILED" and result["detail"]["failureReason"] == "x"


# ---------------------------------------------------------------------------------------------------- S3 events

AWKWARD_KEYS = {
    "spaces": "a file with  two  spaces.csv",
    "plus": "1+1=2.csv",
    "percent": "100%25 not-an-escape %41.csv",
    "reserved URL characters": "q?x=1&y=2#frag;semi:colon@at.csv",
    "quotes and brackets": 'it\'s "quoted" [1] {2} <3>.csv',
    "backslash and pipe": "back\\slash|pipe.csv",
    "latin accents": "résumé naïve façade.csv",
    "CJK": "日本語のファイル.csv",
    "right-to-left": "ملف عربي.csv",
    "emoji (4-byte UTF-8)": "📈 results 🚀.csv",
    "combining characters": "e\u0301te\u0301.csv",
    "tab": "tab\tseparated name.csv",
    "leading slash and double slashes": "/lead//double///slash.csv",
    "only dots": "....csv",
    "1024-byte key": "k/" + "é" * 509 + ".csv",  # 2 + 1018 + 4 = 1024 bytes in UTF-8
}


@pytest.mark.parametrize("key", AWKWARD_KEYS.values(), ids=AWKWARD_KEYS.keys())
def test_every_awkward_key_class_is_submitted_under_its_real_name(
    world: World, lambda_context: FakeLambdaContext, key: str
) -> None:
    event = world.s3_event(key)
    assert submitter.lambda_handler(event, lambda_context) == {"submitted": 1}
    # The payload goes inline: the key reaches no header at all.
    assert world.endpoint.input_locations() == [None]
    job = world.job(identify(parse_record(event["Records"][0])).inference_id)
    assert job is not None and job["inputLocation"] == f"s3://async-pipeline-input-example/{key}"
    # The same bytes S3 would send decode to the same key, and a redelivery is recognised.
    assert parse_record(event["Records"][0]).key == key
    assert submitter.lambda_handler(copy.deepcopy(event), lambda_context) == {"duplicate": 1}


@pytest.mark.parametrize("size", [16, 130_000])
@pytest.mark.parametrize(
    "key",
    ["line\nbreak.csv", "carriage\rreturn.csv", "k/" + "x" * 1020],  # the last: a location over 1024 characters
    ids=["line break", "carriage return", "1022-character key"],
)
def test_keys_no_header_could_carry_are_submitted(
    world: World, lambda_context: FakeLambdaContext, key: str, size: int
) -> None:
    """Before, these were FAILED at once (an HTTP header cannot carry a line break; InputLocation takes at most 1024
    characters). The key never travels now: inline, or as the staged copy's ASCII location."""
    body = (b"1,2,3,4\n" * (size // 8 + 1))[:size]
    assert submitter.lambda_handler(world.s3_event(key, body), lambda_context) == {"submitted": 1}
    [location] = world.endpoint.input_locations()
    if size <= MAX_INLINE_BYTES:
        assert location is None and world.endpoint.bodies == [body]
    else:
        assert location is not None and location.isascii() and len(location) < 200 and "\n" not in location


def _record(world: World) -> dict[str, Any]:
    record: dict[str, Any] = world.s3_event("incoming/x.csv")["Records"][0]
    return record


S3_RECORD_FAULTS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("no s3 object", lambda r: r.pop("s3"), "no 's3' object"),
    ("no bucket", lambda r: r["s3"].pop("bucket"), "lacks s3.bucket"),
    ("no bucket name", lambda r: r["s3"]["bucket"].pop("name"), "lacks s3.bucket.name"),
    ("no key", lambda r: r["s3"]["object"].pop("key"), "lacks s3.object.key"),
    ("empty key", lambda r: r["s3"]["object"].update(key=""), "lacks s3.object.key"),
    ("key not UTF-8", lambda r: r["s3"]["object"].update(key="bad%FF.csv"), "not valid percent-encoded UTF-8"),
    ("negative size", lambda r: r["s3"]["object"].update(size=-1), "not a byte count"),
    ("wrong eventSource", lambda r: r.update(eventSource="aws:sqs"), "eventSource is 'aws:sqs'"),
    ("eventVersion 3", lambda r: r.update(eventVersion="3.0"), "unsupported eventVersion"),
    (
        "no version, sequencer or ETag",
        lambda r: [r["s3"]["object"].pop(k) for k in ("versionId", "sequencer", "eTag")],
        "no versionId, sequencer",
    ),
]


@pytest.mark.parametrize(("mutate", "reason"), [c[1:] for c in S3_RECORD_FAULTS], ids=[c[0] for c in S3_RECORD_FAULTS])
def test_malformed_s3_records_fail_the_invocation_with_their_reason(
    world: World, lambda_context: FakeLambdaContext, mutate: Callable[[dict[str, Any]], None], reason: str
) -> None:
    record = _record(world)
    mutate(record)
    with pytest.raises(submitter.SubmissionFailed, match="1 record\\(s\\) failed") as failure:
        submitter.lambda_handler({"Records": [record]}, lambda_context)
    assert reason in str(failure.value)
    assert world.endpoint.calls == []


def test_missing_size_is_read_from_the_object(world: World, lambda_context: FakeLambdaContext) -> None:
    record = _record(world)
    del record["s3"]["object"]["size"]
    assert submitter.lambda_handler({"Records": [record]}, lambda_context) == {"submitted": 1}


def test_event_for_a_bucket_it_cannot_read_is_retried_not_dropped(
    world: World, lambda_context: FakeLambdaContext
) -> None:
    record = _record(world)
    record["s3"]["bucket"]["name"] = "someone-elses-bucket"
    with pytest.raises(submitter.SubmissionFailed, match="GetObject"):
        submitter.lambda_handler({"Records": [record]}, lambda_context)
    job = world.job(identify(parse_record(record)).inference_id)
    assert job is not None and job["status"] == "SUBMITTING" and job["leaseExpiresAt"] == 0  # claim released


@pytest.mark.parametrize(
    ("content_type", "key", "sent"),
    [
        ("application/x-msdownload", "setup.exe", "application/x-msdownload"),  # the endpoint decides: 415 there
        ("binary/octet-stream", "archive.tar.zst", "text/csv"),  # nothing known: the default parameter
        ("text/csv; charset=utf-8", "rows", "text/csv; charset=utf-8"),
    ],
)
def test_content_types_are_passed_for_the_endpoint_to_judge(
    world: World, lambda_context: FakeLambdaContext, content_type: str, key: str, sent: str
) -> None:
    submitter.lambda_handler(world.s3_event(f"incoming/{key}", ContentType=content_type), lambda_context)
    assert world.endpoint.calls[0]["X-Amzn-SageMaker-Content-Type"] == sent


def test_encoded_key_round_trip_is_what_s3_sends() -> None:
    assert encode_key("a b+c/ü.csv") == "a+b%2Bc/%C3%BC.csv"

"""Files in, result events out: the pipeline's promise, checked through the stack's outputs only."""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from asyncinfer import target
from asyncinfer.model import demo
from tests.support import ResultCollector

# Deployed endpoints may first have to scale out from zero instances.
TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "1800" if os.environ.get("AWS_SAM_STACK_NAME") else "120"))
SETTLE = 2.0  # seconds to wait after the expected event, for a duplicate that should not come


@pytest.fixture(scope="module")
def booster() -> Any:
    return demo.train_demo_model()


def _prefix() -> str:
    return f"e2e/{uuid.uuid4().hex[:8]}/"


def _put(stack: target.Target, key: str, body: bytes, **extra: Any) -> None:
    stack.client("s3").put_object(Bucket=stack.outputs["InputBucketName"], Key=key, Body=body, **extra)


def _read(stack: target.Target, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body: bytes = stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def _job(stack: target.Target, inference_id: str) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    item = stack.client("dynamodb").get_item(
        TableName=stack.outputs["JobsTableName"], Key={"inferenceId": {"S": inference_id}}, ConsistentRead=True
    )["Item"]
    return {k: TypeDeserializer().deserialize(v) for k, v in item.items()}


def _single_event(results: ResultCollector, key: str) -> Any:
    events = results.wait_for([key], TIMEOUT)[key]
    assert events, f"no result event for {key} within {TIMEOUT} s"
    time.sleep(SETTLE)
    events = results.events_for(key)
    assert len(events) == 1, f"{len(events)} result events for {key}"
    return events[0]


def test_csv_file_completes_with_the_models_prediction(
    stack: target.Target, results: ResultCollector, booster: Any
) -> None:
    rows = demo.make_input_rows(4, seed=11)
    key = _prefix() + "scores.csv"
    _put(stack, key, demo.rows_to_csv(rows))
    event = _single_event(results, key)
    assert event.detail_type == "Inference Completed"
    detail = event.detail
    assert detail["status"] == "COMPLETED" and detail["endpointName"] == stack.outputs["EndpointName"]
    assert detail["inputLocation"] == f"s3://{stack.outputs['InputBucketName']}/{key}"
    assert detail["outputLocation"].startswith(f"s3://{stack.outputs['OutputBucketName']}/")
    output = np.loadtxt(io.BytesIO(_read(stack, detail["outputLocation"])), delimiter=",", ndmin=1)
    np.testing.assert_allclose(output, demo.predict_rows(booster, rows), rtol=1e-6)
    job = _job(stack, detail["inferenceId"])
    assert job["status"] == "COMPLETED" and job["outputLocation"] == detail["outputLocation"]
    assert "eventPending" not in job


def test_file_the_model_rejects_fails_with_its_reason(stack: target.Target, results: ResultCollector) -> None:
    key = _prefix() + "not numbers.csv"
    _put(stack, key, b"alpha,beta,gamma,delta,epsilon,zeta\n")
    event = _single_event(results, key)
    assert event.detail_type == "Inference Failed"
    detail = event.detail
    assert detail["status"] == "FAILED" and "415" in detail["failureReason"]
    assert detail["failureLocation"], "the failure payload's location"
    assert _read(stack, detail["failureLocation"])  # the failure object is there and readable
    assert _job(stack, detail["inferenceId"])["failureReason"] == detail["failureReason"]


def test_empty_file_is_rejected_before_the_endpoint(stack: target.Target, results: ResultCollector) -> None:
    key = _prefix() + "empty.csv"
    _put(stack, key, b"")
    event = _single_event(results, key)
    assert event.detail["status"] == "FAILED" and "empty" in event.detail["failureReason"]
    assert event.detail["failureLocation"] is None


@pytest.mark.parametrize("name", ["with spaces and + plus.csv", "ünïcödé/日本語 データ.csv", "100% (final) & more.csv"])
def test_awkward_keys_complete(stack: target.Target, results: ResultCollector, name: str) -> None:
    key = _prefix() + name
    _put(stack, key, demo.make_csv_payload(2, seed=3))
    event = _single_event(results, key)
    assert event.detail["status"] == "COMPLETED"
    assert event.detail["inputLocation"].endswith("/" + key)


def test_test_notification_produces_no_event_and_no_error(stack: target.Target, results: ResultCollector) -> None:
    sqs = stack.client("sqs")
    dlq = stack.outputs["DeadLetterQueueUrl"]
    before = int(
        sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    seen = len(results.all_events())
    message = {"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "TestNotification"}
    for topic in ("SuccessTopicArn", "ErrorTopicArn"):
        stack.client("sns").publish(TopicArn=stack.outputs[topic], Message=json.dumps(message))
    time.sleep(3 * SETTLE)
    after = int(
        sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    assert after == before
    assert len(results.all_events()) == seen


def test_a_hundred_files_dropped_at_once_all_reach_a_terminal_state(
    stack: target.Target, results: ResultCollector
) -> None:
    prefix = _prefix()
    keys = [f"{prefix}batch/{i:03d}.csv" for i in range(100)]
    bodies = {key: demo.make_csv_payload(1 + i % 3, seed=i) for i, key in enumerate(keys)}
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda k: _put(stack, k, bodies[k]), keys))
    events = results.wait_for(keys, TIMEOUT)
    missing = [k for k, e in events.items() if not e]
    assert not missing, f"{len(missing)} files without a result event, e.g. {missing[:3]}"
    time.sleep(SETTLE)
    counts = {key: len(results.events_for(key)) for key in keys}
    assert set(counts.values()) == {1}, "every file has exactly one result event"
    assert {results.events_for(k)[0].detail["status"] for k in keys} == {"COMPLETED"}

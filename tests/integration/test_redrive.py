"""Redrive on the local stack: FAILED jobs re-submitted once, dead letters replayed through the right function."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from async_pipeline.s3_events import decode_key

from asyncinfer import redrive, target
from asyncinfer.local.stack import RunningStack
from asyncinfer.model import demo
from tests.support import ResultCollector, local_stack


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, target.Target, ResultCollector]]:
    state: Path = tmp_path_factory.mktemp("redrive")
    with local_stack(state, retry_delays=(0.2, 0.2)) as stack:
        tgt = target.local(state)
        collector = ResultCollector(tgt)
        yield stack, tgt, collector
        collector.stop()


def _dead_letters(tgt: target.Target) -> int:
    attributes = tgt.client("sqs").get_queue_attributes(
        QueueUrl=tgt.outputs["DeadLetterQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_failed_job_is_resubmitted_once_even_when_redriven_concurrently(
    running: tuple[RunningStack, target.Target, ResultCollector],
) -> None:
    _, tgt, results = running
    key = "redrive/bad rows.csv"
    tgt.client("s3").put_object(Bucket=tgt.outputs["InputBucketName"], Key=key, Body=b"a,b,c,d,e,f\n")
    [first] = results.wait_for([key], 60)[key]
    assert first.detail["status"] == "FAILED"
    [job] = [j for j in redrive.redrivable_jobs(tgt) if j.inference_id == first.detail["inferenceId"]]

    dry = redrive.redrive_job(tgt, job, dry_run=True)
    assert dry.outcome.startswith("would copy")
    time.sleep(1)
    assert len(results.events_for(key)) == 1  # the dry run changed nothing

    outcomes: list[str] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(redrive.redrive_job(tgt, job, False).outcome)) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(o.startswith("re-submitted") for o in outcomes) == 1, outcomes
    deadline = time.time() + 60
    while len(results.events_for(key)) < 2 and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    events = results.events_for(key)
    assert len(events) == 2, "one new inference for the redriven job, no more"
    assert events[1].detail["inferenceId"] != first.detail["inferenceId"]
    assert first.detail["inferenceId"] not in {j.inference_id for j in redrive.redrivable_jobs(tgt)}


def test_dead_letter_is_replayed_through_the_function_it_names(
    running: tuple[RunningStack, target.Target, ResultCollector],
) -> None:
    stack, tgt, results = running
    assert stack.stack is not None
    submitter = stack.stack.functions["SubmitterFunction"]
    # A submitter invocation that was dead-lettered (say, while the endpoint was down), as Lambda records it.
    key = "redrive/replayed.csv"
    s3 = tgt.client("s3")
    put = s3.put_object(Bucket=tgt.outputs["InputBucketName"], Key=key, Body=demo.make_csv_payload(1))
    deadline = time.time() + 30
    while not results.events_for(key) and time.time() < deadline:
        time.sleep(0.2)
    original = next(
        e
        for e in stack.invoker.recent_events()
        if e.get("Records")
        and e["Records"][0].get("eventSource") == "aws:s3"
        and decode_key(e["Records"][0]["s3"]["object"]["key"]) == key
    )
    record = {
        "version": "1.0",
        "requestContext": {
            "functionArn": f"{submitter.arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": original,
        "responsePayload": {"errorMessage": "endpoint unavailable"},
    }
    tgt.client("sqs").send_message(QueueUrl=tgt.outputs["DeadLetterQueueUrl"], MessageBody=json.dumps(record))
    notification = {
        "Type": "Notification",
        "TopicArn": tgt.outputs["SuccessTopicArn"],
        "Message": json.dumps({"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "TestNotification"}),
    }
    tgt.client("sqs").send_message(QueueUrl=tgt.outputs["DeadLetterQueueUrl"], MessageBody=json.dumps(notification))

    dry = redrive.replay_dead_letters(tgt, dry_run=True)
    assert [a.source for a in dry] == ["lambda", "sns"] and dry[0].reason == "endpoint unavailable"
    time.sleep(2.5)  # the dry run's brief invisibility ends
    before = stack.invoker.stats["SubmitterFunction"].invocations
    done = redrive.replay_dead_letters(tgt, dry_run=False)
    assert [(a.source, a.outcome) for a in done] == [("lambda", "invoked again"), ("sns", "published again")]
    deadline = time.time() + 10
    while stack.invoker.stats["SubmitterFunction"].invocations == before and time.time() < deadline:
        time.sleep(0.1)
    assert stack.invoker.stats["SubmitterFunction"].invocations == before + 1
    time.sleep(2)
    assert _dead_letters(tgt) == 0
    assert len(results.events_for(key)) == 1, "the replayed event was a duplicate: nothing invoked or published twice"
    assert put["VersionId"]

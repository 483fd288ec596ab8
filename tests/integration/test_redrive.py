"""Redrive on the local stack: FAILED jobs re-submitted once, dead letters replayed through the right function."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from async_pipeline.jobs import Job
from async_pipeline.s3_events import decode_key

from asyncinfer import redrive, target
from asyncinfer.cli import main
from asyncinfer.local.stack import RunningStack
from asyncinfer.model import demo
from tests.support import ResultCollector, local_stack


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("redrive")


@pytest.fixture(scope="module")
def running(state: Path) -> Iterator[tuple[RunningStack, target.Target, ResultCollector]]:
    with local_stack(state, retry_delays=(0.2, 0.2)) as stack:
        tgt = target.local(state)
        collector = ResultCollector(tgt)
        yield stack, tgt, collector
        collector.stop()


def _visible(tgt: target.Target) -> int:
    attributes = tgt.client("sqs").get_queue_attributes(
        QueueUrl=tgt.outputs["DeadLetterQueueUrl"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _failed(tgt: target.Target, results: ResultCollector, key: str) -> tuple[Job, dict[str, Any]]:
    put = tgt.client("s3").put_object(Bucket=tgt.outputs["InputBucketName"], Key=key, Body=b"a,b,c,d,e,f\n")
    [event] = results.wait_for([key], 60)[key]
    assert event.detail["status"] == "FAILED"
    [job] = [j for j in redrive.redrivable_jobs(tgt) if j.inference_id == event.detail["inferenceId"]]
    return job, put


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
    job, _ = _failed(tgt, results, key)
    [first] = results.events_for(key)

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
    assert _visible(tgt) == 2  # the dry run gave back what it listed
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


def test_a_job_whose_key_has_a_newer_version_is_not_copied_over_it(
    running: tuple[RunningStack, target.Target, ResultCollector],
) -> None:
    _, tgt, results = running
    key = "redrive/overwritten.csv"
    job, _ = _failed(tgt, results, key)
    newer = tgt.client("s3").put_object(Bucket=tgt.outputs["InputBucketName"], Key=key, Body=demo.make_csv_payload(1))
    action = redrive.redrive_job(tgt, job, dry_run=False)
    assert action.outcome == "skipped: a newer version of the key exists", action
    head = tgt.client("s3").head_object(Bucket=tgt.outputs["InputBucketName"], Key=key)
    assert head["VersionId"] == newer["VersionId"]  # the user's upload is still the current object
    # The claim was given back: the job stays redrivable once the user wants it (e.g. after deleting the newer one).
    assert job.inference_id in {j.inference_id for j in redrive.redrivable_jobs(tgt)}


def test_a_redrive_whose_run_died_after_the_copy_is_recorded_not_copied_again(
    running: tuple[RunningStack, target.Target, ResultCollector],
) -> None:
    _, tgt, results = running
    key = "redrive/half-done.csv"
    job, put = _failed(tgt, results, key)
    bucket = tgt.outputs["InputBucketName"]
    s3 = tgt.client("s3")
    # What a run that died between its copy and its bookkeeping leaves: a stale claim and a copy naming the job.
    copied = s3.copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": bucket, "Key": key, "VersionId": put["VersionId"]},
        MetadataDirective="REPLACE",
        Metadata={redrive.REDRIVE_OF: job.inference_id},
    )
    tgt.client("dynamodb").update_item(
        TableName=tgt.outputs["JobsTableName"],
        Key={"inferenceId": {"S": job.inference_id}},
        UpdateExpression="SET redriveClaim = :t, redriveClaimedAt = :old",
        ExpressionAttributeValues={":t": {"S": "dead-run"}, ":old": {"N": str(int(time.time()) - 3600)}},
    )
    [stale] = [j for j in redrive.redrivable_jobs(tgt) if j.inference_id == job.inference_id]
    versions = len(s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"])

    action = redrive.redrive_job(tgt, stale, dry_run=False)

    assert action.outcome == f"recorded an earlier redrive (version {copied['VersionId']})", action
    assert len(s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]) == versions  # no second copy
    assert job.inference_id not in {j.inference_id for j in redrive.redrivable_jobs(tgt)}


def test_a_replay_that_fails_stays_in_the_queue_and_the_run_goes_on(
    running: tuple[RunningStack, target.Target, ResultCollector],
) -> None:
    stack, tgt, _ = running
    assert stack.stack is not None
    sqs, url = tgt.client("sqs"), tgt.outputs["DeadLetterQueueUrl"]
    missing = {
        "version": "1.0",
        "requestContext": {
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:deleted-function:$LATEST",
            "condition": "RetriesExhausted",
        },
        "requestPayload": {"Records": []},
        "responsePayload": {"errorMessage": "boom"},
    }
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(missing))
    notification = {
        "Type": "Notification",
        "TopicArn": tgt.outputs["SuccessTopicArn"],
        "Message": json.dumps({"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "TestNotification"}),
    }
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(notification))

    done = redrive.replay_dead_letters(tgt, dry_run=False)

    outcomes = sorted((a.source, a.outcome) for a in done)
    assert outcomes == [("lambda", "failed: left in the queue"), ("sns", "published again")], done
    failed = next(a for a in done if a.source == "lambda")
    assert "deleted-function" in failed.reason
    assert _dead_letters(tgt) == 1  # only the one that could not be replayed
    sqs.purge_queue(QueueUrl=url)


def test_plain_redrive_replays_dead_letters_but_resubmits_failed_jobs_only_when_asked(
    running: tuple[RunningStack, target.Target, ResultCollector], state: Path
) -> None:
    from click.testing import CliRunner

    _, tgt, results = running
    job, _ = _failed(tgt, results, "redrive/left alone.csv")
    runner = CliRunner(env={"ASYNCINFER_STATE_DIR": str(state), "COLUMNS": "200"})

    plain = runner.invoke(main, ["redrive", "--dry-run"])
    assert plain.exit_code == 0, plain.output
    assert "would copy" not in plain.output
    chosen = runner.invoke(main, ["redrive", "--dry-run", "--no-dead-letters", "--reason", "client error (4"])
    assert chosen.exit_code == 0, chosen.output
    assert "would copy" in chosen.output and job.inference_id[:24] in chosen.output

"""2. AWS API calls per file, counted with botocore's ``before-call`` hook across all three functions.

The handlers run in this process against moto (S3, DynamoDB, EventBridge, SQS) with the endpoint stubbed at the
HTTP layer: the same world as the unit tests (``tests/unit/conftest.py``), which also assert these counts
(``tests/unit/test_aws_calls.py``).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.common import ensure_paths, quiet

TARGET_PER_FILE = 5
SERVICES = ("dynamodb", "s3", "sagemaker-runtime", "events")
ENVIRONMENT = {
    "JOBS_TABLE_NAME": "jobs",
    "EVENT_BUS_NAME": "results",
    "ENDPOINT_NAME": "async-pipeline-endpoint",
    "DEFAULT_CONTENT_TYPE": "text/csv",
    "DEFAULT_ACCEPT": "text/csv",
    "REQUEST_TTL_SECONDS": "3600",
    "INVOCATION_TIMEOUT_SECONDS": "900",
    "JOB_RETENTION_DAYS": "30",
    "SUCCESS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:async-pipeline-success",
    "ERROR_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:async-pipeline-error",
    "POWERTOOLS_SERVICE_NAME": "async-inference-pipeline-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "AsyncInferencePipeline",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


INPUT_BUCKET = "async-pipeline-input-example"  # the bucket named in events/s3-*.json
OUTPUT_BUCKET = "async-pipeline-output-example"


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data

    def read(self) -> bytes:
        return self._data


class FakeEndpoint:
    """Answers InvokeEndpointAsync at the HTTP layer with 202 and the locations (as the unit tests' stub does)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        self.calls += 1
        inference_id = request.headers["X-Amzn-SageMaker-Inference-Id"]
        if isinstance(inference_id, bytes):
            inference_id = inference_id.decode()
        headers = {
            "X-Amzn-SageMaker-OutputLocation": f"s3://{OUTPUT_BUCKET}/output/{inference_id}.out",
            "X-Amzn-SageMaker-FailureLocation": f"s3://{OUTPUT_BUCKET}/failure/{inference_id}.out",
            "Content-Type": "application/json",
        }
        body = _Body(json.dumps({"InferenceId": inference_id}).encode())
        return AWSResponse(request.url, 202, headers, body)  # type: ignore[arg-type]


@dataclass
class World:
    """The moto resources a scenario looks at (the unit tests' ``World``, reduced)."""

    s3: Any
    dynamodb: Any
    sqs: Any
    results_queue_url: str
    endpoint: FakeEndpoint

    def s3_event(self, key: str, body: bytes = b"1.0,2.0,3.0,4.0\n") -> dict[str, Any]:
        from async_pipeline.s3_events import encode_key

        from tests.conftest import load_event

        put = self.s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=body)
        event = load_event("s3-put.json")
        obj = event["Records"][0]["s3"]["object"]
        obj.update(key=encode_key(key), size=len(body), eTag=put["ETag"].strip('"'), versionId=put["VersionId"])
        return event

    def job(self, inference_id: str) -> dict[str, Any]:
        from boto3.dynamodb.types import TypeDeserializer

        item = self.dynamodb.get_item(TableName="jobs", Key={"inferenceId": {"S": inference_id}})["Item"]
        return {k: TypeDeserializer().deserialize(v) for k, v in item.items()}

    def results(self) -> int:
        """How many result events reached the results queue (and drains it)."""
        count = 0
        while batch := self.sqs.receive_message(QueueUrl=self.results_queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            count += len(batch)
            for message in batch:
                self.sqs.delete_message(QueueUrl=self.results_queue_url, ReceiptHandle=message["ReceiptHandle"])
        return count


@contextmanager
def moto_world() -> Iterator[World]:
    """The unit tests' ``world`` fixture, outside pytest: moto resources from template.yaml, endpoint stubbed."""
    ensure_paths()
    import boto3
    from async_pipeline import wiring
    from moto import mock_aws

    from tests.conftest import load_template

    resources = load_template()["Resources"]
    table_props = resources["JobsTable"]["Properties"]
    rule_pattern = resources["ResultsRule"]["Properties"]["EventPattern"]
    with environment(ENVIRONMENT), mock_aws():
        s3 = boto3.client("s3")
        for bucket in (INPUT_BUCKET, OUTPUT_BUCKET):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=INPUT_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName="jobs",
            KeySchema=table_props["KeySchema"],
            AttributeDefinitions=table_props["AttributeDefinitions"],
            BillingMode=table_props["BillingMode"],
        )
        events = boto3.client("events")
        events.create_event_bus(Name="results")
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="results")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="results", EventBusName="results", EventPattern=json.dumps(rule_pattern))
        events.put_targets(Rule="results", EventBusName="results", Targets=[{"Id": "queue", "Arn": queue_arn}])
        _reset(wiring)
        endpoint = FakeEndpoint()
        wiring.client("sagemaker-runtime").meta.events.register_first(
            "before-send.sagemaker-runtime.InvokeEndpointAsync", endpoint
        )
        try:
            yield World(s3, dynamodb, sqs, queue_url, endpoint)
        finally:
            _reset(wiring)


def _reset(wiring: Any) -> None:
    for cached in (wiring.client, wiring.job_store, wiring.publisher, wiring.submitter):
        cached.cache_clear()


class Counter:
    def __init__(self) -> None:
        self.made: list[str] = []

    def __call__(self, model: Any, **_: Any) -> None:
        self.made.append(f"{model.service_model.service_name}:{model.name}")

    def take(self) -> list[str]:
        taken, self.made = self.made, []
        return taken


def _notification(world: World, inference_id: str, *, succeeded: bool) -> dict[str, Any]:
    from async_pipeline.notifications import STATUS_COMPLETED, STATUS_FAILED, InferenceNotification

    from tests.conftest import load_event

    job = world.job(inference_id)
    notification = InferenceNotification(
        inference_id=inference_id,
        invocation_status=STATUS_COMPLETED if succeeded else STATUS_FAILED,
        endpoint_name=ENVIRONMENT["ENDPOINT_NAME"],
        input_location=job["inputLocation"],
        output_location=job["outputLocation"] if succeeded else None,
        failure_location=None if succeeded else job["failureLocation"],
        failure_reason=None if succeeded else "ClientError: Received client error (415) from model.",
        received_time="2026-11-24T12:00:00.455Z",
        event_time="2026-11-24T12:00:01.608Z",
        aws_region="us-east-1",
    )
    event = load_event("sns-success.json" if succeeded else "sns-error.json")
    event["Records"][0]["Sns"]["Message"] = json.dumps(notification.to_message())
    return event


def run() -> dict[str, Any]:
    """Each scenario's calls, as ``service:Operation`` lists, plus the checks that make them meaningful."""
    with moto_world() as world, quiet():
        import error_handler
        import submitter
        import success_handler
        from async_pipeline import wiring
        from async_pipeline.inference_ids import identify
        from async_pipeline.s3_events import parse_record

        from tests.conftest import FakeLambdaContext, load_event

        counter = Counter()
        for service in SERVICES:
            wiring.client(service).meta.events.register("before-call", counter)
        scenarios: dict[str, list[str]] = {}
        for succeeded, handler in ((True, success_handler), (False, error_handler)):
            label = "completed" if succeeded else "failed"
            s3_event = world.s3_event(f"incoming/{label}.csv")
            inference_id = identify(parse_record(s3_event["Records"][0])).inference_id
            submitter.lambda_handler(s3_event, FakeLambdaContext())
            scenarios[f"{label}: submitter"] = counter.take()
            notification = _notification(world, inference_id, succeeded=succeeded)
            handler.lambda_handler(notification, FakeLambdaContext())
            scenarios[f"{label}: {handler.__name__}"] = counter.take()
            submitter.lambda_handler(copy.deepcopy(s3_event), FakeLambdaContext())
            scenarios[f"{label}: duplicate S3 delivery"] = counter.take()
            handler.lambda_handler(copy.deepcopy(notification), FakeLambdaContext())
            scenarios[f"{label}: duplicate SNS delivery"] = counter.take()
        empty = world.s3_event("incoming/empty.csv", b"")
        submitter.lambda_handler(empty, FakeLambdaContext())
        scenarios["rejected before the endpoint (empty file): submitter"] = counter.take()
        submitter.lambda_handler(load_event("s3-test-event.json"), FakeLambdaContext())
        success_handler.lambda_handler(load_event("sns-test-notification.json"), FakeLambdaContext())
        scenarios["s3:TestEvent + SageMaker TestNotification"] = counter.take()
        invocations = world.endpoint.calls
        events = world.results()

    happy = len(scenarios["completed: submitter"]) + len(scenarios["completed: success_handler"])
    failed = len(scenarios["failed: submitter"]) + len(scenarios["failed: error_handler"])
    duplicates = [name for name in scenarios if "duplicate" in name]
    duplicate = max(len(scenarios[name]) for name in duplicates)
    return {
        "target_per_file": TARGET_PER_FILE,
        "per_file_completed": happy,
        "per_file_failed": failed,
        "duplicate_delivery_extra": duplicate,
        "endpoint_invocations": invocations,  # 2 files went to the endpoint; duplicates added none
        "result_events": events,  # 3 files finished (completed, failed, rejected); duplicates added none
        "meets_target": happy <= TARGET_PER_FILE,
        "scenarios": scenarios,
    }


def summary_rows(section: dict[str, Any]) -> list[list[str]]:
    return [[name, str(len(made)), ", ".join(made) or "-"] for name, made in section["scenarios"].items()]

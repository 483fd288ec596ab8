"""The moto world the unit tests and `make bench` share: S3, DynamoDB, EventBridge and SQS built from template.yaml's
own properties, and an asynchronous endpoint stubbed at the HTTP layer of a real botocore client (so requests are
serialized and validated against the real service model, and responses parsed by it).

The layer must be importable (pytest's ``pythonpath``; ``bench.common.ensure_paths``) before ``world`` is entered.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from asyncinfer.local import moto_patches

# moto checks a ConditionExpression and writes without a lock between threads; DynamoDB's conditional writes are
# atomic per item, and the concurrency tests rely on that (without it ~5% of runs let two claims both succeed).
moto_patches.apply()

ENDPOINT_NAME = "async-pipeline-endpoint"
INPUT_BUCKET = "async-pipeline-input-example"  # the bucket named in events/s3-*.json
OUTPUT_BUCKET = "async-pipeline-output-example"
SUCCESS_TOPIC = "arn:aws:sns:us-east-1:123456789012:async-pipeline-success"  # as in events/sns-*.json
ERROR_TOPIC = "arn:aws:sns:us-east-1:123456789012:async-pipeline-error"


class Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data

    def close(self) -> None:
        return None


def _as_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    return bytes(body.read())


@dataclass
class FakeAsyncEndpoint:
    """Answers InvokeEndpointAsync like the service does: 202 with the locations, or a modeled error.

    ``failures`` is a queue of (status, code, message) to answer with before succeeding again.
    """

    calls: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)  # each call's body (the inline payload; empty: none)
    failures: list[tuple[int, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        with self.lock:
            self.calls.append({"url": request.url, **headers})
            self.bodies.append(_as_bytes(request.body))
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            status, code, message = failure
            body = json.dumps({"message": message}).encode()
            return AWSResponse(request.url, status, {"x-amzn-ErrorType": code}, Body(body))  # type: ignore[arg-type]
        inference_id = headers["X-Amzn-SageMaker-Inference-Id"]
        # As the service (and the local endpoint) names them: Filename and S3OutputPathExtension when given.
        name = headers.get("X-Amzn-SageMaker-Filename") or f"{inference_id}.out"
        extension = headers.get("X-Amzn-SageMaker-S3OutputPathExtension")
        folder = f"{extension}/" if extension else ""
        stem = name.split(".", 1)[0]
        return AWSResponse(
            request.url,
            202,
            {  # type: ignore[arg-type]
                "X-Amzn-SageMaker-OutputLocation": f"s3://{OUTPUT_BUCKET}/output/{folder}{name}",
                "X-Amzn-SageMaker-FailureLocation": f"s3://{OUTPUT_BUCKET}/failure/{folder}{stem}-error.out",
                "Content-Type": "application/json",
            },
            Body(json.dumps({"InferenceId": inference_id}).encode()),
        )

    def input_locations(self) -> list[str | None]:
        """Each call's InputLocation (None: the payload went inline)."""
        return [call.get("X-Amzn-SageMaker-InputLocation") for call in self.calls]


@dataclass
class World:
    """Handles on the moto resources a test looks at."""

    s3: Any
    dynamodb: Any
    sqs: Any
    table: str
    bus: str
    results_queue_url: str
    endpoint: FakeAsyncEndpoint

    def put_object(self, key: str, body: bytes = b"1.0,2.0,3.0,4.0\n", **extra: Any) -> dict[str, Any]:
        response: dict[str, Any] = self.s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=body, **extra)
        return response

    def s3_event(self, key: str, body: bytes = b"1.0,2.0,3.0,4.0\n", **extra: Any) -> dict[str, Any]:
        """Upload an object and return the event S3 would send for it (shape of events/s3-put.json)."""
        from async_pipeline.s3_events import encode_key

        from tests.samples import load_event

        put = self.put_object(key, body, **extra)
        event = load_event("s3-put.json")
        obj = event["Records"][0]["s3"]["object"]
        obj.update(key=encode_key(key), size=len(body), eTag=put["ETag"].strip('"'), versionId=put["VersionId"])
        return event

    def job(self, inference_id: str) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        item = self.dynamodb.get_item(TableName=self.table, Key={"inferenceId": {"S": inference_id}}).get("Item")
        if item is None:
            return None
        deserializer = TypeDeserializer()
        return {k: deserializer.deserialize(v) for k, v in item.items()}

    def notification_event(self, inference_id: str, *, succeeded: bool) -> dict[str, Any]:
        """The SNS event the endpoint's notification becomes, for a job the submitter left SUBMITTED (shape of
        events/sns-success.json and sns-error.json)."""
        from async_pipeline.notifications import STATUS_COMPLETED, STATUS_FAILED, InferenceNotification

        from tests.samples import load_event

        job = self.job(inference_id)
        assert job is not None, inference_id
        notification = InferenceNotification(
            inference_id=inference_id,
            invocation_status=STATUS_COMPLETED if succeeded else STATUS_FAILED,
            endpoint_name=ENDPOINT_NAME,
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

    def results(self) -> list[dict[str, Any]]:
        """Every result event delivered to the results queue so far (EventBridge envelopes)."""
        events: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.results_queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return events
            for message in batch:
                events.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.results_queue_url, ReceiptHandle=message["ReceiptHandle"])


def deploy_outputs(world: World, stack_name: str, parameters: dict[str, str] | None = None) -> None:
    """A CloudFormation stack in moto whose outputs name this world's resources, as a deployed stack's do (what
    ``--stack-name`` reads), with these parameter values, and the endpoint they name (DescribeEndpoint)."""
    outputs = {
        "InputBucketName": INPUT_BUCKET,
        "OutputBucketName": OUTPUT_BUCKET,
        "SuccessTopicArn": SUCCESS_TOPIC,
        "ErrorTopicArn": ERROR_TOPIC,
        "EndpointName": ENDPOINT_NAME,
        "JobsTableName": world.table,
        "EventBusName": world.bus,
        "ResultsQueueUrl": world.results_queue_url,
        "DeadLetterQueueUrl": world.results_queue_url,
    }
    values = {"InputPrefix": "", "InputSuffix": "", **(parameters or {})}
    template = {
        "Parameters": {name: {"Type": "String"} for name in values},
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
    )
    sagemaker = boto3.client("sagemaker")
    role = "arn:aws:iam::123456789012:role/sagemaker"
    sagemaker.create_model(ModelName="m", ExecutionRoleArn=role, PrimaryContainer={"Image": "x"})
    sagemaker.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT_NAME, EndpointConfigName="c")


@dataclass
class CallCounter:
    """A botocore ``before-call`` hook: every API call (not HTTP attempt: retries are the same call) as
    ``service:Operation``."""

    made: list[str] = field(default_factory=list)

    def __call__(self, model: Any, **_: Any) -> None:
        self.made.append(f"{model.service_model.service_name}:{model.name}")

    def take(self) -> list[str]:
        taken, self.made = self.made, []
        return taken


HANDLER_ENVIRONMENT = {
    "JOBS_TABLE_NAME": "jobs",
    "EVENT_BUS_NAME": "results",
    "ENDPOINT_NAME": ENDPOINT_NAME,
    "DEFAULT_CONTENT_TYPE": "text/csv",
    "DEFAULT_ACCEPT": "text/csv",
    "REQUEST_TTL_SECONDS": "3600",
    "INVOCATION_TIMEOUT_SECONDS": "900",
    "STAGING_LOCATION": f"s3://{OUTPUT_BUCKET}/staging/",
    "JOB_RETENTION_DAYS": "30",
    "SUCCESS_TOPIC_ARN": SUCCESS_TOPIC,
    "ERROR_TOPIC_ARN": ERROR_TOPIC,
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


@contextmanager
def world(template: dict[str, Any]) -> Iterator[World]:
    """Inside moto: the buckets, the jobs table, the bus with its rule to the results queue; the handlers'
    environment set; InvokeEndpointAsync answered by a ``FakeAsyncEndpoint``."""
    from async_pipeline import wiring

    resources = template["Resources"]
    table_props = resources["JobsTable"]["Properties"]
    rule_pattern = resources["ResultsRule"]["Properties"]["EventPattern"]
    with environment(HANDLER_ENVIRONMENT), mock_aws():
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
        # The handlers' cached clients are made again, inside this moto mock.
        wiring.reset()
        endpoint = FakeAsyncEndpoint()
        # First in line, ahead of moto's own (canned, config-blind) InvokeEndpointAsync.
        wiring.client("sagemaker-runtime").meta.events.register_first(
            "before-send.sagemaker-runtime.InvokeEndpointAsync", endpoint
        )
        try:
            yield World(s3, dynamodb, sqs, "jobs", "results", queue_url, endpoint)
        finally:
            wiring.reset()

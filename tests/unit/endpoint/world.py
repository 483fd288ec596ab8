"""The world the endpoint emulator's tests run in: moto in server mode (S3, SNS, SQS, SageMaker control plane), a
fake model container whose behaviour the request chooses, and the real boto3 sagemaker-runtime client.

The fake container answers by request: ``text/csv`` → 200 ``0.5\\n``; a body ``sleep:<s>`` → waits then answers;
``application/x-fail500`` → 500; ``application/x-chunked`` → 200 without Content-Length; Accept
``application/x-big`` → 200 KB; any other type → 415. It counts simultaneous requests and can hold them (``gate``).
The fixtures that start these are in this package's conftest.py.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from async_pipeline.notifications import InferenceNotification, parse_notification
from botocore.config import Config

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "emulator-test-bucket"
BIG = 200 * 1024


# --- the fake model container -----------------------------------------------------------------------------------------


class FakeContainer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current = 0
        self.max_seen = 0
        self.requests: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.gate.set()
        container = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._reply(200, b"", None)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with container.lock:
                    container.current += 1
                    container.max_seen = max(container.max_seen, container.current)
                    container.requests.append({"headers": dict(self.headers), "body": body})
                try:
                    container.gate.wait(10)
                    self._answer(body)
                finally:
                    with container.lock:
                        container.current -= 1

            def _answer(self, body: bytes) -> None:
                content_type = self.headers.get("Content-Type")
                if body.startswith(b"sleep:"):
                    time.sleep(float(body[6:]))
                    self._reply(200, b"slept\n", "text/plain")
                elif self.headers.get("Accept") == "application/x-big":
                    self._reply(200, b"x" * BIG, "application/octet-stream")
                elif content_type == "application/x-fail500":
                    self._reply(500, b"boom", "text/plain")
                elif content_type == "application/x-chunked":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/csv")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"4\r\n0.5\n\r\n0\r\n\r\n")
                elif content_type == "text/csv":
                    self._reply(200, b"0.5\n", "text/csv")
                else:
                    self._reply(415, f"Content-type {content_type} is not supported.".encode(), "text/plain")

            def _reply(self, status: int, body: bytes, content_type: str | None) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        # A request still sleeping from an earlier test keeps counting in `current`.
        with self.lock:
            self.max_seen = self.current
            self.requests.clear()
        self.gate.set()

    def stop(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


class FakeClock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


# --- the stack in moto ------------------------------------------------------------------------------------------------


@dataclass
class Endpoint:
    name: str
    output_path: str
    failure_path: str | None
    success_queue: str | None
    error_queue: str | None


@dataclass
class World:
    moto_url: str
    container: FakeContainer
    session: boto3.session.Session
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(service, endpoint_url=self.moto_url, region_name=REGION)
        return self.clients[service]

    def _subscribed_queue(self, topic_arn: str) -> str:
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)  # raw delivery off
        return url

    def endpoint(
        self,
        *,
        include: tuple[str, ...] = (),
        concurrency: int | None = 1,
        instances: int = 1,
        failure_path: bool = True,
        notifications: bool = True,
    ) -> Endpoint:
        name = f"ep-{uuid.uuid4().hex[:10]}"
        output = f"s3://{BUCKET}/{name}/output/"
        failure = f"s3://{BUCKET}/{name}/failure" if failure_path else None
        output_config: dict[str, Any] = {"S3OutputPath": output}
        if failure:
            output_config["S3FailurePath"] = failure
        success_queue = error_queue = None
        if notifications:
            sns = self.client("sns")
            success = sns.create_topic(Name=f"{name}-success")["TopicArn"]
            error = sns.create_topic(Name=f"{name}-error")["TopicArn"]
            success_queue, error_queue = self._subscribed_queue(success), self._subscribed_queue(error)
            output_config["NotificationConfig"] = {
                "SuccessTopic": success,
                "ErrorTopic": error,
                "IncludeInferenceResponseIn": list(include),
            }
        async_config: dict[str, Any] = {"OutputConfig": output_config}
        if concurrency is not None:
            async_config["ClientConfig"] = {"MaxConcurrentInvocationsPerInstance": concurrency}
        sm = self.client("sagemaker")
        sm.create_model(
            ModelName=name,
            PrimaryContainer={"Image": f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:1.7-1"},
            ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sagemaker",
        )
        variant = {
            "VariantName": "AllTraffic",
            "ModelName": name,
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": instances,
        }
        sm.create_endpoint_config(
            EndpointConfigName=name, ProductionVariants=[variant], AsyncInferenceConfig=async_config
        )
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
        return Endpoint(name, output, failure, success_queue, error_queue)

    def messages(self, queue_url: str | None, count: int, *, skip_tests: bool = True, timeout: float = 10) -> list[Any]:
        """``count`` notifications (SNS envelope unwrapped), in arrival order; TestNotifications skipped by default."""
        assert queue_url is not None
        sqs, found = self.client("sqs"), []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            reply = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in reply.get("Messages", []):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                raw = json.loads(json.loads(message["Body"])["Message"])
                if skip_tests and raw.get("eventName") == "TestNotification":
                    continue
                found.append(raw)
        assert len(found) == count, f"expected {count} notifications, got {found}"
        return found

    def pending(self, queue_url: str | None) -> int:
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    def s3_object(self, location: str) -> tuple[bytes, str]:
        bucket, _, key = location.removeprefix("s3://").partition("/")
        obj = self.client("s3").get_object(Bucket=bucket, Key=key)
        return obj["Body"].read(), obj["ContentType"]

    def put_input(self, key: str, body: bytes = b"1.5,16.0,14,23.0") -> str:
        self.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
        return f"s3://{BUCKET}/{key}"


# --- clients and helpers ----------------------------------------------------------------------------------------------


def runtime(url: str | None = None) -> Any:
    return boto3.client(
        "sagemaker-runtime", endpoint_url=url, region_name=REGION, config=Config(retries={"max_attempts": 0})
    )


def notification(raw: Any) -> InferenceNotification:
    parsed = parse_notification(json.dumps(raw))
    assert isinstance(parsed, InferenceNotification)
    return parsed


def raw_post(
    url: str, path: str, headers: dict[str, str | bytes], body: bytes = b"", method: str = "POST"
) -> tuple[int, dict[str, str], dict[str, Any]]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.putrequest(method, path)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())
    finally:
        conn.close()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)

"""The SageMaker async endpoint emulator, over real sockets: moto in server mode (S3, SNS, SQS, SageMaker control
plane), a fake model container whose behaviour the request chooses, and the real boto3 sagemaker-runtime client.

The fake container answers by request: ``text/csv`` → 200 ``0.5\\n``; a body ``sleep:<s>`` → waits then answers;
``application/x-fail500`` → 500; ``application/x-chunked`` → 200 without Content-Length; Accept
``application/x-big`` → 200 KB; any other type → 415. It counts simultaneous requests and can hold them (``gate``).
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from async_pipeline.notifications import InferenceNotification, parse_notification
from async_pipeline.notifications import TestNotification as SageMakerTestNotification
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from moto.server import ThreadedMotoServer

from asyncinfer.local.sagemaker_runtime import AsyncEndpointEmulator, EmulatorEvent, InvocationRequest

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


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name=REGION).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


@pytest.fixture(scope="module")
def container() -> Iterator[FakeContainer]:
    fake = FakeContainer()
    yield fake
    fake.stop()


@pytest.fixture
def world(moto_url: str, container: FakeContainer, session: boto3.session.Session) -> World:
    container.reset()
    return World(moto_url, container, session)


@pytest.fixture(scope="module")
def session() -> boto3.session.Session:
    # One session for every emulator of the module: clients then share the loaded service models.
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(world: World, clock: FakeClock) -> Iterator[AsyncEndpointEmulator]:
    emu = AsyncEndpointEmulator(world.moto_url, REGION, world.container.url, clock=clock, session=world.session)
    emu.start()
    yield emu
    emu.stop(grace_seconds=0.5)


def runtime(url: str | None = None) -> Any:
    return boto3.client(
        "sagemaker-runtime", endpoint_url=url, region_name=REGION, config=Config(retries={"max_attempts": 0})
    )


def notification(raw: Any) -> InferenceNotification:
    parsed = parse_notification(json.dumps(raw))
    assert isinstance(parsed, InferenceNotification)
    return parsed


# --- success --------------------------------------------------------------------------------------------------------


def test_accepts_with_202_and_the_locations_then_completes(
    world: World, emulator: AsyncEndpointEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = world.endpoint()
    emulator.register_endpoint(ep.name)
    source = world.put_input("inputs/a.csv")
    # The unchanged client, pointed at the emulator by the environment alone.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", emulator.url)
    reply = runtime().invoke_endpoint_async(
        EndpointName=ep.name,
        InputLocation=source,
        ContentType="text/csv",
        Accept="text/csv",
        CustomAttributes="trace=abc",
        InferenceId="req-0001",
    )
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert reply["InferenceId"] == "req-0001"
    output, failure = reply["OutputLocation"], reply["FailureLocation"]
    assert output.startswith(ep.output_path) and output.endswith(".out")
    assert failure.startswith(f"{ep.failure_path}/") and failure.endswith("-error.out")
    assert "req-0001" not in output  # an unrelated uuid, as observed on SageMaker

    (raw,) = world.messages(ep.success_queue, 1)
    assert raw["eventSource"] == "aws:sagemaker" and raw["eventName"] == "InferenceResult"
    note = notification(raw)
    assert note.succeeded and note.invocation_status == "Completed"
    assert note.inference_id == "req-0001"
    assert note.output_location == output
    assert note.input_location == source
    assert note.endpoint_name == ep.name
    assert note.aws_region == REGION
    assert (note.request_content_type, note.accept, note.custom_attributes) == ("text/csv", "text/csv", "trace=abc")
    assert note.response_content_type == "text/csv"
    assert note.response is None  # IncludeInferenceResponseIn is empty
    assert note.duration_ms is not None and note.duration_ms >= 0
    assert world.s3_object(output) == (b"0.5\n", "text/csv")

    (seen,) = world.container.requests
    assert seen["body"] == b"1.5,16.0,14,23.0"
    assert seen["headers"]["Content-Type"] == "text/csv"
    assert seen["headers"]["Accept"] == "text/csv"
    assert seen["headers"]["X-Amzn-SageMaker-Custom-Attributes"] == "trace=abc"
    stats = emulator.stats(ep.name)
    assert (stats["accepted"], stats["completed"], stats["failed"], stats["backlog"]) == (1, 1, 0, 0)


def test_generates_an_inference_id_and_takes_an_inline_body(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    reply = runtime(emulator.url).invoke_endpoint_async(EndpointName=ep.name, Body=b"1,2,3", ContentType="text/csv")
    uuid.UUID(reply["InferenceId"])
    note = notification(world.messages(ep.success_queue, 1)[0])
    assert note.inference_id == reply["InferenceId"]
    assert note.input_location is None  # an inline payload has no S3 location
    assert world.container.requests[0]["body"] == b"1,2,3"
    assert world.s3_object(reply["OutputLocation"])[0] == b"0.5\n"


def test_reads_an_input_key_with_unicode_spaces_and_plus(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    source = world.put_input("dossier/résumé 日本 +%20.csv", b"7,8,9")
    reply = runtime(emulator.url).invoke_endpoint_async(
        EndpointName=ep.name, InputLocation=source, ContentType="text/csv"
    )
    note = notification(world.messages(ep.success_queue, 1)[0])
    assert note.input_location == source
    assert world.container.requests[0]["body"] == b"7,8,9"
    assert world.s3_object(reply["OutputLocation"])[0] == b"0.5\n"


def test_filename_and_output_path_extension_name_the_objects(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    rt = runtime(emulator.url)
    ok = rt.invoke_endpoint_async(
        EndpointName=ep.name,
        Body=b"1",
        ContentType="text/csv",
        S3OutputPathExtension="batch/7",
        Filename="result.csv",
    )
    assert ok["OutputLocation"] == f"{ep.output_path}batch/7/result.csv"
    assert ok["FailureLocation"] == f"{ep.failure_path}/batch/7/result-error.out"
    bad = rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="application/json", Filename="x.json")
    world.messages(ep.success_queue, 1)
    note = notification(world.messages(ep.error_queue, 1)[0])
    assert note.failure_location == bad["FailureLocation"] == f"{ep.failure_path}/x-error.out"
    assert world.s3_object(ok["OutputLocation"])[0] == b"0.5\n"


def test_without_topics_or_failure_path_nothing_is_published(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint(failure_path=False, notifications=False)
    reply = runtime(emulator.url).invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")
    assert "FailureLocation" not in reply
    assert emulator.wait_until_idle(ep.name, 5)
    assert world.s3_object(reply["OutputLocation"])[0] == b"0.5\n"
    stats = emulator.stats(ep.name)
    assert (stats["completed"], stats["notifications_published"]) == (1, 0)


# --- failures -------------------------------------------------------------------------------------------------------


def test_model_errors_write_the_failure_object_and_notify(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    rt = runtime(emulator.url)
    r415 = rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"{}", ContentType="application/json", InferenceId="a")
    assert emulator.wait_until_idle(ep.name, 5)  # keeps the notifications in order
    r500 = rt.invoke_endpoint_async(
        EndpointName=ep.name, Body=b"1", ContentType="application/x-fail500", InferenceId="b"
    )
    first, second = (notification(raw) for raw in world.messages(ep.error_queue, 2))

    assert (first.inference_id, first.invocation_status, first.succeeded) == ("a", "Failed", False)
    assert first.failure_reason == (
        'ClientError: Received client error (415) from model with message "Content-type application/json is not '
        'supported.". See the SageMaker Endpoint logs in your account for more information.'
    )
    assert first.failure_location == r415["FailureLocation"]
    assert first.response_content_type == "text/plain"
    assert first.response is None
    assert world.s3_object(r415["FailureLocation"]) == (
        b"Content-type application/json is not supported.",
        "text/plain",
    )

    assert second.inference_id == "b"
    assert second.failure_reason is not None
    assert second.failure_reason.startswith('ClientError: Received server error (500) from model with message "boom"')
    assert world.s3_object(r500["FailureLocation"])[0] == b"boom"
    assert world.pending(ep.success_queue) == 1  # only the TestNotification
    stats = emulator.stats(ep.name)
    assert (stats["completed"], stats["failed"]) == (0, 2)


def test_a_missing_input_object_fails_the_request(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    missing = f"s3://{BUCKET}/inputs/never-uploaded.csv"
    reply = runtime(emulator.url).invoke_endpoint_async(EndpointName=ep.name, InputLocation=missing)
    note = notification(world.messages(ep.error_queue, 1)[0])
    assert note.failure_reason is not None and note.failure_reason.startswith(
        f"ClientError: Failed to download the request payload from {missing}"
    )
    assert note.failure_location == reply["FailureLocation"]
    assert world.container.requests == []


def test_a_chunked_container_response_fails_as_on_sagemaker(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    runtime(emulator.url).invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="application/x-chunked")
    note = notification(world.messages(ep.error_queue, 1)[0])
    assert note.failure_reason is not None and "Content-Length" in note.failure_reason


def test_invocation_timeout(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    started = time.monotonic()
    reply = runtime(emulator.url).invoke_endpoint_async(
        EndpointName=ep.name, Body=b"sleep:3", ContentType="text/csv", InvocationTimeoutSeconds=1
    )
    note = notification(world.messages(ep.error_queue, 1)[0])
    assert time.monotonic() - started < 2.8  # failed at the timeout, not when the model finished
    assert note.failure_reason is not None and "InvocationTimeoutSeconds (1 s)" in note.failure_reason
    assert note.response is None and note.response_content_type is None
    body, content_type = world.s3_object(reply["FailureLocation"])
    assert body.decode() == note.failure_reason and content_type.startswith("text/plain")
    assert emulator.stats(ep.name)["timed_out"] == 1


def test_before_invoke_hook_can_fail_an_invocation_and_events_are_observable(world: World, clock: FakeClock) -> None:
    ep = world.endpoint()
    events: list[EmulatorEvent] = []

    def inject(request: InvocationRequest) -> None:
        if request.inference_id == "doomed":
            raise RuntimeError("InjectedFault: instance lost")

    with AsyncEndpointEmulator(
        world.moto_url,
        REGION,
        lambda name: world.container.url,
        clock=clock,
        before_invoke=inject,
        on_event=events.append,
        session=world.session,
    ) as emu:
        rt = runtime(emu.url)
        rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv", InferenceId="doomed")
        note = notification(world.messages(ep.error_queue, 1)[0])
        assert note.failure_reason == "InjectedFault: instance lost"
        assert emu.wait_until_idle(ep.name, 5)
    assert world.container.requests == []
    kinds = [e.kind for e in events if e.inference_id == "doomed"]
    assert kinds[:3] == ["accepted", "started", "failed"] and "published" in kinds


# --- IncludeInferenceResponseIn -------------------------------------------------------------------------------------


def test_include_inference_response_in_success_only(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint(include=("SUCCESS_NOTIFICATION_TOPIC",))
    rt = runtime(emulator.url)
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"{}", ContentType="application/json")
    success = world.messages(ep.success_queue, 1)[0]
    assert success["responseBody"]["encoding"] == "BASE64"
    note = notification(success)
    assert note.response is not None and base64.b64decode(note.response.content) == b"0.5\n"
    assert "responseBody" not in world.messages(ep.error_queue, 1)[0]
    # Bodies over 128 KB are never embedded.
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv", Accept="application/x-big")
    big = world.messages(ep.success_queue, 1)[0]
    assert "responseBody" not in big
    assert len(world.s3_object(big["responseParameters"]["outputLocation"])[0]) == BIG


def test_include_inference_response_in_error_only(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint(include=("ERROR_NOTIFICATION_TOPIC",))
    rt = runtime(emulator.url)
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"{}", ContentType="application/json")
    assert "responseBody" not in world.messages(ep.success_queue, 1)[0]
    note = notification(world.messages(ep.error_queue, 1)[0])
    assert note.response is not None and note.response.encoding == "BASE64"
    assert base64.b64decode(note.response.content) == b"Content-type application/json is not supported."


# --- TestNotification, lookup, configuration ------------------------------------------------------------------------


def test_test_notification_on_register_update_and_lazy_lookup(world: World, emulator: AsyncEndpointEmulator) -> None:
    expected = SageMakerTestNotification().to_message()
    ep = world.endpoint()
    settings = emulator.register_endpoint(ep.name)
    assert settings.max_concurrent_invocations_per_instance == 1
    for queue in (ep.success_queue, ep.error_queue):
        (raw,) = world.messages(queue, 1, skip_tests=False)
        assert raw == expected
        assert isinstance(parse_notification(json.dumps(raw)), SageMakerTestNotification)
    emulator.register_endpoint(ep.name)  # idempotent: no second message
    emulator.update_endpoint(ep.name)
    assert world.messages(ep.success_queue, 1, skip_tests=False) == [expected]

    # An endpoint created after start() and never registered is found on its first request.
    late = world.endpoint(concurrency=None)
    runtime(emulator.url).invoke_endpoint_async(EndpointName=late.name, Body=b"1", ContentType="text/csv")
    first, second = world.messages(late.success_queue, 2, skip_tests=False)
    assert first == expected and second["eventName"] == "InferenceResult"
    # Without ClientConfig the emulator uses one invocation at a time per instance.
    assert emulator.stats(late.name)["max_concurrency_per_instance"] == 1


def test_unknown_endpoint_is_a_validation_error(emulator: AsyncEndpointEmulator) -> None:
    with pytest.raises(ClientError) as caught:
        runtime(emulator.url).invoke_endpoint_async(EndpointName="no-such-endpoint", Body=b"1")
    error = caught.value.response
    assert error["Error"]["Code"] == "ValidationError"
    assert error["Error"]["Message"] == f"Endpoint no-such-endpoint of account {ACCOUNT} not found."
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_botocore_parses_a_server_side_validation_error(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    # botocore checks only minimums on the client side, so a too-large value reaches the server.
    with pytest.raises(ClientError) as caught:
        runtime(emulator.url).invoke_endpoint_async(EndpointName=ep.name, Body=b"1", RequestTTLSeconds=21601)
    assert caught.value.response["Error"] == {
        "Code": "ValidationError",
        "Message": "1 validation error detected: Value '21601' at 'requestTTLSeconds' failed to satisfy constraint: "
        "Member must have value less than or equal to 21600",
    }
    assert type(caught.value).__name__ == "ValidationError"  # the modeled exception class


# --- validation, over raw HTTP (botocore would block some of these values itself) ----------------------------------


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


IL = "X-Amzn-SageMaker-InputLocation"
ID = "X-Amzn-SageMaker-Inference-Id"
TTL = "X-Amzn-SageMaker-RequestTTLSeconds"
TIMEOUT = "X-Amzn-SageMaker-InvocationTimeoutSeconds"
CT, CA = "X-Amzn-SageMaker-Content-Type", "X-Amzn-SageMaker-Custom-Attributes"
LEN_MAX, LEN_MIN = "have length less than or equal to", "have length greater than or equal to"
VAL_MAX, VAL_MIN = "have value less than or equal to", "have value greater than or equal to"
PATTERN = "satisfy regular expression pattern: "
# (id, headers, body, member, constraint): the answer must contain "at '<member>' failed to satisfy constraint:
# Member must <constraint>"; a member of None means a message of its own (given as the constraint).
CASES: list[tuple[str, dict[str, str | bytes], bytes, str | None, str]] = [
    ("id-too-long", {ID: "a" * 65}, b"1", "inferenceId", f"{LEN_MAX} 64"),
    ("id-empty", {ID: ""}, b"1", "inferenceId", f"{LEN_MIN} 1"),
    ("id-leading-whitespace", {ID: "\x0babc"}, b"1", "inferenceId", PATTERN + r"\A\S[\p{Print}]*\z"),
    ("id-control-char", {ID: "ab\x01c"}, b"1", "inferenceId", PATTERN + r"\A\S[\p{Print}]*\z"),
    ("id-non-ascii", {ID: "ré".encode()}, b"1", "inferenceId", PATTERN + r"\A\S[\p{Print}]*\z"),
    ("ttl-low", {TTL: "59"}, b"1", "requestTTLSeconds", f"{VAL_MIN} 60"),
    ("ttl-high", {TTL: "21601"}, b"1", "requestTTLSeconds", f"{VAL_MAX} 21600"),
    ("ttl-not-int", {TTL: "soon"}, b"1", "requestTTLSeconds", "be an integer"),
    ("timeout-low", {TIMEOUT: "0"}, b"1", "invocationTimeoutSeconds", f"{VAL_MIN} 1"),
    ("timeout-high", {TIMEOUT: "3601"}, b"1", "invocationTimeoutSeconds", f"{VAL_MAX} 3600"),
    ("input-scheme", {IL: "ftp://bucket/key"}, b"", "inputLocation", PATTERN + "^(https|s3)://([^/]+)/?(.*)$"),
    ("input-no-bucket", {IL: "s3:///key"}, b"", "inputLocation", PATTERN),
    ("input-too-long", {IL: "s3://b/" + "k" * 1018}, b"", "inputLocation", f"{LEN_MAX} 1024"),
    ("input-empty", {IL: ""}, b"", "inputLocation", f"{LEN_MIN} 1"),
    ("body-too-large", {}, b"x" * 128_001, "body", f"{LEN_MAX} 128000"),
    ("extension", {"X-Amzn-SageMaker-S3OutputPathExtension": "s3:x"}, b"1", "s3OutputPathExtension", PATTERN),
    ("filename-two-dots", {"X-Amzn-SageMaker-Filename": "a.b.c"}, b"1", "filename", PATTERN),
    ("filename-too-long", {"X-Amzn-SageMaker-Filename": "f" * 33}, b"1", "filename", f"{LEN_MAX} 32"),
    ("content-type", {CT: "text/é".encode()}, b"1", "contentType", PATTERN + r"\p{ASCII}*"),
    ("custom-attributes", {CA: "c" * 1025}, b"1", "customAttributes", f"{LEN_MAX} 1024"),
    ("both", {IL: "s3://b/k"}, b"1", None, "InputLocation and Body are mutually exclusive"),
    ("neither", {}, b"", None, "Either InputLocation or Body must be provided."),
    ("two-errors", {ID: "a" * 65, TTL: "1"}, b"1", None, "2 validation errors detected: "),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "body", "member", "constraint"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validation_errors(
    bare_emulator: AsyncEndpointEmulator,
    headers: dict[str, str | bytes],
    body: bytes,
    member: str | None,
    constraint: str,
) -> None:
    path = "/endpoints/any-endpoint/async-invocations"
    status, response_headers, payload = raw_post(bare_emulator.url, path, headers, body)
    assert status == 400
    assert response_headers["x-amzn-errortype"] == "ValidationError"
    if member is None:
        assert constraint in payload["message"]
    else:
        # An empty value breaks its length and its pattern: both are listed, as AWS does.
        assert re.match(r"[12] validation errors? detected: Value ", payload["message"])
        assert f"at '{member}' failed to satisfy constraint: Member must {constraint}" in payload["message"]
    # Values are echoed, except those of sensitive members (CustomAttributes, Body).
    assert ("Value at '" in payload["message"]) == (member in ("customAttributes", "body"))


def test_endpoint_name_and_unknown_operations(bare_emulator: AsyncEndpointEmulator) -> None:
    status, headers, payload = raw_post(bare_emulator.url, "/endpoints/bad_name/async-invocations", {}, b"1")
    assert (status, headers["x-amzn-errortype"]) == (400, "ValidationError")
    assert "Value 'bad_name' at 'endpointName' failed to satisfy constraint" in payload["message"]
    for method, path in (
        ("POST", "/endpoints/x/invocations"),
        ("GET", "/endpoints/x/async-invocations"),
        ("POST", "/"),
    ):
        status, headers, _ = raw_post(bare_emulator.url, path, {}, method=method)
        assert (status, headers["x-amzn-errortype"]) == (404, "UnknownOperationException")


@pytest.fixture(scope="module")
def bare_emulator(moto_url: str, session: boto3.session.Session) -> Iterator[AsyncEndpointEmulator]:
    with AsyncEndpointEmulator(moto_url, REGION, "http://127.0.0.1:9", session=session) as emu:
        yield emu


# --- capacity: concurrency, scale to zero, TTL ----------------------------------------------------------------------


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_concurrency_is_instances_times_max_concurrent_invocations(
    world: World, emulator: AsyncEndpointEmulator
) -> None:
    ep = world.endpoint(instances=2, concurrency=2)
    rt = runtime(emulator.url)
    container = world.container
    wait_for(lambda: container.current == 0)  # nothing left over from other tests
    container.reset()
    container.gate.clear()
    for _ in range(8):
        rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")
    wait_for(lambda: container.current == 4)
    time.sleep(0.3)  # room for a fifth request, were the pool too large
    assert container.max_seen == 4
    stats = emulator.stats(ep.name)
    assert (stats["in_flight"], stats["queued"], stats["backlog"], stats["workers"]) == (4, 4, 8, 4)
    container.gate.set()
    world.messages(ep.success_queue, 8)

    # Scaling in resizes the pool: 1 instance x 2.
    emulator.set_instance_count(ep.name, 1)
    container.reset()
    container.gate.clear()
    for _ in range(4):
        rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")
    wait_for(lambda: container.current == 2)
    time.sleep(0.3)
    assert container.max_seen == 2
    container.gate.set()
    world.messages(ep.success_queue, 4)
    assert emulator.stats(ep.name)["completed"] == 12


def test_scaled_to_zero_requests_wait_then_run(world: World, emulator: AsyncEndpointEmulator) -> None:
    ep = world.endpoint()
    emulator.register_endpoint(ep.name)
    emulator.set_instance_count(ep.name, 0)
    rt = runtime(emulator.url)
    for _ in range(3):
        rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")
    assert not emulator.wait_until_idle(ep.name, 0.3)
    assert world.container.requests == []
    assert emulator.stats(ep.name)["queued"] == 3
    emulator.set_instance_count(ep.name, 1)
    assert len(world.messages(ep.success_queue, 3)) == 3
    assert emulator.stats(ep.name)["backlog"] == 0


def test_request_ttl_expires_queued_requests(world: World, emulator: AsyncEndpointEmulator, clock: FakeClock) -> None:
    ep = world.endpoint()
    emulator.register_endpoint(ep.name)
    emulator.set_instance_count(ep.name, 0)
    rt = runtime(emulator.url)
    short = rt.invoke_endpoint_async(
        EndpointName=ep.name, Body=b"1", ContentType="text/csv", RequestTTLSeconds=60, InferenceId="short"
    )
    rt.invoke_endpoint_async(
        EndpointName=ep.name, Body=b"1", ContentType="text/csv", RequestTTLSeconds=120, InferenceId="long"
    )
    clock.advance(61)
    emulator.sweep_expired(ep.name)  # the background sweeper would do it within sweep_interval
    note = notification(world.messages(ep.error_queue, 1)[0])
    assert note.inference_id == "short"
    assert note.failure_reason is not None and "RequestTTLSeconds (60 s)" in note.failure_reason
    assert note.failure_location == short["FailureLocation"]
    assert note.duration_ms is not None and note.duration_ms >= 61_000
    assert world.s3_object(short["FailureLocation"])[0].decode() == note.failure_reason
    stats = emulator.stats(ep.name)
    assert (stats["expired"], stats["failed"], stats["queued"]) == (1, 1, 1)

    # The other one is still within its TTL and runs once there is capacity again.
    emulator.set_instance_count(ep.name, 1)
    assert notification(world.messages(ep.success_queue, 1)[0]).inference_id == "long"
    assert [r["body"] for r in world.container.requests] == [b"1"]


def test_background_sweeper_expires_without_instances(world: World, clock: FakeClock) -> None:
    ep = world.endpoint()
    with AsyncEndpointEmulator(
        world.moto_url, REGION, world.container.url, clock=clock, sweep_interval=0.05, session=world.session
    ) as emu:
        emu.register_endpoint(ep.name)
        emu.set_instance_count(ep.name, 0)
        runtime(emu.url).invoke_endpoint_async(EndpointName=ep.name, Body=b"1", RequestTTLSeconds=60)
        clock.advance(60.5)
        note = notification(world.messages(ep.error_queue, 1)[0])
        assert "RequestTTLSeconds" in (note.failure_reason or "")
        assert emu.stats(ep.name)["expired"] == 1


# --- shutdown -------------------------------------------------------------------------------------------------------


def test_stop_cuts_in_flight_work_quickly_and_publishes_nothing(world: World, clock: FakeClock) -> None:
    ep = world.endpoint()
    emu = AsyncEndpointEmulator(world.moto_url, REGION, world.container.url, clock=clock, session=world.session)
    url = emu.start()
    emu.register_endpoint(ep.name)
    emu.set_instance_count(ep.name, 1)
    rt = runtime(url)
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"sleep:3", ContentType="text/csv")
    rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1", ContentType="text/csv")  # stays queued
    wait_for(lambda: len(world.container.requests) == 1)
    started = time.monotonic()
    emu.stop(grace_seconds=0.2)
    assert time.monotonic() - started < 2.5
    stats = emu.stats(ep.name)
    assert (stats["cancelled"], stats["dropped"], stats["completed"], stats["failed"]) == (1, 1, 0, 0)
    assert world.pending(ep.error_queue) == 1 and world.pending(ep.success_queue) == 1  # TestNotifications only
    with pytest.raises(EndpointConnectionError):
        rt.invoke_endpoint_async(EndpointName=ep.name, Body=b"1")
    emu.stop()  # idempotent

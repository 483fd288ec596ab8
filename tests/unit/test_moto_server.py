"""moto in its own process: keep-alive connections that stay in step, moto's header handling kept, a death noticed."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from asyncinfer.local.moto_process import MotoProcess
from asyncinfer.local.moto_server import STATS_PATH, BoundedBody, operation_of
from asyncinfer.local.ports import free_ports

ROLE = "arn:aws:iam::123456789012:role/sagemaker"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoProcess]:
    process = MotoProcess("127.0.0.1", free_ports(1)[0], tmp_path_factory.mktemp("moto") / "moto.log")
    process.start()
    yield process
    process.stop()


def test_a_bounded_body_reads_its_length_and_drains_the_rest() -> None:
    stream = io.BufferedReader(io.BytesIO(b"0123456789NEXT REQUEST"))  # type: ignore[arg-type]
    body = BoundedBody(stream, 10)
    assert body.read(4) == b"0123"
    body.drain()
    assert body.head == b"0123456789"
    assert body.read() == b""
    assert stream.read() == b"NEXT REQUEST"


@pytest.mark.parametrize(
    ("environ", "operation"),
    [
        ({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.UpdateItem"}, "dynamodb:UpdateItem"),
        ({"QUERY_STRING": "Action=Publish&Version=2010-03-31"}, "sns:Publish"),
        ({"REQUEST_METHOD": "HEAD", "PATH_INFO": "/bucket/a/b.csv"}, "s3:HEAD object"),
        ({"REQUEST_METHOD": "PUT", "PATH_INFO": "/bucket"}, "s3:PUT bucket"),
    ],
)
def test_operation_of_a_request(environ: dict[str, str], operation: str) -> None:
    service = operation.split(":", maxsplit=1)[0]
    auth = f"AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/{service}/aws4_request, SignedHeaders=host"
    assert operation_of({"HTTP_AUTHORIZATION": auth, **environ}) == operation


def test_operation_of_a_form_encoded_request_is_in_its_body() -> None:
    auth = "AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/sns/aws4_request, SignedHeaders=host"
    environ = {"HTTP_AUTHORIZATION": auth, "REQUEST_METHOD": "POST", "PATH_INFO": "/"}
    form = {**environ, "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8"}
    assert operation_of(form, b"Action=Publish&TopicArn=arn%3Aaws%3Asns") == "sns:Publish"
    assert operation_of(environ, b"Action=Publish") == "sns:POST service"  # not a form: the body is not looked at


@pytest.mark.parametrize("path", ["/", STATS_PATH])
def test_requests_share_one_connection_even_when_a_body_is_left_unread(moto: MotoProcess, path: str) -> None:
    connection = http.client.HTTPConnection(moto.host, moto.port, timeout=10)
    # The counts page never reads a body: what it leaves must not be taken for the next request (here a body that
    # reads as a request of its own: its answer would arrive where the second request's is expected).
    poison = b"GET /nothing-here/poison HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    connection.request("POST", path, body=poison, headers={"Content-Type": "application/octet-stream"})
    first = connection.getresponse()
    first.read()
    assert first.getheader("Connection") != "close"
    sock = connection.sock
    connection.request("GET", STATS_PATH)
    second = connection.getresponse()
    assert second.status == 200
    assert isinstance(json.loads(second.read()), dict)
    assert connection.sock is sock  # the same TCP connection: kept alive
    connection.close()


def test_moto_keeps_metadata_keys_with_underscores_and_answers_heads_with_their_length(moto: MotoProcess) -> None:
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1")
    s3.create_bucket(Bucket="moto-server-test")
    s3.put_object(Bucket="moto-server-test", Key="a b#?.csv", Body=b"1,2,3", Metadata={"my_key": "v", "x-y": "w"})
    head = s3.head_object(Bucket="moto-server-test", Key="a b#?.csv")
    assert head["Metadata"] == {"my_key": "v", "x-y": "w"}
    assert head["ContentLength"] == 5
    got = s3.get_object(Bucket="moto-server-test", Key="a b#?.csv")
    assert got["Body"].read() == b"1,2,3"
    counts = json.loads(http_get(moto, STATS_PATH))
    assert counts["s3:HEAD object"]["requests"] >= 1
    assert counts["s3:PUT object"]["cpu_ms"] > 0


def test_the_endpoint_emulator_ends_an_update_through_the_private_path(moto: MotoProcess) -> None:
    from asyncinfer.local.endpoint.updates import report_to_moto

    sagemaker = boto3.client("sagemaker", endpoint_url=moto.url, region_name="us-east-1")
    sagemaker.create_model(ModelName="m", PrimaryContainer={"Image": "i"}, ExecutionRoleArn=ROLE)
    for config in ("old", "new"):
        sagemaker.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=[
                {"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
            ],
        )
    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="old")
    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="new")
    finish = report_to_moto(moto.url, "123456789012", "us-east-1")
    finish("ep", "the model did not load")
    endpoint = sagemaker.describe_endpoint(EndpointName="ep")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", "old")
    assert endpoint["FailureReason"] == "the model did not load"
    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="new")
    finish("ep", None)
    endpoint = sagemaker.describe_endpoint(EndpointName="ep")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", "new")


def test_a_dead_moto_process_is_reported(tmp_path: Path) -> None:
    reported: list[str] = []
    done = threading.Event()

    def on_exit(message: str) -> None:
        reported.append(message)
        done.set()

    process = MotoProcess("127.0.0.1", free_ports(1)[0], tmp_path / "moto.log", on_exit=on_exit)
    process.start()
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    assert done.wait(10)
    assert "exited with code -9" in reported[0]
    assert str(tmp_path / "moto.log") in reported[0]
    process.stop()


def test_moto_ends_with_the_process_that_started_it(tmp_path: Path) -> None:
    process = MotoProcess("127.0.0.1", free_ports(1)[0], tmp_path / "moto.log")
    process.start()
    pid = process.pid
    process.stop(grace_seconds=5)  # closes its stdin, as the stack's death would
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert process.returncode == 0  # it left by itself on end of input, not by the SIGTERM stop() falls back to


def http_get(moto: MotoProcess, path: str) -> bytes:
    connection = http.client.HTTPConnection(moto.host, moto.port, timeout=10)
    try:
        connection.request("GET", path)
        return connection.getresponse().read()
    finally:
        connection.close()

"""The endpoint's HTTP front (asyncinfer.local.endpoint.http_api) and the wire contract it enforces
(asyncinfer.local.endpoint.protocol), through botocore and over raw HTTP (botocore would block some values itself)."""

from __future__ import annotations

import io
import re

import pytest
from botocore.exceptions import ClientError

from asyncinfer.http_serving import BodyTooLarge, MalformedBody, read_chunked, read_sized
from asyncinfer.local.endpoint.emulator import AsyncEndpointEmulator
from asyncinfer.local.endpoint.http_api import READ_LIMIT
from tests.unit.endpoint.world import (
    ACCOUNT,
    World,
    raw_post,
    runtime,
)


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


# --- validation, over raw HTTP (botocore would block some of these values itself) -------------------------------------


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


# --- body framing -----------------------------------------------------------------------------------------------------


def test_a_chunked_body_is_decoded_and_its_trailers_skipped() -> None:
    raw = b"4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nX-Trailer: y\r\n\r\nNEXT"
    stream = io.BytesIO(raw)
    assert read_chunked(stream, READ_LIMIT) == b"abcdefg"
    assert stream.read() == b"NEXT"  # the next request on the connection is untouched
    with pytest.raises(MalformedBody):
        read_chunked(io.BytesIO(b"zz\r\n"), READ_LIMIT)
    with pytest.raises(BodyTooLarge):
        read_chunked(io.BytesIO(b"10\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"), limit=15)


def test_a_sized_body_is_read_to_its_length() -> None:
    assert read_sized(io.BytesIO(b"abcdef"), "3", READ_LIMIT) == b"abc"
    assert read_sized(io.BytesIO(b"abc"), None, READ_LIMIT) == b""
    with pytest.raises(MalformedBody):
        read_sized(io.BytesIO(b""), "three", READ_LIMIT)
    with pytest.raises(BodyTooLarge):
        read_sized(io.BytesIO(b"abcdef"), "6", limit=5)

"""Each refusal, fed back to a real boto3 client, is reported with the error code AWS's own refusal gives."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from asyncinfer.local.iam.checks import HttpRequest
from asyncinfer.local.iam.denials import Response, access_denied, invalid_credentials
from tests.unit.iam.captured import REGION, sent

MESSAGE = (
    "User: arn:aws:sts::123456789012:assumed-role/R/S is not authorized to perform: s3:GetObject on resource: "
    '"arn:aws:s3:::b/k" because no identity-based policy allows the s3:GetObject action'
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> list[bytes]:
        return [self._body]


@cache
def _client(service: str) -> Any:
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url="http://127.0.0.1:4566", region_name=REGION, aws_access_key_id="AKID",
        aws_secret_access_key="s", config=Config(retries={"max_attempts": 1}),
    )  # fmt: skip


def _answered(
    service: str, operation: str, params: dict[str, Any], respond: Callable[[HttpRequest], Response]
) -> ClientError:
    """The ClientError a boto3 client raises when its request gets ``respond``'s answer."""
    from asyncinfer.local.iam.requests import http_request

    def reply(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        body = request.body if isinstance(request.body, bytes) else b""
        status, headers, content = respond(http_request(request.method, request.url, dict(request.headers), body))
        return AWSResponse(request.url, status, dict(headers), _Raw(content))

    client = _client(service)
    client.meta.events.register("before-send", reply)
    try:
        with pytest.raises(ClientError) as raised:
            getattr(client, operation)(**params)
    finally:
        client.meta.events.unregister("before-send", reply)
    return raised.value


CALLS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "s3": ("s3", "get_object", {"Bucket": "b", "Key": "k"}),
    "dynamodb": ("dynamodb", "get_item", {"TableName": "t", "Key": {"pk": {"S": "1"}}}),
    "events": ("events", "put_events", {"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}]}),
    "sagemaker": ("sagemaker", "describe_endpoint", {"EndpointName": "e"}),
    "application-autoscaling": (
        "application-autoscaling",
        "describe_scalable_targets",
        {"ServiceNamespace": "sagemaker"},
    ),
    "sqs": ("sqs", "send_message", {"QueueUrl": "http://127.0.0.1:4566/123456789012/q", "MessageBody": "x"}),
    "monitoring": (
        "cloudwatch",
        "put_metric_data",
        {"Namespace": "n", "MetricData": [{"MetricName": "m", "Value": 1}]},
    ),
    "sns": ("sns", "publish", {"TopicArn": "arn:aws:sns:eu-west-1:123456789012:t", "Message": "m"}),
    "sts": ("sts", "get_caller_identity", {}),
    "runtime": ("sagemaker-runtime", "invoke_endpoint_async", {"EndpointName": "e", "InputLocation": "s3://b/k"}),
    "lambda": ("lambda", "invoke", {"FunctionName": "f", "Payload": b"{}"}),
}
SIGNING = {"runtime": "sagemaker"}


@pytest.mark.parametrize(
    ("call", "code", "status"),
    [
        ("s3", "AccessDenied", 403),
        ("dynamodb", "AccessDeniedException", 400),
        ("events", "AccessDeniedException", 400),
        ("sagemaker", "AccessDeniedException", 400),
        ("application-autoscaling", "AccessDeniedException", 400),
        ("sqs", "AccessDenied", 403),
        ("monitoring", "AccessDenied", 403),
        ("sns", "AuthorizationError", 403),
        ("sts", "AccessDenied", 403),
        ("runtime", "AccessDeniedException", 403),
        ("lambda", "AccessDeniedException", 403),
    ],
)
def test_access_denied_reaches_boto3_as_the_real_code(call: str, code: str, status: int) -> None:
    service, operation, params = CALLS[call]
    error = _answered(
        service, operation, params, lambda request: access_denied(request, SIGNING.get(call, call), MESSAGE)
    )
    assert error.response["Error"]["Code"] == code
    assert error.response["Error"]["Message"] == MESSAGE
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ("s3", "InvalidAccessKeyId"),
        ("dynamodb", "UnrecognizedClientException"),
        ("events", "UnrecognizedClientException"),
        ("sagemaker", "UnrecognizedClientException"),
        ("sqs", "InvalidClientTokenId"),
        ("monitoring", "InvalidClientTokenId"),
        ("sns", "InvalidClientTokenId"),
        ("sts", "InvalidClientTokenId"),
        ("runtime", "UnrecognizedClientException"),
        ("lambda", "UnrecognizedClientException"),
    ],
)
def test_invalid_credentials_reach_boto3_as_the_real_code(call: str, code: str) -> None:
    service, operation, params = CALLS[call]
    error = _answered(service, operation, params, lambda request: invalid_credentials(request, SIGNING.get(call, call)))
    assert error.response["Error"]["Code"] == code


def test_s3_wrong_session_token_is_invalid_token() -> None:
    service, operation, params = CALLS["s3"]
    error = _answered(service, operation, params, lambda request: invalid_credentials(request, "s3", bad_token=True))
    assert (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "InvalidToken",
        400,
    )


def test_s3_head_refusal_has_no_body_as_aws_sends_it() -> None:
    error = _answered(
        "s3", "head_object", {"Bucket": "b", "Key": "k"}, lambda request: access_denied(request, "s3", MESSAGE)
    )
    assert error.response["Error"]["Code"] == "403"
    assert access_denied(sent("s3", "head_object", Bucket="b", Key="k"), "s3", MESSAGE)[2] == b""

"""Requests exactly as boto3 sends them to the local stack, captured before they leave the client."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.awsrequest import AWSPreparedRequest
from botocore.config import Config

from asyncinfer.local.iam.checks import Caller, HttpRequest, MappedRequest
from asyncinfer.local.iam.requests import caller_of, http_request, map_request

ENDPOINT = "http://127.0.0.1:4566"
REGION = "eu-west-1"
ACCOUNT = "123456789012"


class Sent(Exception):
    """Raised by a capturing client instead of sending: the request it would have sent."""

    def __init__(self, request: AWSPreparedRequest) -> None:
        super().__init__("captured")
        self.request = request

    def http_request(self) -> HttpRequest:
        body = self.request.body
        if hasattr(body, "read"):  # a streamed upload
            body = body.read()
        data = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else b""
        return http_request(self.request.method, self.request.url, dict(self.request.headers.items()), data)


def _stop(request: AWSPreparedRequest, **_: Any) -> None:
    raise Sent(request)


@cache  # a client takes ~0.1 s to make; the captured requests do not depend on it being new
def client(service: str, *, token: str | None = None, endpoint: str = ENDPOINT) -> Any:
    made = boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="ASIAEXAMPLEKEY",
        aws_secret_access_key="secret",
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )
    made.meta.events.register("before-send", _stop)
    return made


def sent(service: str, operation: str, *, token: str | None = "TOKEN", **params: Any) -> HttpRequest:
    """The request a boto3 ``service`` client sends for ``operation(**params)``."""
    try:
        getattr(client(service, token=token), operation)(**params)
    except Sent as sending:
        return sending.http_request()
    raise AssertionError(f"{service}.{operation} sent nothing")


def signed(request: HttpRequest) -> Caller:
    caller = caller_of(request)
    assert caller is not None
    return caller


def mapped(request: HttpRequest) -> MappedRequest:
    """The mapping of a captured request, for the test account."""
    return map_request(request, signed(request), ACCOUNT)

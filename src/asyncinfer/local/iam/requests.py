"""An HTTP request to the local AWS APIs, seen as AWS authorizes it: who signed it and which checks it needs.

The entry points the moto-server middleware and the endpoint emulator call: :func:`caller_of` (the SigV4 credential
scope), :func:`needs_body` (whether the mapping must read the body) and :func:`map_request` (the operation and its
checks, or :class:`~asyncinfer.local.iam.checks.UnmappedRequest`). Each service's mapping lives in its own module;
this one only reads the signature and picks the protocol decoder and the service."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from asyncinfer.local.iam import (
    dynamodb_requests,
    lambda_requests,
    messaging_requests,
    monitoring_requests,
    protocol_bodies,
    s3_requests,
    sagemaker_requests,
)
from asyncinfer.local.iam.checks import Caller, Check, HttpRequest, MappedRequest, UnmappedRequest

# Credential=AKID/20261202/us-east-1/s3/aws4_request (the header form; the query form is the bare value).
_CREDENTIAL = re.compile(r"Credential=([^,\s]+)")


def http_request(method: str, url: str, headers: Mapping[str, str | bytes], body: bytes | None = None) -> HttpRequest:
    """The request as the mapping reads it, from a URL and headers as a client or server holds them."""
    parts = urlsplit(url)
    return HttpRequest(
        method=method.upper(),
        path=parts.path or "/",
        query=parts.query,
        headers={name.lower(): _text(value) for name, value in headers.items()},
        body=body or b"",
    )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def query_params(request: HttpRequest) -> dict[str, str]:
    """The query string's parameters (the last value of a repeated name); a bare ``?tagging`` maps to ``""``."""
    return dict(parse_qsl(request.query, keep_blank_values=True))


def caller_of(request: HttpRequest) -> Caller | None:
    """Who signed the request (SigV4 header or presigned URL), or None when it is unsigned or not SigV4."""
    query = query_params(request)
    authorization = request.headers.get("authorization", "")
    credential: str | None = None
    if authorization.startswith("AWS4-HMAC-SHA256"):
        found = _CREDENTIAL.search(authorization)
        credential = found.group(1) if found else None
    elif query.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256":
        credential = query.get("X-Amz-Credential")
    elif authorization.startswith("AWS ") or "AWSAccessKeyId" in query:
        return _sigv2_caller(request, query, authorization)
    if not credential:
        return None
    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope[:4]):
        return None
    token = request.headers.get("x-amz-security-token") or query.get("X-Amz-Security-Token") or None
    return Caller(access_key=scope[0], session_token=token, service=scope[3], region=scope[2])


def _sigv2_caller(request: HttpRequest, query: Mapping[str, str], authorization: str) -> Caller | None:
    """An S3 request signed with SigV2 (boto3's default for presigned S3 URLs to a custom endpoint): the scope names
    no region, so the region is "" (S3 ARNs have none)."""
    key = authorization[4:].rpartition(":")[0] if authorization.startswith("AWS ") else query.get("AWSAccessKeyId")
    if not key:
        return None
    token = request.headers.get("x-amz-security-token") or query.get("x-amz-security-token") or None
    return Caller(access_key=key, session_token=token, service="s3", region="")


def needs_body(request_without_body: HttpRequest, service: str) -> bool:
    """Whether :func:`map_request` needs the body: never for S3 object data (it can be GBs), only ``POST ?delete``
    (the keys to delete); always for services whose operation and parameters are in the body."""
    if service == "s3":
        return s3_requests.needs_body(request_without_body.method, query_params(request_without_body))
    if service == "sagemaker":
        return not sagemaker_requests.is_runtime_path(request_without_body.path)
    # Lambda names the function in the path; every other service (JSON, query, RPC v2) names even the operation in
    # the body, and those bodies are small.
    return service != "lambda"


def map_request(request: HttpRequest, caller: Caller, account: str) -> MappedRequest:
    """The operation and every check AWS makes for it, as the caller's account ``account`` sees them.

    Raises UnmappedRequest for an operation this mapping does not know or a request it cannot read."""
    service, region = caller.service, caller.region
    if service == "s3":
        return s3_requests.map_s3(
            request.method, request.path, query_params(request), request.headers, request.body, account
        )
    if service == "sagemaker" and sagemaker_requests.is_runtime_path(request.path):
        return sagemaker_requests.map_runtime(request.method, request.path, region, account)
    if service == "lambda":
        return lambda_requests.map_lambda(request.method, request.path, query_params(request), region, account)
    call = protocol_bodies.decode(request.headers, request.body, request.path)
    checks = _service_checks(service, call, region, account)
    return MappedRequest(operation=f"{_PREFIXES.get(service, service)}:{call.operation}", checks=checks)


#: IAM service prefixes that differ from the signing name.
_PREFIXES = {"monitoring": "cloudwatch"}


def _service_checks(service: str, call: protocol_bodies.Call, region: str, account: str) -> tuple[Check, ...]:
    if service == "dynamodb":
        return dynamodb_requests.checks(call.operation, call.params, region, account)
    if service in messaging_requests.SERVICES:
        return messaging_requests.checks(service, call.operation, call.params, region, account)
    if service == "sagemaker":
        return sagemaker_requests.control_checks(call.operation, call.params, region, account)
    if service == "application-autoscaling":
        return sagemaker_requests.autoscaling_checks(call.operation, call.params)
    if service == "monitoring":
        return monitoring_requests.checks(call.operation, call.params, region, account)
    if service == "sts":
        return _sts_checks(call.operation, call.params)
    raise UnmappedRequest(f"{service}:{call.operation} is not mapped to IAM checks")


def _sts_checks(operation: str, params: Mapping[str, object]) -> tuple[Check, ...]:
    if operation == "GetCallerIdentity":
        return ()  # AWS authorizes no one for it: it answers even when every action is denied
    if operation == "AssumeRole":
        role = params.get("RoleArn")
        if isinstance(role, str) and role:
            return (Check("sts:AssumeRole", role),)
    raise UnmappedRequest(f"sts:{operation} is not mapped to IAM checks")

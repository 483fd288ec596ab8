"""The responses AWS sends when it refuses a request, in each protocol's error shape, so an SDK reports the real error
code: S3 ``AccessDenied`` (XML), JSON services ``AccessDeniedException`` (``__type`` and ``x-amzn-ErrorType``), SQS and
CloudWatch on the JSON protocol ``AccessDenied`` (their ``x-amzn-query-error`` header, which botocore prefers), SNS
``AuthorizationError`` (query XML), and for an unknown access key or a wrong session token ``InvalidAccessKeyId`` /
``InvalidToken`` (S3), ``UnrecognizedClientException`` (JSON and REST-JSON) or ``InvalidClientTokenId`` (query)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from xml.sax.saxutils import escape

from asyncinfer.http_serving import Response
from asyncinfer.local.iam.checks import HttpRequest

_BAD_KEY_MESSAGE = "The security token included in the request is invalid."
_S3_BAD_KEY_MESSAGE = "The AWS Access Key Id you provided does not exist in our records."
_S3_BAD_TOKEN_MESSAGE = "The provided token is malformed or otherwise invalid."
_JSON_10 = "application/x-amz-json-1.0"  # DynamoDB, SQS, CloudWatch
_JSON_11 = "application/x-amz-json-1.1"  # EventBridge, SageMaker, Application Auto Scaling


_JSON_NAMES = {"AccessDenied": "AccessDeniedException", "InvalidClientTokenId": "UnrecognizedClientException"}


@dataclass(frozen=True)
class _Shape:
    """How one service words its refusals."""

    protocol: str  # "s3", "json", "query", "rest-json"
    denied_code: str
    denied_status: int
    content_type: str = _JSON_11
    query_compatible: bool = False  # JSON protocol with awsQueryCompatible: x-amzn-query-error names the code


_QUERY_SHAPE = _Shape("query", "AccessDenied", 403, "text/xml")
_SHAPES = {
    "s3": _Shape("s3", "AccessDenied", 403, "application/xml"),
    "dynamodb": _Shape("json", "AccessDeniedException", 400, _JSON_10),
    "events": _Shape("json", "AccessDeniedException", 400),
    "sagemaker": _Shape("json", "AccessDeniedException", 400),
    "application-autoscaling": _Shape("json", "AccessDeniedException", 400),
    "sqs": _Shape("json", "AccessDenied", 403, _JSON_10, query_compatible=True),
    "monitoring": _Shape("json", "AccessDenied", 403, _JSON_10, query_compatible=True),
    "sns": _Shape("query", "AuthorizationError", 403, "text/xml"),
    "lambda": _Shape("rest-json", "AccessDeniedException", 403, "application/json"),
}


def _shape(request: HttpRequest, caller_service: str) -> _Shape:
    if caller_service == "sagemaker" and request.path.startswith("/endpoints/"):
        return _Shape("rest-json", "AccessDeniedException", 403, "application/json")  # sagemaker-runtime
    if caller_service == "monitoring" and not request.headers.get("x-amz-target"):
        return _QUERY_SHAPE  # CloudWatch on the query protocol
    if caller_service == "sqs" and not request.headers.get("x-amz-target"):
        return _QUERY_SHAPE
    return _SHAPES.get(caller_service, _QUERY_SHAPE)


def access_denied(request: HttpRequest, caller_service: str, message: str) -> Response:
    """The refusal of an authenticated request that its policies do not allow; ``message`` as AWS words it
    (``User: arn:… is not authorized to perform: s3:GetObject on resource: "arn:…" because …``)."""
    shape = _shape(request, caller_service)
    return _error(request, shape, shape.denied_code, shape.denied_status, message)


def invalid_credentials(request: HttpRequest, caller_service: str, *, bad_token: bool = False) -> Response:
    """The refusal of a request signed with an access key the account does not know, or (``bad_token``) with a
    session token that is not the key's."""
    shape = _shape(request, caller_service)
    if shape.protocol == "s3":
        if bad_token:
            return _error(request, shape, "InvalidToken", 400, _S3_BAD_TOKEN_MESSAGE)
        return _error(request, shape, "InvalidAccessKeyId", 403, _S3_BAD_KEY_MESSAGE)
    if shape.protocol == "query" or shape.query_compatible:
        return _error(request, shape, "InvalidClientTokenId", 403, _BAD_KEY_MESSAGE)
    status = 400 if shape.protocol == "json" else 403
    return _error(request, shape, "UnrecognizedClientException", status, _BAD_KEY_MESSAGE)


def _error(request: HttpRequest, shape: _Shape, code: str, status: int, message: str) -> Response:
    request_id = str(uuid.uuid4())
    if shape.protocol == "s3":
        headers = [("x-amz-request-id", request_id), ("Content-Type", shape.content_type)]
        if request.method == "HEAD":  # a HEAD response has no body: the SDK reports the status ("403")
            return status, headers, b""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        return status, headers, body.encode()
    if shape.protocol == "query":
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return status, [("x-amzn-RequestId", request_id), ("Content-Type", shape.content_type)], body.encode()
    # A query-compatible JSON body carries the JSON-protocol name; botocore takes the query code from the header.
    error_type = _JSON_NAMES.get(code, code) if shape.query_compatible else code
    headers = [
        ("x-amzn-RequestId", request_id),
        ("Content-Type", shape.content_type),
        ("x-amzn-ErrorType", error_type),
    ]
    if shape.query_compatible:
        headers.append(("x-amzn-query-error", f"{code};Sender"))
    payload = {"__type": f"com.amazon.coral.service#{error_type}", "message": message}
    if shape.protocol == "rest-json":
        payload = {"message": message}  # REST-JSON names the error in x-amzn-ErrorType only
    return status, headers, json.dumps(payload).encode()

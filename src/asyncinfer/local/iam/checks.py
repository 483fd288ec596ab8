"""What AWS authorizes for one request: which actions, on which resources, with which request condition keys.

The wire format shared by the request mapping (:mod:`asyncinfer.local.iam.requests`, which turns an HTTP request to
the local AWS APIs into checks) and the policy evaluation (:mod:`asyncinfer.local.iam.evaluation`, which decides
each check against the caller's policies and the resource's policy)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

#: A condition key's value in a request: one string, or several (multivalued keys).
ContextValue: TypeAlias = str | tuple[str, ...]


@dataclass(frozen=True)
class Check:
    """One authorization AWS makes for a request. A request may need several (CopyObject: read the source version,
    write the destination); all must be allowed."""

    action: str  # "s3:GetObjectVersion", as the Service Authorization Reference names it
    resource: str  # the resource's ARN; "*" for actions that support no resource-level permission
    # Request-specific condition keys (e.g. "s3:ResourceAccount", "cloudwatch:namespace"); global keys such as
    # aws:SecureTransport or aws:PrincipalArn are added by the evaluation.
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request as it reached a local AWS API."""

    method: str
    path: str  # as on the wire (percent-encoded), without the query string
    query: str  # the raw query string, "" when none
    headers: Mapping[str, str]  # names lower-cased
    body: bytes = b""  # empty when not read (S3 object bodies are never needed to authorize)


@dataclass(frozen=True)
class Caller:
    """Who signed a request, from its SigV4 credential scope (header or presigned query)."""

    access_key: str
    session_token: str | None
    service: str  # the signing name: "s3", "dynamodb", "sqs", "sns", "events", "sagemaker", "monitoring", …
    region: str


@dataclass(frozen=True)
class MappedRequest:
    """A request seen as AWS authorizes it."""

    operation: str  # "s3:GetObject" (service prefix and API operation), for logs and reports
    checks: tuple[Check, ...]


class UnmappedRequest(ValueError):
    """The mapping does not know this operation: a role's request is denied (fail closed), with this message."""

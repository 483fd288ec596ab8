"""The wire contract of ``InvokeEndpointAsync`` (sagemaker-runtime, rest-json): request parsing, validation, errors.

Pure functions with no I/O, used by the endpoint's HTTP front (:mod:`.http_api`). The constraints are the ones of the
botocore service model (``InvokeEndpointAsyncInput``); the patterns there are Java regular expressions, translated
here to their exact Python equivalents (Java's ``\\p{Print}`` is ASCII-only, its ``\\S`` is not, its ``.`` stops at
every line terminator). Lengths are counted in UTF-16 code units, as Java's ``String.length()`` does.

Error messages follow the format AWS services use for model-constraint violations (``1 validation error detected:
Value '...' at 'member' failed to satisfy constraint: ...``). The wording of the two non-constraint errors (Body and
InputLocation both or neither given) is UNVERIFIED.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

# Limits (reference §1.2 and §2).
MAX_INLINE_BODY = 128_000
MIN_TTL_SECONDS, MAX_TTL_SECONDS, DEFAULT_TTL_SECONDS = 60, 21_600, 21_600
MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS = 1, 3_600, 900

# Request headers (the model's ``locationName``s).
H_CONTENT_TYPE = "X-Amzn-SageMaker-Content-Type"
H_ACCEPT = "X-Amzn-SageMaker-Accept"
H_CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
H_INFERENCE_ID = "X-Amzn-SageMaker-Inference-Id"
H_INPUT_LOCATION = "X-Amzn-SageMaker-InputLocation"
H_REQUEST_TTL = "X-Amzn-SageMaker-RequestTTLSeconds"
H_INVOCATION_TIMEOUT = "X-Amzn-SageMaker-InvocationTimeoutSeconds"
H_OUTPUT_PATH_EXTENSION = "X-Amzn-SageMaker-S3OutputPathExtension"
H_FILENAME = "X-Amzn-SageMaker-Filename"
# Response headers.
H_OUTPUT_LOCATION = "X-Amzn-SageMaker-OutputLocation"
H_FAILURE_LOCATION = "X-Amzn-SageMaker-FailureLocation"
H_ERROR_TYPE = "x-amzn-ErrorType"
H_REQUEST_ID = "x-amzn-RequestId"

PATH = re.compile(r"/endpoints/(?P<name>[^/]+)/async-invocations/?")

_LINE_TERMINATORS = "\n\r\u0085\u2028\u2029"  # what Java's "." does not match
_ENDPOINT_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*"
_ASCII = r"\p{ASCII}*"
_INFERENCE_ID = r"\A\S[\p{Print}]*\z"
_INPUT_LOCATION = r"^(https|s3)://([^/]+)/?(.*)$"
_OUTPUT_PATH_EXTENSION = r"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$"
_FILENAME = r"^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*$"
# Java pattern (as quoted in error messages) -> equivalent Python pattern for re.fullmatch.
_PY_PATTERNS: dict[str, re.Pattern[str]] = {
    _ENDPOINT_NAME: re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*"),
    _ASCII: re.compile(r"[\x00-\x7f]*"),
    _INFERENCE_ID: re.compile(r"[^ \t\n\x0b\f\r][\x20-\x7e]*"),
    _INPUT_LOCATION: re.compile(rf"(https|s3)://([^/]+)/?([^{_LINE_TERMINATORS}]*)"),
    _OUTPUT_PATH_EXTENSION: re.compile(r"(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+"),
    _FILENAME: re.compile(r"(?![^\n]*\.[^\n]*\.)[a-zA-Z0-9][a-zA-Z0-9_.\-]*"),
}


class ApiError(Exception):
    """An error answer in the rest-json form botocore parses: ``x-amzn-ErrorType`` header + ``{"message": ...}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def validation_error(message: str) -> ApiError:
    return ApiError(400, "ValidationError", message)


@dataclass(frozen=True, slots=True)
class InvokeParams:
    """One ``InvokeEndpointAsync`` request, validated."""

    endpoint_name: str
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    inference_id: str | None = None
    input_location: str | None = None
    s3_output_path_extension: str | None = None
    filename: str | None = None
    request_ttl_seconds: int | None = None
    invocation_timeout_seconds: int | None = None
    body: bytes | None = None


def _java_length(value: str) -> int:
    # AWS counts UTF-16 code units (Java String.length()), so a character outside the BMP counts twice.
    return len(value.encode("utf-16-le")) // 2


class _Checker:
    """Collects constraint violations, so that one answer lists them all (as AWS does)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def _fail(self, member: str, value: str | None, constraint: str) -> None:
        shown = "Value" if value is None else f"Value '{value}'"  # sensitive members are not echoed
        self.errors.append(f"{shown} at '{member}' failed to satisfy constraint: Member must {constraint}")

    def string(
        self,
        member: str,
        value: str | None,
        *,
        min_len: int | None = None,
        max_len: int | None = None,
        pattern: str | None = None,
        sensitive: bool = False,
    ) -> None:
        if value is None:
            return
        shown = None if sensitive else value
        length = _java_length(value)
        if min_len is not None and length < min_len:
            self._fail(member, shown, f"have length greater than or equal to {min_len}")
        if max_len is not None and length > max_len:
            self._fail(member, shown, f"have length less than or equal to {max_len}")
        if pattern is not None and not _PY_PATTERNS[pattern].fullmatch(value):
            self._fail(member, shown, f"satisfy regular expression pattern: {pattern}")

    def integer(self, member: str, raw: str | None, low: int, high: int) -> int | None:
        if raw is None:
            return None
        text = raw.strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,18}", text):
            self._fail(member, raw, "be an integer")
            return None
        value = int(text)
        if value < low:
            self._fail(member, raw, f"have value greater than or equal to {low}")
        elif value > high:
            self._fail(member, raw, f"have value less than or equal to {high}")
        return value

    def raise_if_any(self) -> None:
        if self.errors:
            count = len(self.errors)
            noun = "error" if count == 1 else "errors"
            raise validation_error(f"{count} validation {noun} detected: " + "; ".join(self.errors))


def endpoint_name_from_path(path: str) -> str | None:
    """The (percent-decoded) endpoint name of an InvokeEndpointAsync path, or None for any other path."""
    match = PATH.fullmatch(path.split("?", 1)[0])
    return unquote(match.group("name")) if match else None


def parse_invoke_request(endpoint_name: str, header: Callable[[str], str | None], body: bytes) -> InvokeParams:
    """Validate one request exactly as the service model constrains it; raise :class:`ApiError` (400) if not.

    ``header`` returns a header's value as text (already re-decoded from UTF-8) or None when absent. An empty body
    counts as no body: botocore sends none when ``Body`` is not given.
    """
    check = _Checker()
    check.string("endpointName", endpoint_name, max_len=63, pattern=_ENDPOINT_NAME)
    content_type, accept = header(H_CONTENT_TYPE), header(H_ACCEPT)
    custom_attributes, inference_id = header(H_CUSTOM_ATTRIBUTES), header(H_INFERENCE_ID)
    input_location = header(H_INPUT_LOCATION)
    extension, filename = header(H_OUTPUT_PATH_EXTENSION), header(H_FILENAME)
    check.string("contentType", content_type, max_len=1024, pattern=_ASCII)
    check.string("accept", accept, max_len=1024, pattern=_ASCII)
    check.string("customAttributes", custom_attributes, max_len=1024, pattern=_ASCII, sensitive=True)
    check.string("inferenceId", inference_id, min_len=1, max_len=64, pattern=_INFERENCE_ID)
    check.string("inputLocation", input_location, min_len=1, max_len=1024, pattern=_INPUT_LOCATION)
    check.string("s3OutputPathExtension", extension, min_len=1, max_len=512, pattern=_OUTPUT_PATH_EXTENSION)
    check.string("filename", filename, min_len=1, max_len=32, pattern=_FILENAME)
    ttl = check.integer("requestTTLSeconds", header(H_REQUEST_TTL), MIN_TTL_SECONDS, MAX_TTL_SECONDS)
    timeout = check.integer(
        "invocationTimeoutSeconds", header(H_INVOCATION_TIMEOUT), MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS
    )
    if len(body) > MAX_INLINE_BODY:
        check.errors.append(
            f"Value at 'body' failed to satisfy constraint: Member must have length less than or equal to "
            f"{MAX_INLINE_BODY}"
        )
    check.raise_if_any()
    if body and input_location is not None:
        raise validation_error("InputLocation and Body are mutually exclusive: provide exactly one of them.")
    if not body and input_location is None:
        raise validation_error("Either InputLocation or Body must be provided.")
    return InvokeParams(
        endpoint_name=endpoint_name,
        content_type=content_type,
        accept=accept,
        custom_attributes=custom_attributes,
        inference_id=inference_id,
        input_location=input_location,
        s3_output_path_extension=extension,
        filename=filename,
        request_ttl_seconds=ttl,
        invocation_timeout_seconds=timeout,
        body=body or None,
    )


def join_location(base: str, *parts: str | None) -> str:
    """``base`` (an S3OutputPath/S3FailurePath, with or without a trailing slash) with path parts appended."""
    pieces = [base.rstrip("/")]
    pieces.extend(part.strip("/") for part in parts if part and part.strip("/"))
    return "/".join(pieces)

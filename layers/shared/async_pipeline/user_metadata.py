"""A file's user-defined S3 metadata (``x-amz-meta-*``): kept on its job, returned in its result event, and one
designated key forwarded to the model as ``CustomAttributes``.

The submitter reads the metadata from the ranged GetObject it already makes (no extra call). The one place it may
be read again is :class:`VersionMetadata`: when a notification finishes a job whose submitter never confirmed it
(it crashed after the endpoint call, or the notification won the race), the event would otherwise go out without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError

from async_pipeline import s3_events, s3_uris

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectRequestTypeDef

    from async_pipeline.jobs import Job

# Upload with ``x-amz-meta-custom-attributes: VALUE`` (``aws s3 cp --metadata custom-attributes=VALUE``). S3
# lower-cases metadata keys, so this is the one spelling.
CUSTOM_ATTRIBUTES_KEY = "custom-attributes"
MAX_CUSTOM_ATTRIBUTES = 1024  # InvokeEndpointAsync: at most 1,024 visible US-ASCII characters (RFC 7230 field-value)
# Whose absence, when S3 answers HeadObject, means the metadata cannot be known any more.
_GONE = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound", "412", "PreconditionFailed", "403", "AccessDenied"})


class InvalidCustomAttributes(ValueError):
    """The designated metadata value cannot be sent as CustomAttributes; the message says why (the job's reason)."""


def custom_attributes(metadata: Mapping[str, str]) -> str | None:
    """The value to send as ``CustomAttributes``: the designated key's, verbatim; None when it is absent or empty.

    Raises :class:`InvalidCustomAttributes` unless it is at most 1,024 characters, each visible ASCII (0x21-0x7E)
    or a space or tab between two of them (an HTTP field-value: no leading or trailing whitespace)."""
    value = metadata.get(CUSTOM_ATTRIBUTES_KEY)
    if not value:
        return None
    where = f"x-amz-meta-{CUSTOM_ATTRIBUTES_KEY}"
    if len(value) > MAX_CUSTOM_ATTRIBUTES:
        raise InvalidCustomAttributes(
            f"{where} is {len(value)} characters; CustomAttributes takes at most {MAX_CUSTOM_ATTRIBUTES}"
        )
    for index, char in enumerate(value):
        if not ("!" <= char <= "~" or (char in " \t" and 0 < index < len(value) - 1)):
            raise InvalidCustomAttributes(
                f"{where} has {char!r} at position {index}; CustomAttributes takes visible ASCII characters only "
                "(spaces and tabs only between them)"
            )
    return value


class MetadataSource(Protocol):
    def metadata_of(self, job: Job) -> dict[str, str] | None:
        """The user metadata of the job's input version; None when it cannot be known."""
        ...


class VersionMetadata:
    """Reads the metadata of a job's input version with one HeadObject (the exact version, or its ETag).

    ``s3`` makes the client on first use: the topic handlers need one only on this rare path (a client costs
    milliseconds of cold start)."""

    def __init__(self, s3: Callable[[], S3Client]) -> None:
        self._s3 = s3

    def metadata_of(self, job: Job) -> dict[str, str] | None:
        if job.origin != "s3" or not job.input_location or not job.object_version:
            return None
        try:
            bucket, key = s3_uris.parse_uri(job.input_location)
        except ValueError:
            return None
        params: HeadObjectRequestTypeDef = {"Bucket": bucket, "Key": key}
        if job.version_source == "versionId":
            params["VersionId"] = job.object_version
        elif job.version_source == "eTag":
            params["IfMatch"] = s3_events.quoted_etag(job.object_version)
        else:  # a sequencer names no version S3 can be asked for
            return None
        try:
            return dict(self._s3().head_object(**params).get("Metadata", {}))
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in _GONE:
                return None
            raise

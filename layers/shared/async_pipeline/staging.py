"""The staging place: exact, immutable copies of input versions too large to send inline.

SageMaker reads ``InputLocation`` when it processes the request (possibly hours later) and reads the key's current
version, and the location travels in an HTTP header. A copy of the exact version, under a key named by the inference
id, that nobody else writes and whose name is plain ASCII, is read as it was when the file arrived and needs no
escaping. The place (``STAGING_LOCATION``, a prefix of the output bucket) triggers nothing and its objects expire by
the bucket's lifecycle rule (template.yaml, ``ExpireStagedInputs``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from async_pipeline import s3_events, s3_uris

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopyObjectRequestTypeDef, CopySourceTypeDef

# An extension kept on the staged key only when it is short and plain (it documents the payload; ContentType is
# what the endpoint uses).
_SAFE_EXTENSION = re.compile(r"\.[a-z0-9]{1,10}")


@dataclass(frozen=True, slots=True)
class StagingPlace:
    bucket: str
    prefix: str  # ends with "/" (or is empty)

    @classmethod
    def from_uri(cls, uri: str) -> StagingPlace:
        """``s3://bucket/prefix/`` (ValueError if it is not an S3 URI naming a bucket)."""
        bucket, prefix = s3_uris.parse_uri(uri)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return cls(bucket, prefix)

    def key_for(self, inference_id: str, source_key: str) -> str:
        """``<prefix><inference id><extension>``: the same for every attempt of one job (a retry overwrites the
        copy with the same bytes), ASCII only (inference ids are hex digests)."""
        return f"{self.prefix}{inference_id}{safe_extension(source_key)}"


def safe_extension(key: str) -> str:
    """The key's extension, lower-cased, when it is 1-10 ASCII letters or digits; else none."""
    suffix = PurePosixPath(key).suffix.lower()
    return suffix if _SAFE_EXTENSION.fullmatch(suffix) else ""


def stage(
    s3: S3Client,
    place: StagingPlace,
    inference_id: str,
    *,
    bucket: str,
    key: str,
    version_id: str | None,
    etag: str | None = None,
) -> str:
    """Copy the exact object version to the staging place (one ``CopyObject``); return the copy's URI.

    With no version id (an unversioned bucket) the copy is made only if the object still has the event's ETag.
    Tags are not copied (``TaggingDirective=REPLACE``): they mean nothing to the endpoint, and copying them would
    need tagging permissions on both sides.
    """
    source: CopySourceTypeDef = {"Bucket": bucket, "Key": key}
    if version_id:
        source["VersionId"] = version_id
    target_key = place.key_for(inference_id, key)
    request: CopyObjectRequestTypeDef = {
        "Bucket": place.bucket,
        "Key": target_key,
        "CopySource": source,
        "TaggingDirective": "REPLACE",
    }
    if not version_id and etag:
        request["CopySourceIfMatch"] = s3_events.quoted_etag(etag)
    s3.copy_object(**request)
    return s3_uris.format_uri(place.bucket, target_key)

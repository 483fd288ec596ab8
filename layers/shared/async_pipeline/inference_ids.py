"""Deterministic inference ids: one per (bucket, key, object version), so a re-delivered event maps to the same id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from async_pipeline.s3_events import S3ObjectCreated
from async_pipeline.s3_uris import format_uri

MAX_LENGTH = 64  # InvokeEndpointAsync: 1-64 printable characters


class MissingObjectVersion(ValueError):
    """The record carries no version id, sequencer or ETag: nothing tells two uploads of the key apart."""


@dataclass(frozen=True, slots=True)
class ObjectIdentity:
    inference_id: str
    version_source: str  # "versionId" | "sequencer" | "eTag"
    version: str


def identify(obj: S3ObjectCreated) -> ObjectIdentity:
    """Prefer the version id (the input bucket is versioned), then the event's sequencer, then the ETag."""
    for source, version in (("versionId", obj.version_id), ("sequencer", obj.sequencer), ("eTag", obj.etag)):
        if version:
            return ObjectIdentity(_digest(obj.bucket, obj.key, source, version), source, version)
    raise MissingObjectVersion(f"{obj.uri}: record has no versionId, sequencer or eTag")


def of_version(bucket: str, key: str, version_id: str | None) -> str:
    """The inference id of a known object version (e.g. listed from the versioned input bucket): the one
    ``identify`` gives every event of that version. ``key`` is the decoded key."""
    if not version_id:
        raise MissingObjectVersion(f"{format_uri(bucket, key)}: no version id")
    return _digest(bucket, key, "versionId", version_id)


def _digest(bucket: str, key: str, source: str, version: str) -> str:
    # A hash keeps any key (unicode, spaces, 1024 bytes) inside the 64 printable ASCII characters allowed.
    return hashlib.sha256(f"{bucket}\0{key}\0{source}\0{version}".encode()).hexdigest()[:MAX_LENGTH]

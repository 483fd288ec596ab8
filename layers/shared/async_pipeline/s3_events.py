"""S3 event notifications as Lambda receives them: parsing and key decoding for every record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from async_pipeline.s3_uris import format_uri

S3_TEST_EVENT = "s3:TestEvent"
SUPPORTED_MAJOR_VERSION = "2"  # 2.1 in older docs, 2.5 today: compare the major version only


class MalformedS3Record(ValueError):
    """A record that cannot be turned into an object reference; the message says why."""


@dataclass(frozen=True, slots=True)
class S3ObjectCreated:
    """One ``ObjectCreated:*`` record, with its key decoded."""

    bucket: str
    key: str
    raw_key: str
    size: int | None
    etag: str | None
    version_id: str | None
    sequencer: str | None
    event_name: str
    event_time: str | None

    @property
    def uri(self) -> str:
        return format_uri(self.bucket, self.key)


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What one record of an event turned out to be: an object, a record to skip (with why), or an error."""

    index: int
    obj: S3ObjectCreated | None = None
    skip_reason: str | None = None
    error: str | None = None


def is_test_event(event: Mapping[str, Any]) -> bool:
    """S3 sends ``s3:TestEvent`` (not in Records form) when a notification configuration is saved."""
    return event.get("Event") == S3_TEST_EVENT


def quoted_etag(etag: str) -> str:
    """An ETag as S3's conditional headers take it (quoted); events carry it bare."""
    return f'"{etag.strip(chr(34))}"'


def decode_key(raw_key: str) -> str:
    """Keys arrive form-URL-encoded: ``+`` is a space, ``%XX`` bytes of UTF-8."""
    try:
        return unquote_plus(raw_key, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise MalformedS3Record(f"object key {raw_key!r} is not valid percent-encoded UTF-8") from exc


def encode_key(key: str) -> str:
    """The inverse of :func:`decode_key`, as S3 encodes keys in notifications (used by the local stack)."""
    return quote_plus(key, safe="/", encoding="utf-8")


def _optional_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedS3Record(f"expected a string, got {type(value).__name__}")
    return value


def parse_record(record: Mapping[str, Any]) -> S3ObjectCreated:
    """Turn one ``ObjectCreated`` record into an :class:`S3ObjectCreated`; raise :class:`MalformedS3Record`."""
    if not isinstance(record, Mapping):
        raise MalformedS3Record("record is not an object")
    source = record.get("eventSource")
    if source != "aws:s3":
        raise MalformedS3Record(f"eventSource is {source!r}, not 'aws:s3'")
    version = str(record.get("eventVersion", ""))
    if version.split(".", maxsplit=1)[0] != SUPPORTED_MAJOR_VERSION:
        raise MalformedS3Record(f"unsupported eventVersion {version!r}")
    s3 = record.get("s3")
    if not isinstance(s3, Mapping):
        raise MalformedS3Record("record has no 's3' object")
    bucket = s3.get("bucket")
    obj = s3.get("object")
    if not isinstance(bucket, Mapping) or not isinstance(obj, Mapping):
        raise MalformedS3Record("record lacks s3.bucket or s3.object")
    bucket_name = bucket.get("name")
    raw_key = obj.get("key")
    if not isinstance(bucket_name, str) or not bucket_name:
        raise MalformedS3Record("record lacks s3.bucket.name")
    if not isinstance(raw_key, str) or not raw_key:
        raise MalformedS3Record("record lacks s3.object.key")
    size = obj.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise MalformedS3Record(f"s3.object.size is not a byte count: {size!r}")
    version_id = _optional_str(obj.get("versionId"))
    return S3ObjectCreated(
        bucket=bucket_name,
        key=decode_key(raw_key),
        raw_key=raw_key,
        size=size,
        etag=_optional_str(obj.get("eTag")),
        # Unversioned objects report no version id, or the literal "null" once versioning was suspended.
        version_id=None if version_id == "null" else version_id,
        sequencer=_optional_str(obj.get("sequencer")),
        event_name=str(record.get("eventName", "")),
        event_time=_optional_str(record.get("eventTime")),
    )


def parse_event(event: Mapping[str, Any]) -> list[RecordResult]:
    """Classify every record of an S3 event (never only the first)."""
    if not isinstance(event, Mapping):
        return [RecordResult(0, error="event is not a JSON object")]
    if is_test_event(event):
        return [RecordResult(0, skip_reason="s3:TestEvent")]
    records = event.get("Records")
    if not isinstance(records, list):
        return [RecordResult(0, error="event has no 'Records' list")]
    results: list[RecordResult] = []
    for index, record in enumerate(records):
        try:
            parsed = parse_record(record)
        except MalformedS3Record as exc:
            results.append(RecordResult(index, error=str(exc)))
            continue
        if not parsed.event_name.startswith("ObjectCreated:"):
            results.append(
                RecordResult(index, obj=parsed, skip_reason=f"event {parsed.event_name!r} is not a creation")
            )
        elif parsed.key.endswith("/"):
            results.append(RecordResult(index, obj=parsed, skip_reason="folder placeholder key"))
        else:
            results.append(RecordResult(index, obj=parsed))
    return results

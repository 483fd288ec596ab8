from __future__ import annotations

import dataclasses

import pytest
from async_pipeline import content_types
from async_pipeline.inference_ids import MAX_LENGTH, MissingObjectVersion, identify, of_version
from async_pipeline.s3_events import parse_record

from tests.samples import load_event


def _obj():  # type: ignore[no-untyped-def]
    return parse_record(load_event("s3-put.json")["Records"][0])


def test_same_object_version_gives_the_same_printable_id() -> None:
    first, again = identify(_obj()), identify(_obj())
    assert first == again
    assert 1 <= len(first.inference_id) <= MAX_LENGTH
    assert first.inference_id.isascii() and first.inference_id.isprintable()
    assert first.version_source == "versionId"


def test_new_upload_of_the_same_key_is_a_new_inference() -> None:
    obj = _obj()
    assert identify(obj) != identify(dataclasses.replace(obj, version_id="another-version"))


def test_bucket_and_key_are_part_of_the_identity() -> None:
    obj = _obj()
    assert identify(obj) != identify(dataclasses.replace(obj, key=obj.key + "x"))
    assert identify(obj) != identify(dataclasses.replace(obj, bucket="other-bucket"))


def test_without_version_id_the_sequencer_then_the_etag_identify_the_upload() -> None:
    obj = dataclasses.replace(_obj(), version_id=None)
    assert identify(obj).version_source == "sequencer"
    obj = dataclasses.replace(obj, sequencer=None)
    assert identify(obj).version_source == "eTag"
    with pytest.raises(MissingObjectVersion):
        identify(dataclasses.replace(obj, etag=None))


@pytest.mark.parametrize(
    ("object_type", "key", "expected"),
    [
        ("application/x-custom", "a.csv", ("application/x-custom", "object")),
        ("binary/octet-stream", "a.csv", ("text/csv", "extension")),
        ("application/octet-stream", "rows.LIBSVM", ("text/libsvm", "extension")),
        (None, "payload.jsonl", ("application/jsonlines", "extension")),
        ("", "no-extension", ("text/csv", "default")),
        ("text/caf\u00e9", "x.unknown", ("text/csv", "default")),  # non-ASCII cannot go in the header
    ],
)
def test_content_type_object_then_extension_then_default(
    object_type: str | None, key: str, expected: tuple[str, str]
) -> None:
    assert content_types.choose(object_type, key, "text/csv") == expected


def test_a_known_object_version_has_the_id_its_events_get() -> None:
    obj = _obj()
    assert obj.version_id is not None
    assert of_version(obj.bucket, obj.key, obj.version_id) == identify(obj).inference_id
    # Any event of that version names it, whatever else it carries.
    assert (
        of_version(obj.bucket, obj.key, obj.version_id)
        == identify(dataclasses.replace(obj, sequencer="0B")).inference_id
    )
    assert of_version(obj.bucket, obj.key, "another-version") != identify(obj).inference_id
    with pytest.raises(MissingObjectVersion):
        of_version(obj.bucket, obj.key, None)

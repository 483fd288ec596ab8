from __future__ import annotations

import copy

import pytest
from async_pipeline import s3_events
from async_pipeline.s3_events import MalformedS3Record, decode_key, encode_key, parse_event, parse_record

from tests.samples import load_event


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("daily+report.csv", "daily report.csv"),
        ("plus%2Bsign.csv", "plus+sign.csv"),
        ("fifty%25.csv", "fifty%.csv"),
        ("%E6%97%A5%E6%9C%AC%E8%AA%9E%2F%C3%BCber.csv", "日本語/über.csv"),
        ("emoji%F0%9F%98%80.csv", "emoji😀.csv"),
        ("a%26b%3Dc%3Fd%23e.csv", "a&b=c?d#e.csv"),
        ("tab%09and%0Anewline", "tab\tand\nnewline"),
    ],
)
def test_keys_are_form_decoded(raw: str, decoded: str) -> None:
    assert decode_key(raw) == decoded
    assert decode_key(encode_key(decoded)) == decoded


def test_invalid_utf8_key_is_a_malformed_record() -> None:
    with pytest.raises(MalformedS3Record, match="not valid percent-encoded UTF-8"):
        decode_key("bad%FF%FE.csv")


def test_sample_put_event_decodes_key_and_version() -> None:
    [result] = parse_event(load_event("s3-put.json"))
    assert result.error is None and result.skip_reason is None
    assert result.obj is not None
    assert result.obj.key == "incoming/daily report € + 50%.csv"
    assert result.obj.uri == "s3://async-pipeline-input-example/incoming/daily report € + 50%.csv"
    assert result.obj.version_id == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert result.obj.size == 58


def test_every_record_is_decoded_not_only_the_first() -> None:
    results = parse_event(load_event("s3-put-batch.json"))
    keys = [r.obj.key for r in results if r.obj is not None]
    assert keys == [
        "incoming/a file with spaces.csv",
        "incoming/plus+sign.csv",
        "incoming/日本語/über.csv",
        "incoming/folder/",
    ]
    assert [r.skip_reason for r in results] == [None, None, None, "folder placeholder key"]


def test_s3_test_event_is_skipped() -> None:
    [result] = parse_event(load_event("s3-test-event.json"))
    assert result.skip_reason == s3_events.S3_TEST_EVENT


def test_newer_minor_event_versions_are_accepted_other_majors_are_not() -> None:
    record = load_event("s3-put.json")["Records"][0]
    assert parse_record({**record, "eventVersion": "2.5"}).key.endswith("50%.csv")
    with pytest.raises(MalformedS3Record, match="eventVersion"):
        parse_record({**record, "eventVersion": "3.0"})


def test_removal_events_are_skipped_with_a_reason() -> None:
    event = load_event("s3-put.json")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    [result] = parse_event(event)
    assert result.skip_reason == "event 'ObjectRemoved:Delete' is not a creation"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda r: r.pop("s3"), "no 's3' object"),
        (lambda r: r["s3"].pop("bucket"), "lacks s3.bucket"),
        (lambda r: r["s3"]["object"].pop("key"), "lacks s3.object.key"),
        (lambda r: r["s3"]["bucket"].pop("name"), "lacks s3.bucket.name"),
        (lambda r: r.update(eventSource="aws:sqs"), "eventSource"),
        (lambda r: r["s3"]["object"].update(size="big"), "size"),
    ],
)
def test_malformed_records_carry_their_reason_and_do_not_hide_the_others(mutate: object, reason: str) -> None:
    event = load_event("s3-put-batch.json")
    mutate(event["Records"][1])  # type: ignore[operator]
    results = parse_event(event)
    assert reason in (results[1].error or "")
    assert results[0].obj is not None and results[2].obj is not None


def test_versioning_suspended_null_version_is_no_version() -> None:
    record = copy.deepcopy(load_event("s3-put.json")["Records"][0])
    record["s3"]["object"]["versionId"] = "null"
    assert parse_record(record).version_id is None


def test_event_without_records_is_an_error() -> None:
    assert parse_event({"foo": 1})[0].error == "event has no 'Records' list"

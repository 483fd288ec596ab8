"""Results for the people who drop the files (issue 13): metadata round trip, CustomAttributes, derived output names.

Pure functions directly; the handlers against moto (tests/moto_world.py), the endpoint stubbed at the HTTP layer.
"""

from __future__ import annotations

import re

import pytest
import submitter
import success_handler
from async_pipeline import output_names, user_metadata, wiring
from async_pipeline.inference_ids import identify
from async_pipeline.jobs import JobStore
from async_pipeline.s3_events import parse_record
from async_pipeline.user_metadata import InvalidCustomAttributes

from tests.moto_world import INPUT_BUCKET, OUTPUT_BUCKET, World
from tests.samples import FakeLambdaContext, validate_result_detail

# The API's patterns (reference §1.2), as the service model writes them.
FILENAME = re.compile(r"^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*$")
EXTENSION = re.compile(r"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$")
ID = "3fee29e7a452118b4718a733c35923aaee06dc500c52d7461b82663630b483c0"


# --- CustomAttributes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({}, None),
        ({"custom-attributes": ""}, None),
        ({"other": "x"}, None),
        ({"custom-attributes": "trace=abc; user=7"}, "trace=abc; user=7"),
        ({"custom-attributes": "x" * 1024}, "x" * 1024),
        ({"custom-attributes": "!~"}, "!~"),
    ],
)
def test_custom_attributes_forwarded_verbatim(metadata: dict[str, str], expected: str | None) -> None:
    assert user_metadata.custom_attributes(metadata) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("x" * 1025, "1025 characters"),
        ("caf\u00e9", "'é' at position 3"),
        (" leading", "' ' at position 0"),
        ("trailing\t", "'\\t' at position 8"),
        ("new\nline", "'\\n' at position 3"),
        ("nul\x00", "'\\x00' at position 3"),
    ],
)
def test_invalid_custom_attributes_say_why(value: str, why: str) -> None:
    with pytest.raises(InvalidCustomAttributes, match=re.escape(why)):
        user_metadata.custom_attributes({"custom-attributes": value})


@pytest.mark.parametrize(
    ("stored", "text"),
    [
        ("=?UTF-8?B?Y2Fmw6k=?=", "café"),  # what S3 returns for a value set as UTF-8 by another client
        ("=?utf-8?q?caf=C3=A9_au_lait?=", "café au lait"),
        ("=?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab"),  # whitespace between encoded words is not text
        ("x =?ISO-8859-1?Q?caf=E9?= y", "x café y"),
        ("plain=?value", "plain=?value"),
        ("=?no-such-charset?B?Y2Fmw6k=?=", "=?no-such-charset?B?Y2Fmw6k=?="),  # left as it is, never lost
        ("=?UTF-8?B?!!!?=", "=?UTF-8?B?!!!?="),
    ],
)
def test_rfc_2047_encoded_metadata_values_are_decoded(stored: str, text: str) -> None:
    assert user_metadata.decoded({"note": stored}) == {"note": text}


def test_an_encoded_non_ascii_custom_attributes_value_says_so() -> None:
    with pytest.raises(InvalidCustomAttributes, match=r"non-ASCII 'é' at position 3 .*RFC 2047"):
        user_metadata.custom_attributes(user_metadata.decoded({"custom-attributes": "=?UTF-8?B?Y2Fmw6k=?="}))


def test_encoded_metadata_reaches_the_event_decoded_and_an_encoded_custom_attributes_fails_the_job(
    world: World,
) -> None:
    """moto stores the encoded words as they are, as S3 returns them (botocore cannot send UTF-8 headers)."""
    event = world.s3_event("in/enc.csv", Metadata={"note": "=?UTF-8?B?Y2Fmw6k=?="})
    assert submitter.lambda_handler(event, FakeLambdaContext()) == {"submitted": 1}
    assert (world.job(_id(event)) or {})["metadata"] == {"note": "café"}
    bad = world.s3_event("in/enc-bad.csv", Metadata={"custom-attributes": "=?UTF-8?B?Y2Fmw6k=?="})
    assert submitter.lambda_handler(bad, FakeLambdaContext()) == {"rejected": 1}
    [result] = world.results()
    assert "non-ASCII" in result["detail"]["failureReason"] and len(world.endpoint.calls) == 1


# --- derived output names ---------------------------------------------------------------------------------------


def test_filename_is_derived_from_the_inference_id_within_the_api_pattern() -> None:
    name = output_names.filename_for(ID)
    assert name == f"{ID[:28]}.out" and len(name) <= 32 and FILENAME.match(name)


@pytest.mark.parametrize(
    ("key", "extension"),
    [
        ("rows.csv", None),
        ("incoming/rows.csv", "incoming"),
        ("incoming/2026/12/rows.csv", "incoming/2026/12"),
        ("a!_.*'()-b/rows.csv", "a!_.*'()-b"),
        ("incoming/daily report € + 50%/rows.csv", "incoming/daily_report_____50_"),
        ("日本語/über/x.csv", "___/_ber"),
        ("a//b/x.csv", "a/_/b"),
        ("./../x.csv", "_/_"),
        ("/leading.csv", "_"),
        ("s3:/x.csv", "s3_"),
    ],
)
def test_path_extension_maps_the_folder_into_the_api_pattern(key: str, extension: str | None) -> None:
    mapped = output_names.path_extension_for(key)
    assert mapped == extension
    if mapped is not None:
        assert EXTENSION.match(mapped) and len(mapped) <= 512


def test_path_extension_is_cut_at_the_last_whole_segment_within_512() -> None:
    key = "/".join(["abcdefghi"] * 60) + "/x.csv"  # 599 characters of folder
    mapped = output_names.path_extension_for(key)
    assert mapped is not None and len(mapped) <= 512 and mapped == "/".join(["abcdefghi"] * 51)


def test_output_uri_under_the_output_path() -> None:
    assert output_names.output_uri("s3://out/output/", "in/a b.csv", ID) == f"s3://out/output/in/{ID[:28]}.out"
    assert output_names.output_uri("s3://out/output", "a.csv", ID) == f"s3://out/output/{ID[:28]}.out"


# --- the submitter and the handlers -----------------------------------------------------------------------------


def _id(event: dict[str, object]) -> str:
    return identify(parse_record(event["Records"][0])).inference_id  # type: ignore[index]


def test_invalid_custom_attributes_fail_the_job_with_its_reason_not_a_retry(world: World) -> None:
    event = world.s3_event("incoming/bad.csv", Metadata={"custom-attributes": "x" * 1025, "batch": "7"})
    assert submitter.lambda_handler(event, FakeLambdaContext()) == {"rejected": 1}
    assert world.endpoint.calls == []
    job = world.job(_id(event))
    assert job is not None and job["status"] == "FAILED" and "1025 characters" in job["failureReason"]
    [result] = world.results()
    validate_result_detail(result["detail"])
    assert result["detail"]["metadata"] == {"custom-attributes": "x" * 1025, "batch": "7"}
    assert result["detail"]["schemaVersion"] == "1.1"


def test_metadata_round_trip_to_the_result_event(world: World) -> None:
    event = world.s3_event("in/2026/rows.csv", Metadata={"custom-attributes": "k=v", "owner": "ana"})
    assert submitter.lambda_handler(event, FakeLambdaContext()) == {"submitted": 1}
    inference_id = _id(event)
    notification = world.notification_event(inference_id, succeeded=True)
    assert success_handler.lambda_handler(notification, FakeLambdaContext()) == {"handled": {"recorded": 1}}
    [result] = world.results()
    detail = result["detail"]
    validate_result_detail(detail)
    assert detail["metadata"] == {"custom-attributes": "k=v", "owner": "ana"}
    assert detail["outputLocation"] == f"s3://{OUTPUT_BUCKET}/output/in/2026/{inference_id[:28]}.out"


def test_a_file_without_metadata_has_an_empty_metadata_object(world: World) -> None:
    event = world.s3_event("plain.csv")
    submitter.lambda_handler(event, FakeLambdaContext())
    success_handler.lambda_handler(world.notification_event(_id(event), succeeded=True), FakeLambdaContext())
    [result] = world.results()
    assert result["detail"]["metadata"] == {}
    assert result["detail"]["outputLocation"] == f"s3://{OUTPUT_BUCKET}/output/{_id(event)[:28]}.out"


def test_the_claim_records_the_metadata_so_an_unconfirmed_job_needs_no_s3_read(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The submitter dies after the endpoint call, before its confirmation: the SUBMITTING record already has the
    metadata (the claim carried it), so the notification's event has it although the input is gone and the
    handlers cannot reach S3 at all (the template grants them no S3 action). The reviewer's SlowDown on such a read
    used to abort the publish and keep its lease."""
    event = world.s3_event("in/crash.csv", Metadata={"owner": "bo"})
    inference_id = _id(event)

    def crash(*_: object, **__: object) -> bool:
        raise RuntimeError("the container died after InvokeEndpointAsync")

    monkeypatch.setattr(JobStore, "mark_submitted", crash)
    with pytest.raises(submitter.SubmissionFailed):
        submitter.lambda_handler(event, FakeLambdaContext())
    assert len(world.endpoint.calls) == 1
    record = world.job(inference_id)
    assert record is not None and record["status"] == "SUBMITTING" and record["metadata"] == {"owner": "bo"}
    for version in world.s3.list_object_versions(Bucket=INPUT_BUCKET)["Versions"]:
        world.s3.delete_object(Bucket=INPUT_BUCKET, Key=version["Key"], VersionId=version["VersionId"])
    real_client = wiring.client

    def no_s3(service: str) -> object:
        if service == "s3":
            raise AssertionError("a topic handler must not call S3")
        return real_client(service)

    monkeypatch.setattr(wiring, "client", no_s3)
    world.dynamodb.update_item(  # the notification names the output SageMaker chose (the stub reads it here)
        TableName=world.table,
        Key={"inferenceId": {"S": inference_id}},
        UpdateExpression="SET outputLocation = :o",
        ExpressionAttributeValues={":o": {"S": f"s3://{OUTPUT_BUCKET}/output/in/x.out"}},
    )
    notification = world.notification_event(inference_id, succeeded=True)
    assert success_handler.lambda_handler(notification, FakeLambdaContext()) == {"handled": {"recorded": 1}}
    [result] = world.results()
    validate_result_detail(result["detail"])
    assert result["detail"]["metadata"] == {"owner": "bo"}
    record = world.job(inference_id)
    assert record is not None and "eventPending" not in record


def test_a_version_gone_before_the_read_has_no_metadata(world: World) -> None:
    event = world.s3_event("in/gone.csv", Metadata={"owner": "cy"})
    version = event["Records"][0]["s3"]["object"]["versionId"]
    world.s3.delete_object(Bucket="async-pipeline-input-example", Key="in/gone.csv", VersionId=version)
    assert submitter.lambda_handler(event, FakeLambdaContext()) == {"rejected": 1}
    [result] = world.results()
    validate_result_detail(result["detail"])
    assert "metadata" not in result["detail"]

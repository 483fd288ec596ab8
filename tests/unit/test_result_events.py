from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from async_pipeline import result_events
from async_pipeline.jobs import Job, JobStatus

from tests.samples import validate_result_detail


def _job(**changes: Any) -> Job:
    base: dict[str, Any] = {
        "inference_id": "a" * 64,
        "status": JobStatus.COMPLETED,
        "endpoint_name": "ep",
        "input_location": "s3://in/k ü.csv",
        "output_location": "s3://out/output/x.out",
        "failure_location": "s3://out/failure/x.out",
        "received_time": "2026-11-24T12:00:00.455Z",
        "completed_time": "2026-11-24T12:00:07.608Z",
        "duration_ms": 7153,
    }
    base.update(changes)
    return Job(**base)


def test_completed_event() -> None:
    event = result_events.build(_job())
    assert event.detail_type == "Inference Completed"
    assert event.detail["outputLocation"] == "s3://out/output/x.out"
    assert "failureReason" not in event.detail and "failureLocation" not in event.detail
    validate_result_detail(event.detail)
    entry = event.to_entry("bus")
    assert entry["Source"] == "async-inference-pipeline" and entry["EventBusName"] == "bus"
    assert json.loads(entry["Detail"]) == event.detail


def test_failed_event_without_failure_location() -> None:
    event = result_events.build(
        _job(status=JobStatus.FAILED, failure_reason="empty", failure_location=None, output_location=None)
    )
    assert event.detail_type == "Inference Failed"
    assert event.detail["failureReason"] == "empty" and event.detail["failureLocation"] is None
    assert "outputLocation" not in event.detail
    validate_result_detail(event.detail)


def test_embedded_response_is_carried_and_oversized_one_is_dropped_with_a_note() -> None:
    event = result_events.build(
        _job(response_content="MC44Mgo=", response_encoding="BASE64", response_content_type="text/csv")
    )
    assert event.detail["inferenceResponse"] == {"content": "MC44Mgo=", "encoding": "BASE64", "contentType": "text/csv"}
    validate_result_detail(event.detail)
    big = result_events.build(_job(response_content="x" * 300_000))
    assert "inferenceResponse" not in big.detail and "inferenceResponseOmitted" in big.detail
    validate_result_detail(big.detail)


@pytest.mark.parametrize("status", [JobStatus.SUBMITTING, JobStatus.SUBMITTED])
def test_open_jobs_have_no_event(status: JobStatus) -> None:
    with pytest.raises(ValueError, match="not terminal"):
        result_events.build(_job(status=status))


def test_schema_rejects_what_the_contract_forbids() -> None:
    detail = result_events.build(_job()).detail
    with pytest.raises(jsonschema.ValidationError):
        validate_result_detail({**detail, "failureReason": "x"})
    with pytest.raises(jsonschema.ValidationError):
        validate_result_detail({k: v for k, v in detail.items() if k != "outputLocation"})


def test_a_received_envelope_reads_back_through_the_accessors() -> None:
    completed = result_events.build(_job())
    envelope = {
        "id": "e-1",
        "source": result_events.SOURCE,
        "detail-type": completed.detail_type,
        "detail": completed.detail,
    }
    event = result_events.from_envelope(envelope)
    assert (event.inference_id, event.status, event.input_location) == ("a" * 64, "COMPLETED", "s3://in/k ü.csv")
    assert (event.location, event.failure_reason) == ("s3://out/output/x.out", None)
    failed = result_events.build(_job(status=JobStatus.FAILED, failure_reason="ClientError: 415"))
    assert (failed.status, failed.location, failed.failure_reason) == (
        "FAILED",
        "s3://out/failure/x.out",
        "ClientError: 415",
    )
    with pytest.raises(ValueError, match="not a result event"):
        result_events.from_envelope({**envelope, "source": "elsewhere"})
    with pytest.raises(ValueError, match="without a detail"):
        result_events.from_envelope({**envelope, "detail": None})


def test_schema_1_1_adds_metadata_and_nothing_else() -> None:
    """The sample envelope (events/) is valid; the 1.1 event is the 1.0 event plus ``metadata``, so a consumer of
    1.0 reads it unchanged; 1.0 events stay valid."""
    from tests.samples import load_event

    envelope = load_event("result-event-completed.json")
    validate_result_detail(envelope["detail"])
    event = result_events.from_envelope(envelope)
    assert event.metadata == {"custom-attributes": "trace=42", "owner": "ana"}
    with_metadata = result_events.build(_job(metadata={"owner": "ana"})).detail
    without = result_events.build(_job()).detail
    assert with_metadata["schemaVersion"] == without["schemaVersion"] == "1.1"
    assert {k: v for k, v in with_metadata.items() if k != "metadata"} == without
    validate_result_detail({**without, "schemaVersion": "1.0"})
    with pytest.raises(jsonschema.ValidationError):
        validate_result_detail({**with_metadata, "metadata": {"owner": 7}})


def test_a_strict_1_0_validator_rejects_1_1_events_and_1_1_validators_accept_later_minors() -> None:
    """What consumers meet (README "Versions"): the 1.0 schema (frozen in tests/unit/data) had ``const 1.0`` and
    top-level ``additionalProperties: false``, so it refuses every 1.1 event; from 1.1 the schema takes any 1.x and
    unknown top-level fields, so a 1.2 that adds a field does not break a 1.1 validator."""
    from tests.samples import ROOT

    frozen = json.loads((ROOT / "tests" / "unit" / "data" / "result-event.schema-1.0.json").read_text("utf-8"))
    strict_1_0 = jsonschema.Draft202012Validator(frozen)
    event = result_events.build(_job(metadata={"owner": "ana"})).detail
    assert not strict_1_0.is_valid(event)
    assert not strict_1_0.is_valid({k: v for k, v in event.items() if k != "metadata"})  # the version alone
    assert strict_1_0.is_valid({**{k: v for k, v in event.items() if k != "metadata"}, "schemaVersion": "1.0"})
    validate_result_detail({**event, "schemaVersion": "1.2", "addedIn12": {"any": "thing"}})
    for wrong in ("2.0", "1", "1.x", 1.1):
        with pytest.raises(jsonschema.ValidationError):
            validate_result_detail({**event, "schemaVersion": wrong})
    with pytest.raises(jsonschema.ValidationError):  # nested objects stay strict
        validate_result_detail(
            {**event, "inferenceResponse": {"content": "x", "encoding": None, "contentType": None, "other": 1}}
        )

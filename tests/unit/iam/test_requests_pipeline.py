"""The pipeline's own calls, made by its real code on capturing clients, mapped to what AWS authorizes: the checks
its roles' policies must allow."""

from __future__ import annotations

from typing import Any

import pytest
from async_pipeline.jobs import JobStore
from async_pipeline.staging import StagingPlace, stage

from asyncinfer.local.iam.checks import Check, HttpRequest
from tests.unit.iam.captured import ACCOUNT, REGION, Sent, client, mapped

OWNED = {"s3:ResourceAccount": ACCOUNT}


def _first_request(call: Any) -> HttpRequest:
    with pytest.raises(Sent) as sending:
        call()
    return sending.value.http_request()


def test_staging_copies_the_exact_version_read_and_write() -> None:
    place = StagingPlace.from_uri("s3://staging/jobs/")
    request = _first_request(
        lambda: stage(client("s3"), place, "0af3", bucket="in", key="dir/data file.CSV", version_id="v1")
    )
    assert mapped(request).checks == (
        Check("s3:GetObjectVersion", "arn:aws:s3:::in/dir/data file.CSV", {**OWNED, "s3:versionid": "v1"}),
        Check("s3:PutObject", "arn:aws:s3:::staging/jobs/0af3.csv", OWNED),
    )


def test_job_store_reads_and_updates_its_table() -> None:
    store = JobStore(client("dynamodb"), "Jobs", retention_seconds=60)
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Jobs"
    assert mapped(_first_request(lambda: store.get("0af3"))).checks == (Check("dynamodb:GetItem", table),)
    assert mapped(_first_request(lambda: store.release_publish_lease("0af3"))).checks == (
        Check("dynamodb:UpdateItem", table),
    )

"""What deleting the stack keeps: the data (DeletionPolicy and UpdateReplacePolicy Retain), and only the data."""

from __future__ import annotations

from typing import Any

from asyncinfer import teardown

# The users' files, the results, the job records that map one to the other, and the buckets' TLS-only policies.
RETAINED = {"InputBucket", "InputBucketPolicy", "OutputBucket", "OutputBucketPolicy", "JobsTable"}


def test_the_data_survives_deletion_and_replacement(raw: dict[str, Any]) -> None:
    for logical in RETAINED:
        resource = raw["Resources"][logical]
        assert resource.get("DeletionPolicy") == "Retain", logical
        assert resource.get("UpdateReplacePolicy") == "Retain", logical  # cfn-lint W3011 wants both


def test_everything_else_goes_with_the_stack(cfn: dict[str, Any]) -> None:
    retained = {
        logical
        for logical, resource in cfn["Resources"].items()
        if {resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")} & teardown.RETAINING_POLICIES
    }
    assert retained == RETAINED


def test_every_bucket_and_table_is_retained(cfn: dict[str, Any]) -> None:
    data = {logical for logical, r in cfn["Resources"].items() if r["Type"] in teardown.DATA_TYPES}
    assert data == {"InputBucket", "OutputBucket", "JobsTable"}
    assert set(teardown.deletion_policies(cfn)) >= data
    assert all(teardown.deletion_policies(cfn)[logical] == "Retain" for logical in data)

"""Deleting a stack (asyncinfer.teardown): the plan, the refusals, the reasons of a failed deletion, and emptying
versioned buckets against moto (versions, delete markers, more than one DeleteObjects batch, per-key errors)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from asyncinfer import teardown

STACK_ID = "arn:aws:cloudformation:eu-west-1:111122223333:stack/my-stack/0a1b2c"
RESOURCES = [
    ("InputBucket", "AWS::S3::Bucket", "my-stack-inputbucket-1"),
    ("InputBucketPolicy", "AWS::S3::BucketPolicy", "my-stack-inputbucketpolicy-1"),
    ("OutputBucket", "AWS::S3::Bucket", "my-stack-outputbucket-1"),
    ("JobsTable", "AWS::DynamoDB::Table", "my-stack-JobsTable-1"),
    ("ResultsQueue", "AWS::SQS::Queue", "https://sqs.eu-west-1.amazonaws.com/111122223333/q"),
]
POLICIES = {"InputBucket": "Retain", "InputBucketPolicy": "Retain", "OutputBucket": "Retain", "JobsTable": "Retain"}


# ----------------------------------------------------------------------------------------------------------- plans
def test_deletion_policies_read_parsed_json_and_yaml_templates() -> None:
    parsed = {"Resources": {"A": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"}, "B": {"Type": "X"}}}
    assert teardown.deletion_policies(parsed) == {"A": "Retain", "B": "Delete"}
    assert teardown.deletion_policies(json.dumps(parsed)) == {"A": "Retain", "B": "Delete"}
    yaml = "Resources:\n  A:\n    Type: AWS::S3::Bucket\n    DeletionPolicy: Retain\n    Properties:\n      X: !Ref B\n"
    assert teardown.deletion_policies(yaml) == {"A": "Retain"}


def test_the_plan_keeps_the_retained_resources_and_names_them_with_arns() -> None:
    plan = teardown.plan("my-stack", STACK_ID, RESOURCES, POLICIES, purge=False)
    assert plan.region == "eu-west-1"
    assert [r.logical_id for r in plan.kept] == ["InputBucket", "InputBucketPolicy", "OutputBucket", "JobsTable"]
    arns = {r.logical_id: r.arn for r in plan.kept}
    assert arns["InputBucket"] == "arn:aws:s3:::my-stack-inputbucket-1"
    assert arns["JobsTable"] == "arn:aws:dynamodb:eu-west-1:111122223333:table/my-stack-JobsTable-1"
    assert arns["InputBucketPolicy"] is None
    assert plan.deleted_afterwards == () and plan.left_over == ()
    assert [r.logical_id for r in plan.buckets] == ["InputBucket", "OutputBucket"]


def test_a_purge_keeps_nothing_and_deletes_the_retained_data_itself() -> None:
    plan = teardown.plan("my-stack", STACK_ID, RESOURCES, POLICIES, purge=True)
    assert plan.kept == ()
    assert [r.logical_id for r in plan.deleted_afterwards] == ["InputBucket", "OutputBucket", "JobsTable"]
    # The bucket policy goes with its bucket; a retained resource of another type would be left to the user.
    assert plan.left_over == ()
    other = teardown.plan("s", STACK_ID, [("Topic", "AWS::SNS::Topic", "arn:t")], {"Topic": "Retain"}, purge=True)
    assert [r.logical_id for r in other.left_over] == ["Topic"]


def test_retain_except_on_create_retains_too() -> None:
    plan = teardown.plan("s", STACK_ID, RESOURCES[:1], {"InputBucket": "RetainExceptOnCreate"}, purge=False)
    assert [r.logical_id for r in plan.kept] == ["InputBucket"]


def test_unretained_data_that_holds_something_is_refused_without_purge() -> None:
    """A stack deployed before DeletionPolicy Retain: CloudFormation would fail on the non-empty bucket (half-way,
    DELETE_FAILED) and delete the table with its records."""
    plan = teardown.plan("my-stack", STACK_ID, RESOURCES, {}, purge=False)
    assert [r.logical_id for r in plan.unretained_data] == ["InputBucket", "OutputBucket", "JobsTable"]
    reasons = teardown.refusals(plan, {"my-stack-inputbucket-1", "my-stack-JobsTable-1"})
    assert reasons == [
        "InputBucket (bucket my-stack-inputbucket-1) is not retained and not empty: CloudFormation cannot delete it "
        "(DELETE_FAILED)",
        "JobsTable (table my-stack-JobsTable-1) is not retained: deleting the stack would delete its records",
    ]
    assert teardown.refusals(plan, set()) == []  # empty: nothing to lose, nothing to fail on
    assert teardown.refusals(teardown.plan("my-stack", STACK_ID, RESOURCES, {}, purge=True), {"x"}) == []


def test_failure_reasons_are_this_deletions_delete_failed_events_oldest_first() -> None:
    stack = {"LogicalResourceId": "my-stack", "ResourceType": "AWS::CloudFormation::Stack"}
    events = [  # newest first, as DescribeStackEvents returns them
        {**stack, "ResourceStatus": "DELETE_FAILED", "ResourceStatusReason": "The following resource(s) failed"},
        {
            "LogicalResourceId": "OutputBucket",
            "ResourceType": "AWS::S3::Bucket",
            "ResourceStatus": "DELETE_FAILED",
            "ResourceStatusReason": "The bucket you tried to delete is not empty. You must delete all versions",
        },
        {"LogicalResourceId": "InputBucket", "ResourceType": "AWS::S3::Bucket", "ResourceStatus": "DELETE_FAILED"},
        {**stack, "ResourceStatus": "DELETE_IN_PROGRESS", "ResourceStatusReason": "User Initiated"},
        {"LogicalResourceId": "Old", "ResourceType": "AWS::S3::Bucket", "ResourceStatus": "DELETE_FAILED"},
    ]
    assert teardown.failure_reasons(events, "my-stack") == [
        "InputBucket: no reason given",
        "OutputBucket: The bucket you tried to delete is not empty. You must delete all versions",
    ]
    assert teardown.failure_reasons(events[:1], "my-stack") == ["my-stack: The following resource(s) failed"]


def test_delete_failed_raises_with_the_events_reasons() -> None:
    cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
    failed = {"StackName": "my-stack", "StackId": STACK_ID, "CreationTime": "2026-01-01T00:00:00Z"}
    with Stubber(cloudformation) as stub:
        stub.add_response("delete_stack", {}, {"StackName": STACK_ID})
        stub.add_response("describe_stacks", {"Stacks": [{**failed, "StackStatus": "DELETE_FAILED"}]})
        event = {"StackId": STACK_ID, "EventId": "e", "StackName": "my-stack", "Timestamp": "2026-01-01T00:00:00Z"}
        stub.add_response(
            "describe_stack_events",
            {
                "StackEvents": [
                    {
                        **event,
                        "LogicalResourceId": "InputBucket",
                        "ResourceType": "AWS::S3::Bucket",
                        "ResourceStatus": "DELETE_FAILED",
                        "ResourceStatusReason": "The bucket you tried to delete is not empty",
                    },
                    {
                        **event,
                        "LogicalResourceId": "my-stack",
                        "ResourceType": "AWS::CloudFormation::Stack",
                        "ResourceStatus": "DELETE_IN_PROGRESS",
                    },
                ]
            },
        )
        with pytest.raises(teardown.StackDeletionFailed) as failure:
            teardown.delete_stack(cloudformation, STACK_ID, "my-stack", delay_seconds=1, max_attempts=2)
    assert failure.value.reasons == ["InputBucket: The bucket you tried to delete is not empty"]
    assert str(failure.value).startswith("stack my-stack was not deleted (DELETE_FAILED): InputBucket: The bucket")


# -------------------------------------------------------------------------------------------------------- emptying
@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


def versioned_bucket(s3: Any, name: str = "data") -> str:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def entries(s3: Any, bucket: str) -> tuple[int, int]:
    pages = list(s3.get_paginator("list_object_versions").paginate(Bucket=bucket))
    return sum(len(p.get("Versions", [])) for p in pages), sum(len(p.get("DeleteMarkers", [])) for p in pages)


def test_a_bucket_holding_only_old_versions_and_delete_markers_is_not_empty(s3: Any) -> None:
    """What `sam delete` runs into: no current object, yet S3 refuses to delete the bucket."""
    bucket = versioned_bucket(s3)
    s3.put_object(Bucket=bucket, Key="a.csv", Body=b"1")
    s3.put_object(Bucket=bucket, Key="a.csv", Body=b"2")
    s3.delete_object(Bucket=bucket, Key="a.csv")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert entries(s3, bucket) == (2, 1)
    assert not teardown.bucket_is_empty(s3, bucket)
    with pytest.raises(ClientError, match="BucketNotEmpty"):
        s3.delete_bucket(Bucket=bucket)


def test_emptying_deletes_every_version_and_every_delete_marker(s3: Any) -> None:
    bucket = versioned_bucket(s3)
    for key in ("a.csv", "dir/b € + 50%.csv", "c.csv"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
        s3.put_object(Bucket=bucket, Key=key, Body=b"2")
    s3.delete_object(Bucket=bucket, Key="a.csv")
    s3.delete_object(Bucket=bucket, Key="a.csv")  # a second delete marker on top of the first
    emptied = teardown.empty_bucket(s3, bucket)
    assert (emptied.deleted, emptied.failures) == (8, [])
    assert entries(s3, bucket) == (0, 0)
    assert teardown.bucket_is_empty(s3, bucket)
    s3.delete_bucket(Bucket=bucket)


def test_emptying_pages_through_more_than_1000_entries_in_batches_of_at_most_1000(s3: Any) -> None:
    bucket = versioned_bucket(s3)
    keys = [f"k/{i:04d}.csv" for i in range(700)]
    for body in (b"1", b"2"):
        for key in keys:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})  # 700 markers
    assert entries(s3, bucket) == (1400, 700)
    sizes: list[int] = []
    listed: list[int] = []

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "DeleteObjects":
            sizes.append(len(params["Delete"]["Objects"]))
        elif model.name == "ListObjectVersions":
            listed.append(1)

    s3.meta.events.register("provide-client-params.s3.*", count)
    emptied = teardown.empty_bucket(s3, bucket)
    assert emptied.deleted == 2100 and emptied.failures == []
    assert len(listed) >= 3 and len(sizes) >= 3 and max(sizes) <= 1000 and sum(sizes) == 2100
    assert entries(s3, bucket) == (0, 0)


class FailingDeletes:
    """An S3 client whose DeleteObjects reports per-key errors (in a 200 response, as S3 does): ``transient``
    fail once with SlowDown, ``denied`` always with AccessDenied."""

    def __init__(self, s3: Any, transient: set[str], denied: set[str]) -> None:
        self._s3, self.transient, self.denied, self.calls = s3, set(transient), denied, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def delete_objects(self, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        errors, ok = [], []
        for item in Delete["Objects"]:
            if item["Key"] in self.denied:
                errors.append({**item, "Code": "AccessDenied", "Message": "Access Denied"})
            elif item["Key"] in self.transient:
                self.transient.discard(item["Key"])
                errors.append({**item, "Code": "SlowDown", "Message": "Please reduce your request rate."})
            else:
                ok.append(item)
        if ok:
            self._s3.delete_objects(Bucket=Bucket, Delete={"Objects": ok, "Quiet": True})
        return {"Errors": errors} if errors else {}


def test_per_key_errors_are_retried_when_transient_and_reported_otherwise(s3: Any) -> None:
    bucket = versioned_bucket(s3)
    for key in ("a", "b", "locked"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    client = FailingDeletes(s3, transient={"a"}, denied={"locked"})
    pauses: list[float] = []
    emptied = teardown.empty_bucket(client, bucket, sleep=pauses.append)  # type: ignore[arg-type]
    assert emptied.deleted == 2
    assert [(f.key, f.code) for f in emptied.failures] == [("locked", "AccessDenied")]
    assert pauses == [0.5]
    assert "1 version(s) of bucket data could not be deleted: locked (" in emptied.describe_failures()
    # The bucket is not deleted while a version is left: the failures are the error.
    with pytest.raises(teardown.TeardownError, match="locked"):
        teardown.remove_bucket(client, bucket)  # type: ignore[arg-type]
    assert s3.head_bucket(Bucket=bucket)


def test_pages_of_undeletable_versions_are_stepped_over(s3: Any) -> None:
    """Listing restarts where the last surviving version is: past pages that only hold versions S3 refused."""
    bucket = versioned_bucket(s3)
    for key in ("a", "b", "c", "d", "e"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    client = FailingDeletes(s3, transient=set(), denied={"a", "b", "c"})
    emptied = teardown.empty_bucket(client, bucket, page_size=2)  # type: ignore[arg-type]
    assert emptied.deleted == 2
    assert sorted(f.key for f in emptied.failures) == ["a", "b", "c"]
    assert entries(s3, bucket) == (3, 0)


def test_remove_bucket_empties_then_deletes_and_a_missing_bucket_is_done(s3: Any) -> None:
    bucket = versioned_bucket(s3)
    s3.put_object(Bucket=bucket, Key="a", Body=b"1")
    s3.delete_object(Bucket=bucket, Key="a")
    assert teardown.remove_bucket(s3, bucket).deleted == 2
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert teardown.remove_bucket(s3, bucket).deleted == 0
    assert teardown.bucket_is_empty(s3, bucket)


def test_tables_holding_items_are_occupied() -> None:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        for name in ("full", "empty"):
            dynamodb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        dynamodb.put_item(TableName="full", Item={"id": {"S": "1"}})
        tables = [teardown.Resource(n, "AWS::DynamoDB::Table", n, retained=False) for n in ("full", "empty", "gone")]
        assert teardown.occupied(tables, s3, dynamodb) == {"full"}
        teardown.remove_table(dynamodb, "full")
        teardown.remove_table(dynamodb, "gone")
        assert dynamodb.list_tables()["TableNames"] == ["empty"]

"""S3 requests from a real boto3 client (path-style, as the local stack serves S3) mapped to AWS's checks."""

from __future__ import annotations

from typing import Any

import pytest

from asyncinfer.local.iam.checks import Check, UnmappedRequest
from asyncinfer.local.iam.requests import http_request, needs_body
from tests.unit.iam.captured import ACCOUNT, mapped, sent

OWNED = {"s3:ResourceAccount": ACCOUNT}


def _version(version: str) -> dict[str, str]:
    return {**OWNED, "s3:versionid": version}


def test_get_object_with_range_and_version_reads_that_version_of_the_decoded_key() -> None:
    request = sent("s3", "get_object", Bucket="in", Key="a b/c%d+é.csv", VersionId="v1", Range="bytes=0-9")
    result = mapped(request)
    assert result.operation == "s3:GetObject"
    assert result.checks == (Check("s3:GetObjectVersion", "arn:aws:s3:::in/a b/c%d+é.csv", _version("v1")),)


def test_get_object_without_version_and_with_range_is_get_object() -> None:
    result = mapped(sent("s3", "get_object", Bucket="in", Key="k.csv", Range="bytes=0-9", IfMatch='"e"'))
    assert result.checks == (Check("s3:GetObject", "arn:aws:s3:::in/k.csv", OWNED),)


@pytest.mark.parametrize(("version", "action"), [(None, "s3:GetObject"), ("v2", "s3:GetObjectVersion")])
def test_head_object_is_a_read(version: str | None, action: str) -> None:
    params: dict[str, Any] = {"Bucket": "in", "Key": "k"} | ({"VersionId": version} if version else {})
    result = mapped(sent("s3", "head_object", **params))
    assert result.operation == "s3:HeadObject"
    assert result.checks == (Check(action, "arn:aws:s3:::in/k", _version(version) if version else OWNED),)


def test_copy_object_by_version_reads_the_source_version_and_writes_the_destination() -> None:
    result = mapped(
        sent(
            "s3",
            "copy_object",
            Bucket="staging",
            Key="jobs/1/in put.csv",
            CopySource={"Bucket": "in", "Key": "dir/in put.csv", "VersionId": "v7"},
            TaggingDirective="REPLACE",
        )
    )
    assert result.operation == "s3:CopyObject"
    assert result.checks == (
        Check("s3:GetObjectVersion", "arn:aws:s3:::in/dir/in put.csv", _version("v7")),
        Check("s3:PutObject", "arn:aws:s3:::staging/jobs/1/in put.csv", OWNED),
    )


def test_copy_object_without_version_reads_the_current_object() -> None:
    result = mapped(sent("s3", "copy_object", Bucket="b", Key="to", CopySource="src/from", CopySourceIfMatch='"e"'))
    assert result.checks[0] == Check("s3:GetObject", "arn:aws:s3:::src/from", OWNED)


def test_put_object_with_tags_and_acl_needs_their_permissions_too() -> None:
    plain = mapped(sent("s3", "put_object", Bucket="out", Key="r.json", Body=b"{}"))
    assert plain.checks == (Check("s3:PutObject", "arn:aws:s3:::out/r.json", OWNED),)
    tagged = mapped(sent("s3", "put_object", Bucket="out", Key="r", Body=b"", Tagging="a=b", ACL="private"))
    assert [check.action for check in tagged.checks] == ["s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectTagging"]


def test_multipart_upload_checks_put_object_and_abort_its_own_action() -> None:
    target = "arn:aws:s3:::out/big.bin"
    steps = {
        "create_multipart_upload": ({}, "s3:CreateMultipartUpload", "s3:PutObject"),
        "upload_part": ({"UploadId": "u", "PartNumber": 1, "Body": b"x"}, "s3:UploadPart", "s3:PutObject"),
        "complete_multipart_upload": (
            {"UploadId": "u", "MultipartUpload": {"Parts": [{"ETag": '"e"', "PartNumber": 1}]}},
            "s3:CompleteMultipartUpload",
            "s3:PutObject",
        ),
        "abort_multipart_upload": ({"UploadId": "u"}, "s3:AbortMultipartUpload", "s3:AbortMultipartUpload"),
        "list_parts": ({"UploadId": "u"}, "s3:ListParts", "s3:ListMultipartUploadParts"),
    }
    for operation, (params, name, action) in steps.items():
        result = mapped(sent("s3", operation, Bucket="out", Key="big.bin", **params))
        assert (result.operation, result.checks) == (name, (Check(action, target, OWNED),)), operation


def test_upload_part_copy_reads_the_source_and_writes_the_destination() -> None:
    result = mapped(
        sent(
            "s3",
            "upload_part_copy",
            Bucket="out",
            Key="big",
            UploadId="u",
            PartNumber=2,
            CopySource={"Bucket": "in", "Key": "src", "VersionId": "v1"},
        )
    )
    assert result.operation == "s3:UploadPartCopy"
    assert result.checks == (
        Check("s3:GetObjectVersion", "arn:aws:s3:::in/src", _version("v1")),
        Check("s3:PutObject", "arn:aws:s3:::out/big", OWNED),
    )


@pytest.mark.parametrize(
    ("operation", "params", "name", "action"),
    [
        ("head_bucket", {}, "s3:HeadBucket", "s3:ListBucket"),
        ("list_multipart_uploads", {}, "s3:ListMultipartUploads", "s3:ListBucketMultipartUploads"),
        ("get_bucket_versioning", {}, "s3:GetBucketVersioning", "s3:GetBucketVersioning"),
        ("get_bucket_tagging", {}, "s3:GetBucketTagging", "s3:GetBucketTagging"),
        ("get_bucket_acl", {}, "s3:GetBucketAcl", "s3:GetBucketAcl"),
        ("get_bucket_policy", {}, "s3:GetBucketPolicy", "s3:GetBucketPolicy"),
        (
            "get_bucket_notification_configuration",
            {},
            "s3:GetBucketNotificationConfiguration",
            "s3:GetBucketNotification",
        ),
        (
            "get_bucket_lifecycle_configuration",
            {},
            "s3:GetBucketLifecycleConfiguration",
            "s3:GetLifecycleConfiguration",
        ),
        ("get_bucket_location", {}, "s3:GetBucketLocation", "s3:GetBucketLocation"),
        ("delete_bucket_lifecycle", {}, "s3:DeleteBucketLifecycle", "s3:PutLifecycleConfiguration"),
        ("delete_bucket_tagging", {}, "s3:DeleteBucketTagging", "s3:PutBucketTagging"),
        ("delete_bucket_policy", {}, "s3:DeleteBucketPolicy", "s3:DeleteBucketPolicy"),
        (
            "put_bucket_versioning",
            {"VersioningConfiguration": {"Status": "Enabled"}},
            "s3:PutBucketVersioning",
            "s3:PutBucketVersioning",
        ),
        ("put_bucket_policy", {"Policy": "{}"}, "s3:PutBucketPolicy", "s3:PutBucketPolicy"),
        ("delete_bucket", {}, "s3:DeleteBucket", "s3:DeleteBucket"),
    ],
)
def test_bucket_operations_and_sub_resources(operation: str, params: dict[str, Any], name: str, action: str) -> None:
    result = mapped(sent("s3", operation, Bucket="data", **params))
    assert (result.operation, result.checks) == (name, (Check(action, "arn:aws:s3:::data", OWNED),))


@pytest.mark.parametrize(
    ("operation", "name", "action"),
    [
        ("list_objects_v2", "s3:ListObjectsV2", "s3:ListBucket"),
        ("list_objects", "s3:ListObjects", "s3:ListBucket"),
        ("list_object_versions", "s3:ListObjectVersions", "s3:ListBucketVersions"),
    ],
)
def test_listings_carry_prefix_delimiter_and_max_keys(operation: str, name: str, action: str) -> None:
    result = mapped(sent("s3", operation, Bucket="data", Prefix="a b/", Delimiter="/", MaxKeys=5))
    context = {**OWNED, "s3:prefix": "a b/", "s3:delimiter": "/", "s3:max-keys": "5"}
    assert (result.operation, result.checks) == (name, (Check(action, "arn:aws:s3:::data", context),))
    assert mapped(sent("s3", operation, Bucket="data")).checks == (Check(action, "arn:aws:s3:::data", OWNED),)


@pytest.mark.parametrize(
    ("operation", "params", "plain", "versioned"),
    [
        ("get_object_tagging", {}, "s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
        ("put_object_tagging", {"Tagging": {"TagSet": []}}, "s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
        ("delete_object_tagging", {}, "s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
        ("get_object_acl", {}, "s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
        ("put_object_acl", {"ACL": "private"}, "s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
        ("delete_object", {}, "s3:DeleteObject", "s3:DeleteObjectVersion"),
    ],
)
def test_object_sub_resources_have_version_variants(
    operation: str, params: dict[str, Any], plain: str, versioned: str
) -> None:
    current = mapped(sent("s3", operation, Bucket="b", Key="k", **params))
    assert current.checks == (Check(plain, "arn:aws:s3:::b/k", OWNED),)
    version = mapped(sent("s3", operation, Bucket="b", Key="k", VersionId="v9", **params))
    assert version.checks == (Check(versioned, "arn:aws:s3:::b/k", _version("v9")),)


def test_delete_objects_reads_its_body_and_checks_each_key() -> None:
    request = sent(
        "s3",
        "delete_objects",
        Bucket="b",
        Delete={"Objects": [{"Key": "a&b"}, {"Key": "v", "VersionId": "1"}, {"Key": "a&b"}]},
    )
    assert needs_body(request, "s3")
    result = mapped(request)
    assert result.operation == "s3:DeleteObjects"
    assert result.checks == (
        Check("s3:DeleteObject", "arn:aws:s3:::b/a&b", OWNED),
        Check("s3:DeleteObjectVersion", "arn:aws:s3:::b/v", _version("1")),
    )


def test_object_uploads_never_need_their_body() -> None:
    for request in (
        sent("s3", "put_object", Bucket="b", Key="k", Body=b"data"),
        sent("s3", "upload_part", Bucket="b", Key="k", UploadId="u", PartNumber=1, Body=b"data"),
    ):
        assert not needs_body(http_request(request.method, f"http://h{request.path}?{request.query}", {}), "s3")


def test_list_buckets_supports_no_resource() -> None:
    result = mapped(sent("s3", "list_buckets"))
    assert result.checks == (Check("s3:ListAllMyBuckets", "*"),)


def test_virtual_host_addressing_names_the_bucket_in_the_host() -> None:
    request = sent("s3", "get_object", Bucket="in", Key="k")
    hosted = http_request("GET", "https://in.s3.eu-west-1.amazonaws.com/dir/k%201", dict(request.headers))
    from dataclasses import replace

    from asyncinfer.local.iam.requests import map_request
    from tests.unit.iam.captured import signed

    virtual = replace(hosted, headers={**hosted.headers, "host": "in.s3.eu-west-1.amazonaws.com"})
    assert map_request(virtual, signed(request), ACCOUNT).checks == (
        Check("s3:GetObject", "arn:aws:s3:::in/dir/k 1", OWNED),
    )


def test_presigned_get_maps_like_a_signed_one() -> None:
    from tests.unit.iam.captured import client

    # boto3 presigns S3 URLs to a custom endpoint with SigV2 (AWSAccessKeyId=…): the query names no sub-resource.
    url = client("s3").generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k", "VersionId": "v"})
    request = http_request("GET", url, {"host": "127.0.0.1:4566"})
    assert mapped(request).checks == (Check("s3:GetObjectVersion", "arn:aws:s3:::b/k", _version("v")),)


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("get_bucket_inventory_configuration", {"Id": "i"}),
        ("delete_bucket_analytics_configuration", {"Id": "i"}),
        ("get_bucket_metrics_configuration", {"Id": "i"}),
    ],
)
def test_operations_not_mapped_are_refused_by_name(operation: str, params: dict[str, Any]) -> None:
    with pytest.raises(UnmappedRequest, match="not mapped"):
        mapped(sent("s3", operation, Bucket="b", **params))

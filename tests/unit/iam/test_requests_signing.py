"""Who signed a request (SigV4 header, presigned query, SigV2 S3) and whether its mapping needs the body."""

from __future__ import annotations

from asyncinfer.local.iam.checks import Caller
from asyncinfer.local.iam.requests import caller_of, http_request, needs_body
from tests.unit.iam.captured import REGION, client, sent


def test_caller_from_the_authorization_header_and_security_token_header() -> None:
    assert caller_of(sent("dynamodb", "list_tables", token="T0K")) == Caller(
        "ASIAEXAMPLEKEY", "T0K", "dynamodb", REGION
    )
    assert caller_of(sent("cloudwatch", "list_metrics", token=None)) == Caller(
        "ASIAEXAMPLEKEY", None, "monitoring", REGION
    )
    assert caller_of(sent("sagemaker-runtime", "invoke_endpoint", EndpointName="e", Body=b"")) == Caller(
        "ASIAEXAMPLEKEY", "TOKEN", "sagemaker", REGION
    )


def test_caller_from_a_sigv4_presigned_url_with_its_token_in_the_query() -> None:
    import boto3
    from botocore.config import Config

    presigner = Config(signature_version="s3v4")
    signer = boto3.session.Session().client(
        "s3", endpoint_url="http://127.0.0.1:4566", region_name=REGION, aws_access_key_id="AKIDQUERY",
        aws_secret_access_key="s", aws_session_token="T0K", config=presigner,
    )  # fmt: skip
    url = signer.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    assert "X-Amz-Credential=" in url
    assert caller_of(http_request("GET", url, {})) == Caller("AKIDQUERY", "T0K", "s3", REGION)


def test_unsigned_and_malformed_requests_have_no_caller() -> None:
    assert caller_of(http_request("GET", "http://127.0.0.1/b/k", {})) is None
    bad_scope = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/s3, Signature=x"}
    assert caller_of(http_request("GET", "http://127.0.0.1/b/k", bad_scope)) is None


def test_sigv2_s3_requests_name_their_key_and_no_region() -> None:
    url = client("s3").generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    assert caller_of(http_request("GET", url, {})) == Caller("ASIAEXAMPLEKEY", None, "s3", "")
    header = {"Authorization": "AWS AKIDV2:c2lnbmF0dXJl", "x-amz-security-token": "T"}
    assert caller_of(http_request("GET", "http://127.0.0.1/b/k", header)) == Caller("AKIDV2", "T", "s3", "")


def test_needs_body_only_where_the_body_names_the_resources() -> None:
    bare = http_request("POST", "http://127.0.0.1:4566/", {})
    for service in ("dynamodb", "events", "sqs", "sns", "sts", "monitoring", "application-autoscaling"):
        assert needs_body(bare, service), service
    assert needs_body(http_request("POST", "http://127.0.0.1:4566/", {"x-amz-target": "SageMaker.X"}), "sagemaker")
    assert not needs_body(http_request("POST", "http://h/endpoints/e/async-invocations", {}), "sagemaker")
    assert not needs_body(http_request("POST", "http://h/2015-03-31/functions/f/invocations", {}), "lambda")
    assert not needs_body(http_request("PUT", "http://h/b/k", {}), "s3")
    assert not needs_body(http_request("POST", "http://h/b/k?uploads", {}), "s3")
    assert needs_body(http_request("POST", "http://h/b?delete", {}), "s3")


def test_http_request_lower_cases_header_names_and_decodes_bytes() -> None:
    made = http_request("get", "http://h:1/b/a%20b?versionId=1", {"X-Amz-Target": b"T.Op"}, None)
    assert (made.method, made.path, made.query, made.headers, made.body) == (
        "GET", "/b/a%20b", "versionId=1", {"x-amz-target": "T.Op"}, b"",
    )  # fmt: skip

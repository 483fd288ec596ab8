"""The pure parts of provisioning the local stack: physical names and ARNs, and parameter coercion."""

from __future__ import annotations

import boto3

from asyncinfer.local.moto_resources import coerce
from asyncinfer.local.physical_ids import ACCOUNT, name_resource
from asyncinfer.local.template import Resolver

PSEUDO = {"AWS::Region": "eu-west-1", "AWS::StackName": "st"}


def _resolver(parameters: dict[str, str] | None = None) -> Resolver:
    return Resolver({"Resources": {}}, parameters or {}, PSEUDO)


def test_a_bucket_without_a_name_gets_cloudformations_lower_case_one() -> None:
    resolver = _resolver()
    name_resource(resolver, "InputBucket", {"Type": "AWS::S3::Bucket"}, "My-Stack", "eu-west-1")
    assert resolver.refs["InputBucket"] == "my-stack-inputbucket"
    assert resolver.attrs[("InputBucket", "Arn")] == "arn:aws:s3:::my-stack-inputbucket"
    assert resolver.attrs[("InputBucket", "RegionalDomainName")] == "my-stack-inputbucket.s3.eu-west-1.amazonaws.com"


def test_an_explicit_name_wins_once_it_resolves() -> None:
    resolver = _resolver({"Prefix": "p"})
    topic = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::Sub": "${Prefix}-done"}}}
    name_resource(resolver, "Done", topic, "st", "eu-west-1")
    assert resolver.refs["Done"] == f"arn:aws:sns:eu-west-1:{ACCOUNT}:p-done"
    assert resolver.attrs[("Done", "TopicName")] == "p-done"
    # A name that refers to what is not known yet falls back to the generated one.
    queue = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Later"}}}
    name_resource(resolver, "Work", queue, "st", "eu-west-1")
    assert resolver.attrs[("Work", "QueueName")] == "st-Work"


def test_parameters_are_coerced_to_the_operations_member_types() -> None:
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    shape = client.meta.service_model.operation_model("CreateTable").input_shape
    params = {
        "TableName": "t",
        "ProvisionedThroughput": {"ReadCapacityUnits": "5", "WriteCapacityUnits": "7"},
        "DeletionProtectionEnabled": "False",
        "Tags": [{"Key": "k", "Value": "1"}],
    }
    assert coerce(params, shape) == {
        "TableName": "t",
        "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 7},
        "DeletionProtectionEnabled": False,
        "Tags": [{"Key": "k", "Value": "1"}],
    }

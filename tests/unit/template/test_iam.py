"""Least privilege: each role grants exactly what its code uses, on this stack's resources."""

from __future__ import annotations

import re
from typing import Any

import pytest

from asyncinfer import model_artifacts
from tests.unit.template.support import (
    DLQ_ARN,
    FUNCTION_ACTIONS,
    FUNCTIONS,
    RESOURCELESS_ACTIONS,
    Resolver,
    as_list,
    function_role,
    role_statements,
    statements_in_branches,
)


# ----------------------------------------------------------------------------------------------------------- IAM
@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_function_role_grants_exactly_the_actions_it_uses(resources: dict[str, Any], function: str) -> None:
    cfn = {"Resources": resources}
    role_id = function_role(cfn, function)
    role = resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role, "managed policies grant on '*': list the actions instead"
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    statements = role_statements(cfn, role_id)
    granted = {action for s in statements for action in as_list(s["Action"])}
    assert granted == FUNCTION_ACTIONS[function]
    own_log_group = resources[function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    expected_resource = {
        "logs": {"Fn::GetAtt": [own_log_group, "Arn"]},
        "sqs": DLQ_ARN,
        "dynamodb": {"Fn::GetAtt": ["JobsTable", "Arn"]},
        "events": {"Fn::GetAtt": ["ResultsBus", "Arn"]},
        "sagemaker": {"Ref": "Endpoint"},
        "s3": {"Fn::Sub": "${InputBucket.Arn}/${InputPrefix}*"},
        "xray": "*",
    }
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        for action in as_list(statement["Action"]):
            assert statement["Resource"] == (
                SPECIFIC_RESOURCES.get(action) or expected_resource[action.split(":")[0]]
            ), action


# Actions whose resource is not their service's usual one in a function role.
SPECIFIC_RESOURCES: dict[str, Any] = {
    # ListBucket is a bucket-level action: its resource is the bucket, not objects in it.
    "s3:ListBucket": {"Fn::GetAtt": ["InputBucket", "Arn"]},
    # The submitter writes only its staged copies (CopyObject's destination), never the user's inputs.
    "s3:PutObject": {"Fn::Sub": "${OutputBucket.Arn}/staging/*"},
}


def test_inputs_are_read_by_the_submitter_and_staged_copies_by_the_endpoint(
    raw: dict[str, Any], resources: dict[str, Any]
) -> None:
    """Both sides of the staging place, least privilege: the submitter reads exact input versions and writes only
    under staging/ (CopyObject checks the source read and the destination write); the endpoint reads only staging/,
    nothing of the input bucket; the submitter is told the same place; its objects expire."""
    submitter = Resolver(raw).resolve(resources["SubmitterInputPolicy"]["Properties"]["PolicyDocument"])
    grants = {s["Sid"]: s for s in submitter["Statement"]}
    assert set(grants["ReadInputObjects"]["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}
    assert grants["ReadInputObjects"]["Resource"] == "<InputBucket.Arn>/*"
    assert grants["StageLargeInputs"]["Action"] == "s3:PutObject"
    assert grants["StageLargeInputs"]["Resource"] == "<OutputBucket.Arn>/staging/*"
    endpoint = Resolver(raw).resolve(resources["SageMakerExecutionPolicy"]["Properties"]["PolicyDocument"])
    reads = [s for s in endpoint["Statement"] if "s3:GetObject" in as_list(s["Action"])]
    assert {
        s["Sid"]: s["Resource"]
        for s in reads
        if not s["Sid"].endswith("ModelArtifacts") and s["Sid"] != "ReadCustomModelArtifact"
    } == {"ReadStagedInputs": "<OutputBucket.Arn>/staging/*"}
    assert not [s for s in endpoint["Statement"] if "InputBucket" in str(s["Resource"])], "no grant on the inputs"
    environment = resources["SubmitterFunction"]["Properties"]["Environment"]["Variables"]
    assert Resolver(raw).resolve(environment["STAGING_LOCATION"]) == "s3://<OutputBucket>/staging/"
    rules = {r["Id"]: r for r in resources["OutputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    staged = rules["ExpireStagedInputs"]
    assert staged["Prefix"] == "staging/" and staged["Status"] == "Enabled"
    assert staged["ExpirationInDays"] == 1 and staged["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    # Nothing triggers on the output bucket: a staged copy can never start an inference.
    assert "NotificationConfiguration" not in resources["OutputBucket"]["Properties"]


def test_no_statement_of_the_stack_grants_on_star_what_supports_a_resource(resources: dict[str, Any]) -> None:
    documents: list[dict[str, Any]] = []
    for resource in resources.values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in properties.get("Policies", [])]
            assert "ManagedPolicyArns" not in properties
        if resource["Type"] == "AWS::IAM::Policy":
            documents.append(properties["PolicyDocument"])
    checked = 0
    for document in documents:
        for branch in (b for s in as_list(document["Statement"]) for b in statements_in_branches(s)):
            checked += 1
            actions = as_list(branch["Action"])
            assert not any("*" in action for action in actions), f"wildcard action in {branch}"
            if "*" in as_list(branch["Resource"]):
                assert set(actions) <= RESOURCELESS_ACTIONS, branch
    assert checked > 20


def test_sagemaker_role_is_scoped_to_this_stack(raw: dict[str, Any], resources: dict[str, Any]) -> None:
    role = resources["SageMakerExecutionRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    assert "Policies" not in role, "all permissions in SageMakerExecutionPolicy, which the endpoint waits for"
    policy = resources["SageMakerExecutionPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "SageMakerExecutionRole"}]
    statements = {s["Sid"]: s for s in Resolver(raw).resolve(policy["PolicyDocument"])["Statement"]}
    assert statements["PublishNotifications"]["Action"] == "sns:Publish"
    assert statements["PublishNotifications"]["Resource"] == ["<SuccessTopic>", "<ErrorTopic>"]
    assert statements["ReadStagedInputs"]["Resource"] == "<OutputBucket.Arn>/staging/*"
    assert statements["ListOutputBucket"]["Resource"] == "<OutputBucket.Arn>"
    assert statements["WriteOutputsAndFailures"]["Resource"] == [
        "<OutputBucket.Arn>/output/*",
        "<OutputBucket.Arn>/failure/*",
    ]
    # KMS through SNS only, for the two topics only (SNS's encryption context names the topic). No alias-based
    # condition: kms:ResourceAliases is documented for customer managed keys and would not match alias/aws/sns.
    kms = statements["EncryptNotificationsThroughSns"]
    assert kms["Condition"] == {
        "StringEquals": {
            "kms:ViaService": "sns.us-east-1.amazonaws.com",
            "kms:EncryptionContext:aws:sns:topicArn": ["<SuccessTopic>", "<ErrorTopic>"],
        }
    }
    assert kms["Resource"] == "arn:aws:kms:us-east-1:123456789012:key/*"
    assert statements["PutEndpointMetrics"]["Condition"]["StringEquals"]["cloudwatch:namespace"]
    assert all("my-stack" in r for r in statements["WriteEndpointLogs"]["Resource"]), (
        "only the endpoint's own log group"
    )
    # Default image: SageMaker pulls its built-in image itself; the role gets no ECR permission.
    assert not [s for s in statements.values() if any(a.startswith("ecr:") for a in as_list(s["Action"]))]


def test_model_artifacts_are_readable_across_versions(raw: dict[str, Any], resources: dict[str, Any]) -> None:
    """The role reads every content-addressed artifact of the account's default bucket (so the grant does not change
    between model versions, and an update's rollback can read the previous one), and a custom URL exactly."""

    def artifact_statements(resolver: Resolver) -> dict[str, dict[str, Any]]:
        document = resolver.resolve(resources["SageMakerExecutionPolicy"]["Properties"]["PolicyDocument"])
        return {s["Sid"]: s for s in document["Statement"] if "ModelArtifact" in s["Sid"]}

    default = Resolver(raw, region="eu-west-1")
    assert default.resolve(resources["Model"]["Properties"]["PrimaryContainer"]["ModelDataUrl"]) == (
        "s3://sagemaker-eu-west-1-123456789012/async-inference-pipeline/model.tar.gz"
    )
    statements = artifact_statements(default)
    assert set(statements) == {"ReadModelArtifacts"}
    statement = statements["ReadModelArtifacts"]
    assert statement["Action"] == "s3:GetObject"
    prefix = "arn:aws:s3:::sagemaker-eu-west-1-123456789012/async-inference-pipeline/"
    assert statement["Resource"] == prefix + "*"
    # The default bucket's name is predictable: it must belong to this account.
    assert statement["Condition"] == {"StringEquals": {"s3:ResourceAccount": "123456789012"}}

    custom = Resolver(raw, ModelDataUrl="s3://models-bucket/xgb/v3/model.tar.gz")
    assert custom.resolve(resources["Model"]["Properties"]["PrimaryContainer"]["ModelDataUrl"]) == (
        "s3://models-bucket/xgb/v3/model.tar.gz"
    )
    statements = artifact_statements(custom)
    assert statements["ReadCustomModelArtifact"]["Resource"] == "arn:aws:s3:::models-bucket/xgb/v3/model.tar.gz"
    # Only from a bucket of this account unless ModelBucketAccount names another: a bucket name can be taken.
    assert statements["ReadCustomModelArtifact"]["Condition"] == {
        "StringEquals": {"s3:ResourceAccount": "123456789012"}
    }
    other = Resolver(raw, ModelDataUrl="s3://models-bucket/m.tar.gz", ModelBucketAccount="111122223333")
    condition = artifact_statements(other)["ReadCustomModelArtifact"]["Condition"]
    assert condition == {"StringEquals": {"s3:ResourceAccount": "111122223333"}}
    # What asyncinfer deploy uploads lies under the constant grant, whatever the version.
    assert model_artifacts.PREFIX.startswith("async-inference-pipeline/")


@pytest.mark.parametrize(
    ("image", "repository_arns"),
    [
        (
            "111122223333.dkr.ecr.eu-west-1.amazonaws.com/my-model:1.0",
            [
                "arn:aws:ecr:eu-west-1:111122223333:repository/my-model",
                "arn:aws:ecr:eu-west-1:111122223333:repository/my-model/*",
            ],
        ),
        (
            "111122223333.dkr.ecr.us-west-2.amazonaws.com/team/model@sha256:" + "a" * 64,
            [
                "arn:aws:ecr:us-west-2:111122223333:repository/team",
                "arn:aws:ecr:us-west-2:111122223333:repository/team/*",
            ],
        ),
    ],
)
def test_custom_image_pull_is_scoped_to_its_repository(
    raw: dict[str, Any], resources: dict[str, Any], image: str, repository_arns: list[str]
) -> None:
    resolver = Resolver(raw, ContainerImage=image)
    assert resolver.resolve(resources["Model"]["Properties"]["PrimaryContainer"]["Image"]) == image
    document = resolver.resolve(resources["SageMakerExecutionPolicy"]["Properties"]["PolicyDocument"])
    statements = {s["Sid"]: s for s in document["Statement"]}
    pull = statements["PullCustomContainerImage"]
    assert set(pull["Action"]) == {"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}
    assert pull["Resource"] == repository_arns
    assert statements["EcrAuthorizationForCustomImage"]["Action"] == "ecr:GetAuthorizationToken"


def test_parameter_patterns(raw: dict[str, Any]) -> None:
    def accepts(parameter: str, value: str) -> bool:
        return re.fullmatch(raw["Parameters"][parameter]["AllowedPattern"], value) is not None

    assert accepts("ContainerImage", "")
    assert accepts("ContainerImage", "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
    assert accepts("ContainerImage", "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1")
    assert not accepts("ContainerImage", "nginx:latest")
    assert not accepts("ContainerImage", "683313688378.dkr.ecr.us-east-1.amazonaws.com/no-tag")
    assert accepts("ModelDataUrl", "")
    assert accepts("ModelDataUrl", "s3://my-bucket/models/model.tar.gz")
    assert not accepts("ModelDataUrl", "https://my-bucket.s3.amazonaws.com/model.tar.gz")
    assert not accepts("ModelDataUrl", "s3://my-bucket")

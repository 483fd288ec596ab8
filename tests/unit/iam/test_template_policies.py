"""The template's IAM as the local stack enforces it: roles with their inline and attached policies, resource
policies (bucket, queue, the Lambda permissions SAM generates), and the least-privilege report made from decisions."""

from __future__ import annotations

import pytest

from asyncinfer.local.iam.checks import Check
from asyncinfer.local.iam.decisions import SeenCheck, least_privilege
from asyncinfer.local.iam.evaluation import Principal, evaluate
from asyncinfer.local.iam.template_policies import IamSetup, iam_setup
from asyncinfer.local.physical_ids import ACCOUNT
from asyncinfer.local.provision import resolve_stack
from asyncinfer.local.template import load_sam, parameter_values
from tests.samples import TEMPLATE

STACK = "asyncinfer-local"


@pytest.fixture(scope="module")
def setup() -> IamSetup:
    sam = load_sam(TEMPLATE)
    resolver, resources, enabled = resolve_stack(sam, parameter_values(sam, {}), STACK, "us-east-1")
    for logical in enabled:  # queue URLs are known once the queues exist; provisioning records them like this
        if resources[logical]["Type"] == "AWS::SQS::Queue":
            resolver.refs[logical] = f"http://127.0.0.1:1/{ACCOUNT}/{STACK}-{logical}"
    return IamSetup.from_json(iam_setup(resolver, resources, enabled, ACCOUNT, "us-east-1").to_json())


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{STACK}-{name}"


def test_each_function_has_its_own_role_and_the_endpoint_its_execution_role(setup: IamSetup) -> None:
    assert setup.function_roles == {
        "SubmitterFunction": role("SubmitterFunctionRole"),
        "SuccessHandlerFunction": role("SuccessHandlerFunctionRole"),
        "ErrorHandlerFunction": role("ErrorHandlerFunctionRole"),
    }
    assert setup.execution_roles == {STACK: role("SageMakerExecutionRole")}
    # The submitter's separate AWS::IAM::Policy is attached to its role, as CloudFormation attaches it.
    assert sorted(setup.roles[role("SubmitterFunctionRole")].policies) == [
        "SubmitterFunctionRole/submitter",
        "SubmitterInputPolicy/submitter-input-and-endpoint",
    ]


def test_lambda_permissions_admit_only_their_service_from_their_source(setup: IamSetup) -> None:
    documents = {spec.name: (spec, policy) for spec, policy in setup.resource_policy_documents()}
    spec, permission = documents["SuccessHandlerFunctionSuccessNotificationPermission"]
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{STACK}-SuccessHandlerFunction"
    assert spec.resources == [function]
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:{STACK}-SuccessTopic"
    sns = Principal.service("sns.amazonaws.com", ACCOUNT)
    invoke = Check("lambda:InvokeFunction", function, {"aws:SourceArn": topic, "aws:SourceAccount": ACCOUNT})
    assert evaluate(sns, invoke, [], permission, "us-east-1").allowed
    other = Check("lambda:InvokeFunction", function, {"aws:SourceArn": topic.replace("Success", "Error")})
    assert not evaluate(sns, other, [], permission, "us-east-1").allowed
    s3_spec, s3_permission = documents["SubmitterFunctionInputObjectCreatedPermission"]
    from_s3 = Check("lambda:InvokeFunction", s3_spec.resources[0], {"aws:SourceAccount": ACCOUNT})
    assert evaluate(Principal.service("s3.amazonaws.com", ACCOUNT), from_s3, [], s3_permission, "us-east-1").allowed
    assert not evaluate(Principal.service("s3.amazonaws.com", "999999999999"), Check(
        "lambda:InvokeFunction", s3_spec.resources[0], {"aws:SourceAccount": "999999999999"}
    ), [], s3_permission, "us-east-1").allowed  # fmt: skip


def test_a_bucket_policy_governs_the_bucket_and_its_objects(setup: IamSetup) -> None:
    bucket = f"arn:aws:s3:::{STACK}-inputbucket"
    (spec,) = [s for s in setup.resource_policies if s.name == "InputBucketPolicy"]
    assert spec.resources == [bucket, f"{bucket}/*"]
    (queue,) = [s for s in setup.resource_policies if s.name == "ResultsQueuePolicy"]
    assert queue.resources == [f"arn:aws:sqs:us-east-1:{ACCOUNT}:{STACK}-ResultsQueue"]


def test_the_report_lists_each_unused_action_with_its_explanation(setup: IamSetup) -> None:
    submitter = role("SubmitterFunctionRole")
    principal = Principal.role_session(ACCOUNT, f"{STACK}-SubmitterFunctionRole", "fn")
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{STACK}-JobsTable"
    policies = setup.identity_policies(submitter)
    decision = evaluate(principal, Check("dynamodb:PutItem", table), policies, None, "us-east-1")
    assert decision.allowed
    seen = SeenCheck(principal, decision.check, "dynamodb:PutItem", True, ("x",), tuple(
        (str(ref), action) for ref, action in decision.matched_actions.items()
    ), 3)  # fmt: skip
    (report,) = least_privilege([seen], {principal.label: policies}, {"SubmitterFunctionRole/submitter#Tracing": "no"})
    assert report.used == [
        {"action": "dynamodb:PutItem", "statement": "x", "requests": 3, "resources": 1, "example": table}
    ]
    jobs = next(g for g in report.grants if g.statement == "SubmitterFunctionRole/submitter#Jobs")
    assert jobs.used_actions == ["dynamodb:PutItem"]
    assert jobs.unused_actions == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert jobs.explanation is None and jobs in report.unexplained
    tracing = next(g for g in report.grants if g.statement.endswith("#Tracing"))
    assert tracing.explanation == "no" and tracing not in report.unexplained

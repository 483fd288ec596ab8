"""Checks decided against identity and resource policies as IAM decides them within one account."""

from __future__ import annotations

import pytest

from asyncinfer.local.iam.checks import Check
from asyncinfer.local.iam.evaluation import Principal, evaluate
from asyncinfer.local.iam.policies import Policy, PolicyError, StatementRef, parse_policy, without_action

ACCOUNT = "123456789012"
ROLE = Principal.role_session(ACCOUNT, "stack-SubmitterFunctionRole-X", "stack-SubmitterFunction-Y")
SNS = Principal.service("sns.amazonaws.com", ACCOUNT)
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:success"

IDENTITY = parse_policy(
    "SubmitterFunctionRole/submitter",
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadInputObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": "arn:aws:s3:::in/uploads/*",
            },
            {
                "Sid": "Tables",
                "Effect": "Allow",
                "Action": "dynamodb:*Item",
                "Resource": "arn:aws:dynamodb:*:*:table/t",
            },
            {"Sid": "NoDeletes", "Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"},
        ],
    },
)
QUEUE_POLICY = parse_policy(
    "DeadLetterQueuePolicy",
    {
        "Statement": [
            {
                "Sid": "AllowSnsRedrive",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": QUEUE,
                "Condition": {"ArnEquals": {"aws:SourceArn": [TOPIC]}},
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": QUEUE,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ]
    },
    resource_policy=True,
)


def test_an_identity_policy_allows_what_it_names_and_says_which_statement() -> None:
    decision = evaluate(ROLE, Check("s3:GetObjectVersion", "arn:aws:s3:::in/uploads/a.csv"), [IDENTITY], None, "r")
    assert decision.allowed
    assert [str(ref) for ref in decision.deciding] == ["SubmitterFunctionRole/submitter#ReadInputObjects"]
    assert decision.matched_actions[decision.deciding[0]] == "s3:GetObjectVersion"


@pytest.mark.parametrize(
    "check",
    [
        Check("s3:GetObject", "arn:aws:s3:::in/other/a.csv"),  # outside the prefix
        Check("s3:GetObject", "arn:aws:s3:::in-other/uploads/a.csv"),  # another bucket
        Check("s3:PutObject", "arn:aws:s3:::in/uploads/a.csv"),  # another action
        Check("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/t2"),
    ],
)
def test_nothing_else_is_allowed(check: Check) -> None:
    decision = evaluate(ROLE, check, [IDENTITY], None, "r")
    assert not decision.allowed and not decision.explicit
    assert decision.message(ROLE) == (
        f"User: {ROLE.arn} is not authorized to perform: {check.action} on resource: {check.resource} "
        f"because no identity-based policy allows the {check.action} action"
    )


def test_actions_match_case_insensitively_with_wildcards_and_an_explicit_deny_wins() -> None:
    table = "arn:aws:dynamodb:us-east-1:1:table/t"
    assert evaluate(ROLE, Check("dynamodb:updateitem", table), [IDENTITY], None, "r").allowed
    denied = evaluate(ROLE, Check("dynamodb:DeleteItem", table), [IDENTITY], None, "r")
    assert not denied.allowed and denied.explicit
    assert denied.deciding == (StatementRef("SubmitterFunctionRole/submitter", 2, "NoDeletes"),)
    assert denied.message(ROLE).endswith("with an explicit deny in an identity-based policy")


def test_a_service_is_allowed_by_the_resource_policy_only_from_the_named_source() -> None:
    send = Check("sqs:SendMessage", QUEUE, {"aws:SourceArn": TOPIC})
    assert evaluate(SNS, send, [], QUEUE_POLICY, "r").allowed
    other = Check("sqs:SendMessage", QUEUE, {"aws:SourceArn": TOPIC + "-other"})
    refused = evaluate(SNS, other, [], QUEUE_POLICY, "r")
    assert not refused.allowed
    assert "because no resource-based policy allows" in refused.message(SNS)
    # events.amazonaws.com is not the principal the statement names
    assert not evaluate(Principal.service("events.amazonaws.com", ACCOUNT), send, [], QUEUE_POLICY, "r").allowed


def test_the_tls_only_deny_holds_because_local_requests_stand_for_https() -> None:
    # The Deny is evaluated (its condition is false), so it does not refuse the role's own allowed send.
    role_policy = parse_policy(
        "R/p", {"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE}]}
    )
    assert evaluate(ROLE, Check("sqs:SendMessage", QUEUE), [role_policy], QUEUE_POLICY, "r").allowed
    insecure = Check("sqs:SendMessage", QUEUE, {"aws:SecureTransport": "false"})
    denied = evaluate(ROLE, insecure, [role_policy], QUEUE_POLICY, "r")
    assert denied.explicit and denied.in_resource_policy
    assert denied.message(ROLE).endswith("with an explicit deny in a resource-based policy")


def test_a_resource_policy_naming_the_role_allows_but_one_naming_the_account_only_delegates() -> None:
    def bucket_policy(principal: str) -> Policy:
        statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "s3:GetObject", "Resource": "*"}
        return parse_policy("BucketPolicy", {"Statement": [statement]}, resource_policy=True)

    get = Check("s3:GetObject", "arn:aws:s3:::b/k")
    assert ROLE.role_arn is not None
    assert evaluate(ROLE, get, [], bucket_policy(ROLE.role_arn), "r").allowed
    assert not evaluate(ROLE, get, [], bucket_policy(f"arn:aws:iam::{ACCOUNT}:root"), "r").allowed


def test_not_action_and_not_resource() -> None:
    policy = parse_policy(
        "R/p",
        {
            "Statement": [
                {"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::b/public/*"},
            ]
        },
    )
    assert evaluate(ROLE, Check("s3:GetObject", "arn:aws:s3:::b/public/x"), [policy], None, "r").allowed
    assert not evaluate(ROLE, Check("s3:DeleteObject", "arn:aws:s3:::b/public/x"), [policy], None, "r").allowed
    private = evaluate(ROLE, Check("s3:GetObject", "arn:aws:s3:::b/private/x"), [policy], None, "r")
    assert private.explicit  # moto lets a Deny with NotResource allow everything


def test_an_unknown_condition_key_fails_closed_both_ways() -> None:
    block = {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}}
    allow = parse_policy(
        "R/a", {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": block}]}
    )
    deny = parse_policy("R/d", {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": block}]})
    plain = parse_policy("R/p", {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    check = Check("kms:Decrypt", "arn:aws:kms:r:1:key/k")
    refused = evaluate(ROLE, check, [allow], None, "r")
    assert not refused.allowed and refused.unknown_keys == ("kms:viaservice",)
    assert evaluate(ROLE, check, [deny, plain], None, "r").explicit


def test_removing_one_action_narrows_the_statement() -> None:
    ref = StatementRef("SubmitterFunctionRole/submitter", 0, "ReadInputObjects")
    narrowed = without_action(IDENTITY, ref, "s3:GetObjectVersion")
    resource = "arn:aws:s3:::in/uploads/a"
    assert evaluate(ROLE, Check("s3:GetObject", resource), [narrowed], None, "r").allowed
    assert not evaluate(ROLE, Check("s3:GetObjectVersion", resource), [narrowed], None, "r").allowed


@pytest.mark.parametrize(
    "document",
    [
        {"Statement": [{"Effect": "Permit", "Action": "*", "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEqual": {"a": "b"}}}]},
        {"Statement": []},
    ],
)
def test_documents_iam_would_refuse_are_refused(document: dict[str, object]) -> None:
    with pytest.raises(PolicyError):
        parse_policy("R/p", document)


def test_aws_resource_account_is_the_resources_account() -> None:
    perimeter = parse_policy(
        "R/perimeter",
        {
            "Statement": [
                {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"},
                {
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"StringNotEquals": {"aws:ResourceAccount": ACCOUNT}},
                },
            ]
        },
    )
    assert evaluate(ROLE, Check("sqs:SendMessage", QUEUE), [perimeter], None, "r").allowed
    elsewhere = Check("sqs:SendMessage", QUEUE.replace(ACCOUNT, "999999999999"))
    assert evaluate(ROLE, elsewhere, [perimeter], None, "r").explicit
    # S3 ARNs name no account: the bucket owner's (s3:ResourceAccount) is the resource's account
    s3 = Check("sqs:SendMessage", "arn:aws:s3:::b/k", {"s3:ResourceAccount": "999999999999"})
    assert evaluate(ROLE, s3, [perimeter], None, "r").explicit


def test_not_principal_exempts_a_session_only_when_it_is_named() -> None:
    def deny_all_but(*names: str) -> Policy:
        statement = {"Effect": "Deny", "NotPrincipal": {"AWS": list(names)}, "Action": "s3:*", "Resource": "*"}
        return parse_policy("BucketPolicy", {"Statement": [statement]}, resource_policy=True)

    allow = parse_policy("R/p", {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    get = Check("s3:GetObject", "arn:aws:s3:::b/k")
    assert ROLE.role_arn is not None
    assert evaluate(ROLE, get, [allow], deny_all_but(ROLE.arn, ROLE.role_arn), "r").allowed
    assert evaluate(ROLE, get, [allow], deny_all_but(ROLE.role_arn), "r").explicit
    assert evaluate(ROLE, get, [allow], deny_all_but(ACCOUNT), "r").explicit

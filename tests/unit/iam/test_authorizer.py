"""The authorizer in moto's process: who signed, what AWS checks, the decision, the answer; its modes and its log."""

from __future__ import annotations

from dataclasses import replace

import pytest

from asyncinfer.local.iam.authorizer import Authorizer, Mode
from asyncinfer.local.iam.checks import HttpRequest
from asyncinfer.local.iam.decisions import DecisionLog
from asyncinfer.local.iam.identities import RoleCredentials
from asyncinfer.local.iam.template_policies import IamSetup, ResourcePolicySpec, RoleSpec
from tests.unit.iam.captured import ACCOUNT, REGION, sent

ROLE = f"arn:aws:iam::{ACCOUNT}:role/writer"
CREDENTIALS = RoleCredentials(ROLE, "fn", "ASIAEXAMPLEKEY", "secret", "TOKEN")


def setup() -> IamSetup:
    allow = {
        "Statement": [{"Sid": "Write", "Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}]
    }
    deny = {
        "Statement": [
            {"Sid": "NoPrivate", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
             "Resource": "arn:aws:s3:::b/private/*"}
        ]
    }  # fmt: skip
    return IamSetup(
        account=ACCOUNT,
        region=REGION,
        roles={ROLE: RoleSpec("Writer", ROLE, {"Writer/p": allow})},
        resource_policies=[ResourcePolicySpec("BucketPolicy", ["arn:aws:s3:::b", "arn:aws:s3:::b/*"], deny)],
    )


def authorizer(mode: Mode = "enforce") -> Authorizer:
    return Authorizer(setup(), [CREDENTIALS], mode, DecisionLog())


def put(key: str, access_key: str = "ASIAEXAMPLEKEY", token: str | None = "TOKEN") -> HttpRequest:
    request = sent("s3", "put_object", token=token, Bucket="b", Key=key, Body=b"x")
    auth = request.headers["authorization"].replace("Credential=ASIAEXAMPLEKEY/", f"Credential={access_key}/")
    return replace(request, headers={**request.headers, "authorization": auth})


def status(verdict_request: HttpRequest, auth: Authorizer) -> int | None:
    verdict = auth.authorize_http(verdict_request)
    return None if verdict.denial is None else verdict.denial[0]


def test_a_role_may_do_what_its_policy_allows_and_a_bucket_policy_does_not_deny() -> None:
    auth = authorizer()
    assert status(put("k"), auth) is None
    assert status(put("private/k"), auth) == 403
    (seen_allowed, seen_denied) = sorted(auth.log.seen(), key=lambda s: s.allowed, reverse=True)
    assert seen_allowed.deciding == ("Writer/p#Write",)
    assert seen_denied.deciding == ("BucketPolicy#NoPrivate",)


def test_the_admin_is_refused_only_by_a_resource_policys_explicit_deny() -> None:
    auth = authorizer()
    assert status(put("k", access_key="local"), auth) is None
    assert status(put("private/k", access_key="local"), auth) == 403
    assert auth.log.seen() == []  # the report is about the template's roles


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (put("k", token="WRONG"), 400),  # InvalidToken
        (put("k", access_key="ASIASTRANGER"), 403),  # InvalidAccessKeyId
        (replace(put("k"), headers={}), 403),  # unsigned: anonymous
        (replace(put("k"), path="/moto-api/reset"), 403),  # moto's own API is not AWS's
    ],
)
def test_requests_that_are_not_the_roles_are_refused(request_: HttpRequest, code: int) -> None:
    assert status(request_, authorizer()) == code


def test_audit_decides_and_logs_but_refuses_nothing_and_off_does_neither() -> None:
    audit = authorizer("audit")
    assert status(put("private/k"), audit) is None
    assert [s.allowed for s in audit.log.seen()] == [False]
    off = authorizer("off")
    assert status(put("private/k"), off) is None
    assert off.log.seen() == []


def test_a_request_signed_for_another_service_is_refused_where_a_service_is_required() -> None:
    verdict = authorizer().authorize_http(put("k"), expected_service="sagemaker")
    assert verdict.denial is not None and b"scoped to correct service" in verdict.denial[2]

"""One check decided as IAM decides it within one account: an explicit Deny anywhere wins; otherwise an Allow in an
identity policy of the caller, or in the resource's policy for a principal it names, allows; otherwise the request
is implicitly denied. (No permissions boundaries, session policies or SCPs: the template has none; the README says
what is not enforced.)

A resource policy naming an account (``"AWS": "123456789012"`` or ``…:root``) delegates to that account's identity
policies: it never allows by itself, but its Deny statements apply to every principal of the account.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from asyncinfer.local.iam.checks import Check, ContextValue
from asyncinfer.local.iam.conditions import UNKNOWN, Outcome, evaluate_conditions
from asyncinfer.local.iam.policies import Policy, Principals, Statement, StatementRef

PrincipalKind = Literal["role", "service"]


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a role's session (a function, the SageMaker execution role) or an AWS service."""

    kind: PrincipalKind
    arn: str  # the session ARN (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION), or the service ("sns.amazonaws.com")
    account: str
    role_arn: str | None = None  # arn:aws:iam::ACCOUNT:role/ROLE, for role sessions

    @classmethod
    def role_session(cls, account: str, role_name: str, session: str) -> Principal:
        return cls(
            "role",
            f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}",
            account,
            f"arn:aws:iam::{account}:role/{role_name}",
        )

    @classmethod
    def service(cls, service: str, account: str) -> Principal:
        return cls("service", service, account)

    @property
    def label(self) -> str:
        """How reports name it: the role's name, or the service."""
        return self.role_arn.rsplit("/", 1)[-1] if self.role_arn else self.arn


@dataclass(frozen=True)
class Decision:
    allowed: bool
    check: Check
    deciding: tuple[StatementRef, ...] = ()  # the Deny that denied, or every Allow that matched
    explicit: bool = False  # denied by a Deny statement
    in_resource_policy: bool = False  # the deciding Deny is in the resource's policy
    unknown_keys: tuple[str, ...] = ()  # condition keys that could not be decided (fail closed)
    matched_actions: Mapping[StatementRef, str] = field(default_factory=dict)  # Allow → the action pattern used

    def message(self, principal: Principal) -> str:
        """The denial as AWS words it."""
        action, resource = self.check.action, self.check.resource
        head = f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource}"
        if self.explicit:
            where = "a resource-based policy" if self.in_resource_policy else "an identity-based policy"
            return f"{head} with an explicit deny in {where}"
        if principal.kind == "service":
            return f"{head} because no resource-based policy allows the {action} action"
        return f"{head} because no identity-based policy allows the {action} action"


def request_context(
    principal: Principal, check: Check, region: str, now: float | None = None
) -> dict[str, ContextValue]:
    """The check's context keys (lower-cased) with the global keys AWS adds for this principal."""
    moment = time.time() if now is None else now
    context: dict[str, ContextValue] = {
        # The local endpoints are plain HTTP on loopback; they stand for AWS's HTTPS endpoints, which boto3 always
        # uses (docs/iam.md): a DenyInsecureTransport statement is evaluated, and holds, as on AWS.
        "aws:securetransport": "true",
        "aws:currenttime": datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:epochtime": str(int(moment)),
        "aws:requestedregion": region,
        "aws:principalisawsservice": "true" if principal.kind == "service" else "false",
    }
    owner = resource_account(check, principal.account)
    if owner:
        context["aws:resourceaccount"] = owner
    if principal.kind == "role":
        assert principal.role_arn is not None
        session = principal.arn.rsplit("/", 1)[-1]
        context.update(
            {
                "aws:principalarn": principal.role_arn,
                "aws:principalaccount": principal.account,
                "aws:principaltype": "AssumedRole",
                "aws:userid": f"{principal.label}:{session}",
            }
        )
    else:
        context["aws:principalservicename"] = principal.arn
    for key, value in check.context.items():
        context[key.lower()] = value
    return context


def resource_account(check: Check, default: str) -> str | None:
    """The account that owns the resource: the ARN's, or (S3, whose ARNs name none) s3:ResourceAccount's."""
    if check.resource == "*":
        return None
    parts = check.resource.split(":", 5)
    if len(parts) == 6 and parts[4]:
        return parts[4]
    owner = check.context.get("s3:ResourceAccount", default)
    return owner if isinstance(owner, str) else default


def _principal_matches(principals: Principals, principal: Principal, delegating_ok: bool) -> bool:
    for kind, ids in principals.items():
        if kind == "*" or (kind == "AWS" and "*" in ids):
            return True
        if kind == "Service" and principal.kind == "service" and principal.arn in ids:
            return True
        if kind == "AWS" and principal.kind == "role":
            if any(i in (principal.role_arn, principal.arn) for i in ids):
                return True
            if delegating_ok and any(i in (principal.account, f"arn:aws:iam::{principal.account}:root") for i in ids):
                return True
    return False


def _exactly_named(principals: Principals, principal: Principal) -> bool:
    """Whether a NotPrincipal exempts ``principal``: a role's session only when its session ARN is listed (naming
    the role or the account does not exempt its sessions: the stricter reading of the IAM guide's NotPrincipal)."""
    for kind, ids in principals.items():
        if kind == "*":
            return True
        if kind == "Service" and principal.kind == "service" and principal.arn in ids:
            return True
        if kind == "AWS" and principal.arn in ids:
            return True
    return False


def _applies_to(statement: Statement, principal: Principal, allow: bool) -> bool:
    """Whether a resource-policy statement names ``principal`` (an account principal only counts for a Deny)."""
    if statement.principals is not None:
        return _principal_matches(statement.principals, principal, delegating_ok=not allow)
    if statement.not_principals is not None:
        return not _exactly_named(statement.not_principals, principal)
    return False


def evaluate(
    principal: Principal,
    check: Check,
    identity_policies: Sequence[Policy],
    resource_policy: Policy | None,
    region: str,
    now: float | None = None,
) -> Decision:
    context = request_context(principal, check, region, now)
    candidates: list[tuple[Statement, bool]] = [(s, False) for p in identity_policies for s in p.statements]
    if resource_policy is not None:
        candidates += [(s, True) for s in resource_policy.statements]
    allows: dict[StatementRef, str] = {}
    unknown: list[str] = []
    for statement, in_resource in candidates:
        pattern = statement.matching_action(check.action)
        if pattern is None or not statement.covers_resource(check.resource):
            continue
        is_allow = statement.effect == "Allow"
        if in_resource and not _applies_to(statement, principal, is_allow):
            continue
        outcome, keys = evaluate_conditions(statement.conditions, context, check.action.split(":", 1)[0].lower())
        unknown += keys
        if not is_allow and outcome in (Outcome.TRUE, UNKNOWN):
            return Decision(
                False,
                check,
                (statement.ref,),
                explicit=True,
                in_resource_policy=in_resource,
                unknown_keys=tuple(keys),
            )
        if is_allow and outcome is Outcome.TRUE:
            allows[statement.ref] = pattern
    if allows:
        return Decision(True, check, tuple(allows), unknown_keys=tuple(unknown), matched_actions=allows)
    return Decision(False, check, unknown_keys=tuple(unknown))

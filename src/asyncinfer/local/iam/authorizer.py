"""The local stack's IAM, in moto's process: who signed a request, what AWS would check for it, and the decision.

``enforce`` (the default) answers a denied request with the protocol's own error, as AWS does; ``audit`` decides and
logs but lets every request through; ``off`` neither decides nor logs. The admin identity is never evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from asyncinfer.http_serving import Response
from asyncinfer.local.iam import denials
from asyncinfer.local.iam.checks import Caller, Check, HttpRequest, MappedRequest, UnmappedRequest
from asyncinfer.local.iam.decisions import DecisionLog, RoleReport, least_privilege
from asyncinfer.local.iam.evaluation import Decision, Principal, evaluate
from asyncinfer.local.iam.grant_notes import EXPLANATIONS
from asyncinfer.local.iam.identities import ADMIN_ACCESS_KEYS, RoleCredentials
from asyncinfer.local.iam.policies import Policy
from asyncinfer.local.iam.requests import caller_of, map_request
from asyncinfer.local.iam.template_policies import IamSetup, ResourcePolicySpec
from asyncinfer.local.iam.wildcards import arn_matches

Mode = Literal["enforce", "audit", "off"]
MODES: tuple[Mode, ...] = ("enforce", "audit", "off")


@dataclass(frozen=True)
class Verdict:
    """What the server does with a request: answer ``denial`` instead of serving it, or serve it; if it is an S3
    read of an object that turns out to be missing, ask ``when_missing`` (S3 answers 403, not 404, to a caller
    without s3:ListBucket on the bucket)."""

    denial: Response | None = None
    when_missing: Callable[[], Response | None] | None = None


ALLOW = Verdict()


def resource_policy_for(policies: Sequence[tuple[ResourcePolicySpec, Policy]], resource: str) -> Policy | None:
    """The policy (or policies, merged) of the resource: a bucket's governs its objects too."""
    found = [policy for spec, policy in policies if any(arn_matches(r, resource) for r in spec.resources)]
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    return Policy("+".join(p.name for p in found), tuple(s for p in found for s in p.statements))


def _owned(check: Check, bucket_accounts: Mapping[str, str]) -> Check:
    """The check with its bucket's owner as s3:ResourceAccount, where the local stack stands in for another account."""
    if not bucket_accounts or not check.resource.startswith("arn:aws:s3:::"):
        return check
    bucket = check.resource[len("arn:aws:s3:::") :].split("/", 1)[0]
    owner = bucket_accounts.get(bucket)
    if owner is None or "s3:ResourceAccount" not in check.context:
        return check
    return Check(check.action, check.resource, {**check.context, "s3:ResourceAccount": owner})


@dataclass(frozen=True)
class _Identity:
    principal: Principal
    session_token: str
    policies: tuple[Policy, ...]


@dataclass(frozen=True)
class _Policies:
    """Everything a decision reads, swapped as one (a stack update replaces it while requests are decided)."""

    setup: IamSetup
    identities: dict[str, _Identity]
    resource_policies: list[tuple[ResourcePolicySpec, Policy]]


# Paths of moto's own that no AWS API has: its admin API (reset, state) and the instance metadata it emulates.
_NOT_AWS = ("/moto-api", "/latest/")
_ADMIN_POLICY = Policy("local admin", ())  # allows everything; only a resource policy's Deny can refuse it


class Authorizer:
    def __init__(self, setup: IamSetup, credentials: Iterable[RoleCredentials], mode: Mode, log: DecisionLog) -> None:
        self.mode, self.log = mode, log
        self._credentials = list(credentials)
        self.replace_policies(setup)

    def replace_policies(self, setup: IamSetup) -> None:
        """Decide from now on with ``setup``'s policies (a stack update changed them), same identities and log."""
        identities = {
            c.access_key_id: _Identity(
                Principal.role_session(setup.account, c.role_name, c.session_name),
                c.session_token,
                tuple(setup.identity_policies(c.role_arn)),
            )
            for c in self._credentials
        }
        self._policies = _Policies(setup, identities, setup.resource_policy_documents())

    @property
    def setup(self) -> IamSetup:
        return self._policies.setup

    # --- requests signed by a caller --------------------------------------------------------------------------

    def authorize_http(self, request: HttpRequest, expected_service: str | None = None) -> Verdict:
        """The verdict on a request; ``expected_service``: the signing name the server answering it requires (the
        endpoint emulator is sagemaker-runtime's, whose signing name is ``sagemaker``)."""
        if self.mode == "off":
            return ALLOW
        policies = self._policies
        caller = caller_of(request)
        if caller is not None and caller.access_key in ADMIN_ACCESS_KEYS:
            self.log.record_admin()
            return self._admin_verdict(request, caller, policies)
        if request.path.startswith(_NOT_AWS):
            message = f"{request.path} is the local stack's own API, not AWS's: only the admin identity may call it"
            return self._refuse(request, caller.service if caller is not None else "s3", message)
        if caller is None:  # unsigned: anonymous, which nothing in the template allows
            return self._refuse(request, "s3", "Anonymous users are not authorized to perform this request")
        service = caller.service
        identity = policies.identities.get(caller.access_key)
        if identity is None or caller.session_token != identity.session_token:
            if not self._enforced:
                return ALLOW
            bad_token = identity is not None
            return Verdict(denial=denials.invalid_credentials(request, service, bad_token=bad_token))
        if expected_service is not None and service != expected_service:
            return self._refuse(
                request, service, f"Credential should be scoped to correct service: '{expected_service}'."
            )
        principal = identity.principal
        try:
            mapped = map_request(request, caller, policies.setup.account)
            if not mapped.checks and not (service == "sts" and request.path in ("", "/")):
                raise UnmappedRequest(f"{mapped.operation} at {request.path} needs no permission only as STS's")
        except UnmappedRequest as exc:
            self.log.record_unmapped(principal, f"{service}:?", str(exc))
            message = f"User: {principal.arn} is not authorized to perform this request ({exc}; denied locally)"
            return self._refuse(request, service, message)
        decisions = self.decide(principal, mapped, identity.policies, policies)
        refused = next((d for d in decisions if not d.allowed), None)
        if refused is not None and self._enforced:
            return Verdict(denial=denials.access_denied(request, service, refused.message(principal)))
        return Verdict(when_missing=self._missing_object(request, principal, identity.policies, mapped, service))

    def _refuse(self, request: HttpRequest, service: str, message: str) -> Verdict:
        return Verdict(denial=denials.access_denied(request, service, message)) if self._enforced else ALLOW

    def _admin_verdict(self, request: HttpRequest, caller: Caller, policies: _Policies) -> Verdict:
        """The admin may do anything an explicit Deny of the resource's policy does not refuse (not logged: the
        report is about the template's roles)."""
        if not self._enforced:
            return ALLOW
        try:
            mapped = map_request(request, caller, policies.setup.account)
        except UnmappedRequest:
            return ALLOW
        admin = Principal.role_session(policies.setup.account, "local-admin", "local")
        for check in mapped.checks:
            resource = resource_policy_for(policies.resource_policies, check.resource)
            if resource is None:
                continue
            decision = evaluate(admin, check, [_ADMIN_POLICY], resource, policies.setup.region)
            if decision.explicit:
                return Verdict(denial=denials.access_denied(request, caller.service, decision.message(admin)))
        return ALLOW

    def may_control(self, request: HttpRequest) -> bool:
        """Whether a call to the local stack's private paths may go on: not with a role's credentials."""
        caller = caller_of(request)
        return caller is None or caller.access_key in ADMIN_ACCESS_KEYS or self.mode == "off"

    @property
    def _enforced(self) -> bool:
        return self.mode == "enforce"

    def _missing_object(
        self,
        request: HttpRequest,
        principal: Principal,
        policies: Sequence[Policy],
        mapped: MappedRequest,
        service: str,
    ) -> Callable[[], Response | None] | None:
        reads = [c for c in mapped.checks if c.action in ("s3:GetObject", "s3:GetObjectVersion")]
        if service != "s3" or not reads or len(mapped.checks) != 1:
            return None
        bucket = reads[0].resource.split("/", 1)[0]

        def answer() -> Response | None:
            account = {k: v for k, v in reads[0].context.items() if k == "s3:ResourceAccount"}
            check = Check("s3:ListBucket", bucket, account)
            (decision,) = self.decide(principal, MappedRequest("s3:ListBucket (missing object)", (check,)), policies)
            if decision.allowed or not self._enforced:
                return None
            return denials.access_denied(request, service, "Access Denied")

        return answer

    # --- decisions --------------------------------------------------------------------------------------------

    def decide(
        self,
        principal: Principal,
        mapped: MappedRequest,
        policies: Sequence[Policy],
        snapshot: _Policies | None = None,
    ) -> list[Decision]:
        current = snapshot or self._policies
        decisions = []
        for check in mapped.checks:
            owned = _owned(check, current.setup.bucket_accounts)
            resource = resource_policy_for(current.resource_policies, owned.resource)
            decision = evaluate(principal, owned, policies, resource, current.setup.region)
            self.log.record(principal, mapped.operation, decision, self._enforced)
            decisions.append(decision)
        return decisions

    def authorize_service(self, service: str, checks: Sequence[Check], operation: str) -> list[Decision]:
        """A delivery by an AWS service (S3 or SNS invoking a function, SNS or EventBridge sending to a queue):
        only the resource's policy can allow it."""
        principal = Principal.service(service, self.setup.account)
        decisions = self.decide(principal, MappedRequest(operation, tuple(checks)), ())
        if self.mode != "enforce":
            return [Decision(True, d.check, d.deciding) for d in decisions]
        return decisions

    # --- report -----------------------------------------------------------------------------------------------

    def least_privilege(self) -> list[RoleReport]:
        owners: dict[str, list[Policy]] = {}
        for arn in self.setup.roles:
            owners[arn.rsplit("/", 1)[-1]] = self.setup.identity_policies(arn)
        owners["resource policies"] = [policy for _, policy in self._policies.resource_policies]
        return least_privilege(self.log.seen(), owners, EXPLANATIONS)

    def report(self) -> dict[str, Any]:
        roles = self.least_privilege()
        return {
            "mode": self.mode,
            "admin_requests": self.log.admin_requests,
            "unmapped": dict(self.log.unmapped),
            "roles": [
                {
                    "role": r.role,
                    "used": r.used,
                    "denied": r.denied,
                    "unused": [
                        {"statement": g.statement, "actions": g.unused_actions, "explanation": g.explanation}
                        for g in r.grants
                        if g.unused_actions
                    ],
                }
                for r in roles
            ],
        }

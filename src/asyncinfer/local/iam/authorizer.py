"""The local stack's IAM, in moto's process: who signed a request, what AWS would check for it, and the decision.

``enforce`` (the default) answers a denied request with the protocol's own error, as AWS does; ``audit`` decides and
logs but lets every request through; ``off`` neither decides nor logs. The admin identity is never evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from asyncinfer.local.iam import denials
from asyncinfer.local.iam.checks import Check, HttpRequest, MappedRequest, UnmappedRequest
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
#: An HTTP answer: status, headers, body.
Response = tuple[int, list[tuple[str, str]], bytes]


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


@dataclass(frozen=True)
class _Identity:
    principal: Principal
    session_token: str
    policies: tuple[Policy, ...]


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
        resource_policies = setup.resource_policy_documents()
        self.setup, self._identities, self._resource_policies = setup, identities, resource_policies

    # --- requests signed by a caller --------------------------------------------------------------------------

    def authorize_http(self, request: HttpRequest) -> Verdict:
        if self.mode == "off":
            return ALLOW
        caller = caller_of(request)
        if caller is not None and caller.access_key in ADMIN_ACCESS_KEYS:
            self.log.record_admin()
            return ALLOW
        if caller is None:  # unsigned: anonymous, which nothing in the template allows
            message = "Anonymous users are not authorized to perform this request (unsigned request)"
            return Verdict(denial=denials.access_denied(request, "s3", message)) if self._enforced else ALLOW
        service = caller.service
        identity = self._identities.get(caller.access_key)
        if identity is None or caller.session_token != identity.session_token:
            if not self._enforced:
                return ALLOW
            bad_token = identity is not None
            return Verdict(denial=denials.invalid_credentials(request, service, bad_token=bad_token))
        principal = identity.principal
        try:
            mapped = map_request(request, caller, self.setup.account)
        except UnmappedRequest as exc:
            self.log.record_unmapped(principal, f"{service}:?", str(exc))
            message = f"User: {principal.arn} is not authorized to perform this request ({exc}; denied locally)"
            return Verdict(denial=denials.access_denied(request, service, message)) if self._enforced else ALLOW
        decisions = self.decide(principal, mapped, identity.policies)
        refused = next((d for d in decisions if not d.allowed), None)
        if refused is not None and self._enforced:
            return Verdict(denial=denials.access_denied(request, service, refused.message(principal)))
        return Verdict(when_missing=self._missing_object(request, principal, identity.policies, mapped, service))

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

    def decide(self, principal: Principal, mapped: MappedRequest, policies: Sequence[Policy]) -> list[Decision]:
        decisions = []
        for check in mapped.checks:
            decision = evaluate(principal, check, policies, self._resource_policy(check.resource), self.setup.region)
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

    def _resource_policy(self, resource: str) -> Policy | None:
        return resource_policy_for(self._resource_policies, resource)

    # --- report -----------------------------------------------------------------------------------------------

    def least_privilege(self) -> list[RoleReport]:
        owners: dict[str, list[Policy]] = {}
        for arn in self.setup.roles:
            owners[arn.rsplit("/", 1)[-1]] = self.setup.identity_policies(arn)
        owners["resource policies"] = [policy for _, policy in self._resource_policies]
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

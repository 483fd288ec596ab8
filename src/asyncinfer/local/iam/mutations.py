"""Least privilege proved from a run's decisions: remove one action (or one resource) of one statement of the
template's policies, decide again every check the run was allowed, and name those now denied. A grant whose removal
denies nothing the run did is either unused or redundant (another statement allows the same)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from asyncinfer.local.iam.authorizer import resource_policy_for
from asyncinfer.local.iam.decisions import SeenCheck
from asyncinfer.local.iam.evaluation import evaluate
from asyncinfer.local.iam.policies import Policy, StatementRef, without_action, without_resource
from asyncinfer.local.iam.template_policies import IamSetup, ResourcePolicySpec


@dataclass(frozen=True)
class Mutant:
    """The template's policies less one action (or, in a statement naming several, one resource) of one statement."""

    owner: str  # the role's ARN, or the resource policy's name
    statement: StatementRef
    action: str = ""
    resource: str = ""

    def __str__(self) -> str:
        return f"{self.statement} without {self.action or self.resource}"

    def apply(self, policy: Policy) -> Policy:
        if policy.name != self.statement.policy:
            return policy
        if self.action:
            return without_action(policy, self.statement, self.action)
        return without_resource(policy, self.statement, self.resource)


def _statement_mutants(owner: str, policy: Policy) -> Iterator[Mutant]:
    for statement in policy.statements:
        if statement.effect != "Allow":
            continue
        for action in statement.actions:
            yield Mutant(owner, statement.ref, action=action)
        if len(statement.resources) > 1:
            for resource in statement.resources:
                yield Mutant(owner, statement.ref, resource=resource)


def mutants(setup: IamSetup) -> Iterator[Mutant]:
    """One per Allow action, and per resource of a statement naming several, of every role and resource policy."""
    for arn in setup.roles:
        for policy in setup.identity_policies(arn):
            yield from _statement_mutants(arn, policy)
    for spec, policy in setup.resource_policy_documents():
        yield from _statement_mutants(spec.name, policy)


def newly_denied(setup: IamSetup, seen: Iterable[SeenCheck], mutant: Mutant) -> list[SeenCheck]:
    """The checks the run was allowed that ``mutant``'s policies deny."""
    roles = {arn: setup.identity_policies(arn) for arn in setup.roles}
    resources: list[tuple[ResourcePolicySpec, Policy]] = [
        (spec, mutant.apply(policy)) for spec, policy in setup.resource_policy_documents()
    ]
    denied = []
    for entry in seen:
        if not entry.allowed:
            continue
        principal = entry.principal
        identity: Sequence[Policy] = roles.get(principal.role_arn or "", [])
        if principal.role_arn == mutant.owner:
            identity = [mutant.apply(p) for p in identity]
        resource = resource_policy_for(resources, entry.check.resource)
        if not evaluate(principal, entry.check, identity, resource, setup.region).allowed:
            denied.append(entry)
    return denied

"""Least privilege proved from a run's decisions: remove one action of one statement of the template's policies,
decide again every check the run was allowed, and name those now denied. A grant whose removal denies nothing the
run did is either unused or redundant (another statement allows the same)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from asyncinfer.local.iam.authorizer import resource_policy_for
from asyncinfer.local.iam.decisions import SeenCheck
from asyncinfer.local.iam.evaluation import evaluate
from asyncinfer.local.iam.policies import Policy, StatementRef, without_action
from asyncinfer.local.iam.template_policies import IamSetup, ResourcePolicySpec


@dataclass(frozen=True)
class Mutant:
    """The template's policies less one action of one statement."""

    owner: str  # the role's ARN, or the resource policy's name
    statement: StatementRef
    action: str

    def __str__(self) -> str:
        return f"{self.statement} without {self.action}"


def mutants(setup: IamSetup) -> Iterator[Mutant]:
    """One per Allow action of every statement of every role and resource policy."""
    for arn in setup.roles:
        for policy in setup.identity_policies(arn):
            for statement in policy.statements:
                if statement.effect == "Allow":
                    for action in statement.actions:
                        yield Mutant(arn, statement.ref, action)
    for spec, policy in setup.resource_policy_documents():
        for statement in policy.statements:
            if statement.effect == "Allow":
                for action in statement.actions:
                    yield Mutant(spec.name, statement.ref, action)


def _mutated(policies: Sequence[Policy], mutant: Mutant) -> list[Policy]:
    return [
        without_action(p, mutant.statement, mutant.action) if p.name == mutant.statement.policy else p for p in policies
    ]


def newly_denied(setup: IamSetup, seen: Iterable[SeenCheck], mutant: Mutant) -> list[SeenCheck]:
    """The checks the run was allowed that ``mutant``'s policies deny."""
    roles = {arn: setup.identity_policies(arn) for arn in setup.roles}
    resources: list[tuple[ResourcePolicySpec, Policy]] = [
        (spec, _mutated([policy], mutant)[0]) for spec, policy in setup.resource_policy_documents()
    ]
    denied = []
    for entry in seen:
        if not entry.allowed:
            continue
        principal = entry.principal
        identity = roles.get(principal.role_arn or "", [])
        if principal.role_arn == mutant.owner:
            identity = _mutated(identity, mutant)
        resource = resource_policy_for(resources, entry.check.resource)
        if not evaluate(principal, entry.check, identity, resource, setup.region).allowed:
            denied.append(entry)
    return denied

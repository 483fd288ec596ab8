"""IAM policy documents, parsed once into statements that can be matched against one check.

Action names match case-insensitively, resource ARNs case-sensitively; ``*`` and ``?`` are IAM's wildcards and
nothing else is special (moto compiles patterns as regular expressions, so ``.`` matched anything there). In an ARN
a wildcard does not cross the colons of the first five segments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from asyncinfer.local.iam import wildcards
from asyncinfer.local.iam.conditions import operator_known

Effect = Literal["Allow", "Deny"]
#: ``{"AWS": ("arn:…",), "Service": ("sns.amazonaws.com",)}``; ``{"*": ("*",)}`` for ``"Principal": "*"``.
Principals = Mapping[str, tuple[str, ...]]


class PolicyError(ValueError):
    """A policy document IAM would refuse; the message names the policy and what is wrong."""


@dataclass(frozen=True)
class StatementRef:
    """Where a statement comes from, for decisions and reports: ``SubmitterFunctionRole/submitter#Jobs``."""

    policy: str
    index: int
    sid: str | None = None

    def __str__(self) -> str:
        return f"{self.policy}#{self.sid if self.sid else self.index}"


@dataclass(frozen=True)
class Statement:
    ref: StatementRef
    effect: Effect
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] | None = None
    principals: Principals | None = None  # resource policies only
    not_principals: Principals | None = None
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    def matching_action(self, action: str) -> str | None:
        """The statement's action pattern that covers ``action`` (None if none; for NotAction, ``"NotAction"``)."""
        if self.not_actions is not None:
            return None if any(action_matches(p, action) for p in self.not_actions) else "NotAction"
        return next((p for p in self.actions if action_matches(p, action)), None)

    def covers_resource(self, resource: str) -> bool:
        if self.not_resources is not None:
            return not any(resource_matches(p, resource) for p in self.not_resources)
        return any(resource_matches(p, resource) for p in self.resources)


@dataclass(frozen=True)
class Policy:
    name: str
    statements: tuple[Statement, ...]


def action_matches(pattern: str, action: str) -> bool:
    return wildcards.matches(pattern, action, ignore_case=True)


def resource_matches(pattern: str, resource: str) -> bool:
    return wildcards.arn_matches(pattern, resource)


def _strings(policy: str, element: str, value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str | int | float | bool) else value
    if not isinstance(items, list) or not items:
        raise PolicyError(f"{policy}: {element} must be a string or a non-empty list of strings")
    out: list[str] = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            out.append(str(item))
        else:
            raise PolicyError(f"{policy}: {element} holds {item!r}, not a string")
    return tuple(out)


def _principals(policy: str, element: str, value: object) -> Principals:
    if value == "*":
        return {"*": ("*",)}
    if not isinstance(value, dict) or not value:
        raise PolicyError(f'{policy}: {element} must be "*" or a map of principal types')
    return {str(kind): _strings(policy, f"{element}.{kind}", ids) for kind, ids in value.items()}


def _conditions(policy: str, value: object) -> dict[str, dict[str, tuple[str, ...]]]:
    if not isinstance(value, dict):
        raise PolicyError(f"{policy}: Condition must be a map")
    block: dict[str, dict[str, tuple[str, ...]]] = {}
    for operator, keys in value.items():
        if not operator_known(str(operator)):
            raise PolicyError(f"{policy}: unknown condition operator {operator!r}")
        if not isinstance(keys, dict):
            raise PolicyError(f"{policy}: Condition.{operator} must be a map of keys to values")
        block[str(operator)] = {
            str(key).lower(): _strings(policy, f"Condition.{operator}.{key}", v) for key, v in keys.items()
        }
    return block


def parse_statement(policy: str, index: int, raw: Mapping[str, object], resource_policy: bool) -> Statement:
    sid = raw.get("Sid")
    ref = StatementRef(policy, index, str(sid) if sid else None)
    where = str(ref)
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"{where}: Effect must be Allow or Deny, not {effect!r}")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError(f"{where}: exactly one of Action and NotAction is required")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise PolicyError(f"{where}: exactly one of Resource and NotResource is required")
    has_principal = "Principal" in raw or "NotPrincipal" in raw
    if resource_policy != has_principal:
        raise PolicyError(
            f"{where}: a resource policy statement needs a Principal"
            if resource_policy
            else f"{where}: an identity policy statement cannot name a Principal"
        )
    return Statement(
        ref=ref,
        effect=effect,
        actions=_strings(where, "Action", raw["Action"]) if "Action" in raw else (),
        not_actions=_strings(where, "NotAction", raw["NotAction"]) if "NotAction" in raw else None,
        resources=_strings(where, "Resource", raw["Resource"]) if "Resource" in raw else (),
        not_resources=_strings(where, "NotResource", raw["NotResource"]) if "NotResource" in raw else None,
        principals=_principals(where, "Principal", raw["Principal"]) if "Principal" in raw else None,
        not_principals=_principals(where, "NotPrincipal", raw["NotPrincipal"]) if "NotPrincipal" in raw else None,
        conditions=_conditions(where, raw["Condition"]) if "Condition" in raw else {},
    )


def parse_policy(name: str, document: Mapping[str, object] | str, resource_policy: bool = False) -> Policy:
    """A policy document (a mapping or its JSON) as statements; PolicyError for what IAM would refuse."""
    doc = json.loads(document) if isinstance(document, str) else document
    if not isinstance(doc, Mapping):
        raise PolicyError(f"{name}: a policy document must be a JSON object")
    version = doc.get("Version")
    if version not in (None, "2012-10-17", "2008-10-17"):
        raise PolicyError(f"{name}: unknown policy Version {version!r}")
    raw = doc.get("Statement")
    statements: Sequence[object] = [raw] if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    if not statements:
        raise PolicyError(f"{name}: Statement must be an object or a non-empty list")
    parsed = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, dict):
            raise PolicyError(f"{name}: statement {index} is not an object")
        parsed.append(parse_statement(name, index, statement, resource_policy))
    sids = [s.ref.sid for s in parsed if s.ref.sid]
    if len(sids) != len(set(sids)):
        raise PolicyError(f"{name}: statement ids must be unique")
    return Policy(name, tuple(parsed))


def without_statement(policy: Policy, ref: StatementRef) -> Policy:
    """The policy with one statement removed (mutation tests)."""
    return Policy(policy.name, tuple(s for s in policy.statements if s.ref != ref))


def without_action(policy: Policy, ref: StatementRef, action: str) -> Policy:
    """The policy with one action pattern removed from one statement (the statement goes if none is left)."""
    statements: list[Statement] = []
    for statement in policy.statements:
        if statement.ref == ref:
            kept = tuple(a for a in statement.actions if a != action)
            if not kept:
                continue
            statements.append(replace(statement, actions=kept))
        else:
            statements.append(statement)
    return Policy(policy.name, tuple(statements))


def without_resource(policy: Policy, ref: StatementRef, resource: str) -> Policy:
    """The policy with one resource pattern removed from one statement (the statement goes if none is left)."""
    statements: list[Statement] = []
    for statement in policy.statements:
        if statement.ref == ref:
            kept = tuple(r for r in statement.resources if r != resource)
            if kept:
                statements.append(replace(statement, resources=kept))
        else:
            statements.append(statement)
    return Policy(policy.name, tuple(statements))

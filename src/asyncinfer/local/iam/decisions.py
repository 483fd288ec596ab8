"""Every authorization decision of a local stack run, and the least-privilege report made from them.

Each decision goes to a JSON-lines log as it is made (principal, operation, action, resource, allowed or denied, the
statement that decided). Distinct decisions are also kept in memory with their context, so that a test can replay
them against changed policies (the mutation test) and ``local down`` can tell which grants were never used.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from asyncinfer.local.iam.checks import Check, ContextValue
from asyncinfer.local.iam.evaluation import Decision, Principal
from asyncinfer.local.iam.policies import Policy


@dataclass(frozen=True)
class SeenCheck:
    """One distinct (principal, check) the run authorized or refused, and how often."""

    principal: Principal
    check: Check
    operation: str
    allowed: bool
    deciding: tuple[str, ...]
    matched_actions: tuple[tuple[str, str], ...]  # (statement, action pattern) of every Allow that matched
    count: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "principal": {
                "kind": self.principal.kind,
                "arn": self.principal.arn,
                "account": self.principal.account,
                "role_arn": self.principal.role_arn,
            },
            "operation": self.operation,
            "action": self.check.action,
            "resource": self.check.resource,
            "context": {k: list(v) if isinstance(v, tuple) else v for k, v in self.check.context.items()},
            "allowed": self.allowed,
            "deciding": list(self.deciding),
            "matched_actions": [list(pair) for pair in self.matched_actions],
            "count": self.count,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SeenCheck:
        context: dict[str, ContextValue] = {
            k: tuple(v) if isinstance(v, list) else str(v) for k, v in data["context"].items()
        }
        return cls(
            principal=Principal(**data["principal"]),
            check=Check(data["action"], data["resource"], context),
            operation=data["operation"],
            allowed=bool(data["allowed"]),
            deciding=tuple(data["deciding"]),
            matched_actions=tuple((str(a), str(b)) for a, b in data["matched_actions"]),
            count=int(data["count"]),
        )


def _key(principal: Principal, check: Check) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
    context = tuple(sorted((k, json.dumps(v)) for k, v in check.context.items()))
    return (principal.arn, check.action, check.resource, context)


class DecisionLog:
    """Thread-safe; ``path`` (optional) receives one JSON line per decision."""

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], SeenCheck] = {}
        self._stream: IO[str] | None = path.open("a", encoding="utf-8") if path is not None else None
        self.admin_requests = 0
        self.unmapped: dict[str, int] = {}

    def record(self, principal: Principal, operation: str, decision: Decision, enforced: bool) -> None:
        deciding = tuple(str(ref) for ref in decision.deciding)
        matched = tuple((str(ref), action) for ref, action in decision.matched_actions.items())
        key = _key(principal, decision.check)
        with self._lock:
            seen = self._seen.get(key)
            count = seen.count + 1 if seen is not None else 1
            self._seen[key] = SeenCheck(
                principal, decision.check, operation, decision.allowed, deciding, matched, count
            )
            if self._stream is not None:
                line: dict[str, object] = {
                    "principal": principal.arn,
                    "operation": operation,
                    "action": decision.check.action,
                    "resource": decision.check.resource,
                    "allowed": decision.allowed,
                    "enforced": enforced,
                    "statement": list(deciding),
                }
                if principal.kind == "service":
                    line["context"] = dict(decision.check.context)
                if decision.unknown_keys:
                    line["unknown_condition_keys"] = list(decision.unknown_keys)
                self._stream.write(json.dumps(line) + "\n")  # flushed by seen() and close(), not per line

    def record_unmapped(self, principal: Principal, operation: str, message: str) -> None:
        with self._lock:
            self.unmapped[operation] = self.unmapped.get(operation, 0) + 1
            if self._stream is not None:
                line = {"principal": principal.arn, "operation": operation, "allowed": False, "unmapped": message}
                self._stream.write(json.dumps(line) + "\n")
                self._stream.flush()

    def record_admin(self) -> None:
        with self._lock:
            self.admin_requests += 1

    def seen(self) -> list[SeenCheck]:
        with self._lock:
            if self._stream is not None:
                self._stream.flush()
            return list(self._seen.values())

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                self._stream.close()
                self._stream = None


@dataclass
class GrantUse:
    """One statement of a role's (or a resource's) policies, and what of it the run used."""

    statement: str
    actions: list[str]
    used_actions: list[str] = field(default_factory=list)
    unused_actions: list[str] = field(default_factory=list)
    explanation: str | None = None  # why it can go unused in a local run (grant_notes.py)


@dataclass
class RoleReport:
    role: str
    used: list[dict[str, Any]]  # by action and deciding statement: requests, distinct resources, an example
    denied: list[dict[str, Any]]
    grants: list[GrantUse]

    @property
    def unexplained(self) -> list[GrantUse]:
        return [g for g in self.grants if g.unused_actions and g.explanation is None]


def least_privilege(
    seen: Iterable[SeenCheck],
    policies_by_owner: Mapping[str, list[Policy]],
    explanations: Mapping[str, str],
) -> list[RoleReport]:
    """For each owner (a role's name, or "resource policies"): what it used, what was refused, and every action of
    every statement it was granted that no allowed request used. ``explanations`` by statement (``Policy#Sid``)."""
    seen = list(seen)
    matched: dict[str, set[str]] = {}
    for entry in seen:
        if entry.allowed:
            for ref, pattern in entry.matched_actions:
                matched.setdefault(ref, set()).add(pattern)
    reports = []
    for owner, policies in policies_by_owner.items():
        mine = [s for s in seen if s.principal.label == owner]
        used: dict[tuple[str, str], dict[str, Any]] = {}
        for s in mine:
            if s.allowed:
                row = used.setdefault(
                    (s.check.action, ", ".join(s.deciding)),
                    {"action": s.check.action, "statement": ", ".join(s.deciding), "requests": 0, "resources": 0,
                     "example": s.check.resource},
                )  # fmt: skip
                row["requests"] += s.count
                row["resources"] += 1
        denied = [
            {"action": s.check.action, "resource": s.check.resource, "count": s.count, "operation": s.operation}
            for s in mine
            if not s.allowed
        ]
        grants = []
        for policy in policies:
            for statement in policy.statements:
                if statement.effect != "Allow":
                    continue
                name = str(statement.ref)
                actions = list(statement.actions) if statement.not_actions is None else ["NotAction"]
                hits = matched.get(name, set())
                grants.append(
                    GrantUse(
                        statement=name,
                        actions=actions,
                        used_actions=[a for a in actions if a in hits],
                        unused_actions=[a for a in actions if a not in hits],
                        explanation=explanations.get(name),
                    )
                )
        reports.append(RoleReport(owner, [used[k] for k in sorted(used)], denied, grants))
    return reports

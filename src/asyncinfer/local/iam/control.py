"""The private paths through which the local stack drives IAM in moto's process: configure it once the template's
roles and policies are known, ask it about requests it does not see itself (the endpoint emulator's
InvokeEndpointAsync, the services' deliveries), and read its decisions and least-privilege report.
:mod:`asyncinfer.local.iam.client` is the other end."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

from asyncinfer.local.iam.authorizer import MODES, Authorizer
from asyncinfer.local.iam.checks import Check, HttpRequest
from asyncinfer.local.iam.decisions import DecisionLog
from asyncinfer.local.iam.identities import RoleCredentials
from asyncinfer.local.iam.template_policies import IamSetup

PREFIX = "/_asyncinfer/iam/"
CONFIGURE = PREFIX + "configure"
AUTHORIZE_REQUEST = PREFIX + "authorize-request"
AUTHORIZE_SERVICE = PREFIX + "authorize-service"
REPORT = PREFIX + "report"
DECISIONS = PREFIX + "decisions"
POLICIES = PREFIX + "policies"
PATHS = frozenset({CONFIGURE, AUTHORIZE_REQUEST, AUTHORIZE_SERVICE, REPORT, DECISIONS, POLICIES})


class ControlError(ValueError):
    """A malformed call to a private path (answered 400)."""


class IamControl:
    """The moto process's IAM state: no authorizer until the stack configures one (provisioning runs as admin)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.authorizer: Authorizer | None = None

    def handle(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        if path == CONFIGURE:
            return self._configure(payload)
        authorizer = self.authorizer
        if authorizer is None:
            raise ControlError("IAM is not configured")
        if path == AUTHORIZE_REQUEST:
            raw = payload["request"]
            request = HttpRequest(
                raw["method"], raw["path"], raw.get("query", ""), {k.lower(): v for k, v in raw["headers"].items()}
            )
            verdict = authorizer.authorize_http(request, expected_service=payload.get("service"))
            if verdict.denial is None:
                return {"allowed": True}
            status, headers, body = verdict.denial
            return {"allowed": False, "status": status, "headers": headers, "body": base64.b64encode(body).decode()}
        if path == AUTHORIZE_SERVICE:
            checks = [Check(c["action"], c["resource"], c.get("context", {})) for c in payload["checks"]]
            decisions = authorizer.authorize_service(payload["service"], checks, payload["operation"])
            principal_arn = payload["service"]
            return {
                "allowed": all(d.allowed for d in decisions),
                "messages": [
                    f"{principal_arn} is not authorized to perform: {d.check.action} on resource: {d.check.resource}"
                    for d in decisions
                    if not d.allowed
                ],
            }
        if path == POLICIES:
            authorizer.replace_policies(IamSetup.from_json(payload["setup"]))
            return {"roles": len(authorizer.setup.roles)}
        if path == REPORT:
            return authorizer.report()
        if path == DECISIONS:
            return {"seen": [s.to_json() for s in authorizer.log.seen()]}
        raise ControlError(f"unknown path {path}")

    def may_deliver(self, rule_arn: str, queue_arn: str) -> bool:
        """EventBridge's delivery to a queue (moto_deliveries.TargetGate): the queue's policy must allow the rule."""
        authorizer = self.authorizer
        if authorizer is None:
            return True
        account = authorizer.setup.account
        check = Check("sqs:SendMessage", queue_arn, {"aws:SourceArn": rule_arn, "aws:SourceAccount": account})
        return all(d.allowed for d in authorizer.authorize_service("events.amazonaws.com", [check], "events:deliver"))

    def _configure(self, payload: dict[str, Any]) -> dict[str, Any]:
        mode = payload.get("mode", "enforce")
        if mode not in MODES:
            raise ControlError(f"mode must be one of {', '.join(MODES)}")
        setup = IamSetup.from_json(payload["setup"])
        credentials = [RoleCredentials.from_json(c) for c in payload["credentials"]]
        log_path = payload.get("log_path")
        with self._lock:
            if self.authorizer is not None:
                self.authorizer.log.close()
            log = DecisionLog(Path(log_path) if log_path else None)
            self.authorizer = Authorizer(setup, credentials, mode, log)
        return {"mode": mode, "roles": len(setup.roles), "identities": len(credentials)}

"""The local stack's identities and IAM enforcement: which credentials each piece runs with, and the authorizer in
moto's process configured from the template (:mod:`asyncinfer.local.iam`).

Every function runs with credentials of its own role (a session named after the function, as Lambda's); the
endpoint emulator and the model containers act as the SageMaker execution role (session ``SageMaker``) for inputs,
artifacts, outputs, failures and notifications; provisioning, the CLI and the tests use the local admin identity.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from asyncinfer.local.iam import client
from asyncinfer.local.iam.authorizer import MODES, Mode
from asyncinfer.local.iam.gates import IamDeliveryGate, IamRequestGate
from asyncinfer.local.iam.identities import ADMIN_SECRET_KEY, RoleCredentials, mint
from asyncinfer.local.iam.template_policies import IamSetup

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from asyncinfer.local.provision import LocalStack

REPORT_FILE = "iam-report.json"
DECISIONS_FILE = "iam-decisions.jsonl"
EXECUTION_SESSION = "SageMaker"


def model_bucket_accounts(parameters: Mapping[str, str]) -> dict[str, str]:
    """The model artifact's bucket belongs to ModelBucketAccount when the template says so: locally every bucket is
    in the stack's account, so the authorizer takes that account as the bucket's owner (s3:ResourceAccount)."""
    account, url = parameters.get("ModelBucketAccount", ""), parameters.get("ModelDataUrl", "")
    if not account or not url.startswith("s3://"):
        return {}
    return {url[len("s3://") :].split("/", 1)[0]: account}


class IamError(RuntimeError):
    """The template's IAM refuses something AWS would refuse at deploy time; the message says what."""


class StackIam:
    def __init__(self, stack: LocalStack, mode: Mode, aws_endpoint_url: str, state_dir: Path) -> None:
        if mode not in MODES:
            raise IamError(f"--iam must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.setup = IamSetup.from_json(stack.iam)
        self.setup.bucket_accounts = model_bucket_accounts(stack.parameters)
        self._stack = stack
        self._url = aws_endpoint_url
        self._state_dir = state_dir
        self.functions: dict[str, RoleCredentials] = {
            logical: mint(self.setup.function_roles[logical], spec.name) for logical, spec in stack.functions.items()
        }
        self.execution: dict[str, RoleCredentials] = {
            endpoint: mint(role, EXECUTION_SESSION) for endpoint, role in self.setup.execution_roles.items()
        }

    def configure(self) -> None:
        """Hand the roles, their credentials and the mode to moto's process (from now on requests are decided)."""
        log = self._state_dir / "logs" / DECISIONS_FILE
        log.parent.mkdir(parents=True, exist_ok=True)
        credentials = [*self.functions.values(), *self.execution.values()]
        client.configure(self._url, self.setup, credentials, self.mode, log if self.mode != "off" else None)

    def check_s3_notifications(self, gate: IamDeliveryGate) -> None:
        """S3 refuses a notification configuration whose function it may not invoke (PutBucketNotificationConfiguration
        fails with "Unable to validate the following destination configurations"), so the deploy fails."""
        if self.mode != "enforce":
            return
        for source in self._stack.sources:
            if source.kind == "s3":
                refusals = gate.refusals(source)
                if refusals:
                    raise IamError(
                        "Unable to validate the following destination configurations: "
                        f"{self._stack.functions[source.function].arn} ({'; '.join(refusals)})"
                    )

    def function_environment(self, logical: str) -> dict[str, str]:
        return self.functions[logical].environment()

    def execution_session(self, region: str) -> boto3.Session | None:
        """The SageMaker execution role's session (None when the template names none)."""
        credentials = next(iter(self.execution.values()), None)
        if credentials is None:
            return None
        return boto3.Session(
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
            region_name=region,
        )

    def destination_clients(self, region: str) -> dict[str, SQSClient]:
        """The SQS client each function's on-failure records are sent with (its role, as Lambda does)."""
        made: dict[str, SQSClient] = {}
        for logical, credentials in self.functions.items():
            session = boto3.Session(
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                aws_session_token=credentials.session_token,
                region_name=region,
            )
            made[logical] = session.client("sqs", endpoint_url=self._url)
        return made

    def delivery_gate(self) -> IamDeliveryGate:
        arns = {logical: spec.arn for logical, spec in self._stack.functions.items()}
        return IamDeliveryGate(self._url, arns, self._stack.account)

    def request_gate(self, service: str) -> IamRequestGate | None:
        """The gate of the endpoint emulator (``sagemaker``) or the Lambda Invoke API (``lambda``)."""
        return IamRequestGate(self._url, service) if self.mode != "off" else None

    def state(self) -> dict[str, Any]:
        """For local.json: the mode, and how to act as each identity."""
        return {
            "mode": self.mode,
            "decisions_log": str(self._state_dir / "logs" / DECISIONS_FILE),
            "identities": {
                "admin": {"aws_access_key_id": "local", "aws_secret_access_key": ADMIN_SECRET_KEY},
                "roles": {
                    f"{c.role_name} ({c.session_name})": {
                        "aws_access_key_id": c.access_key_id,
                        "aws_secret_access_key": c.secret_access_key,
                        "aws_session_token": c.session_token,
                    }
                    for c in [*self.functions.values(), *self.execution.values()]
                },
            },
        }

    def write_report(self) -> Path | None:
        """The least-privilege report of this run, written next to local.json (None when IAM is off or gone)."""
        if self.mode == "off":
            return None
        try:
            report = client.report(self._url)
        except OSError:
            return None
        path = self._state_dir / REPORT_FILE
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        return path

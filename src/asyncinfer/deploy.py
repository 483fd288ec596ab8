"""`asyncinfer deploy` on AWS: upload the model under its content-addressed key, then `sam build` and `sam deploy`
with that ``ModelDataUrl`` (model_artifacts.py says why content-addressed). The local stack's counterpart of
`sam deploy` is asyncinfer.local.stack_update.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asyncinfer import model_artifacts

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_s3 import S3Client


class DeployError(RuntimeError):
    """A step of the deployment failed; the message says which and why."""


@dataclass(frozen=True)
class Plan:
    model_data_url: str | None  # None: the deployed one (sam deploy keeps a parameter it is not given)
    commands: list[list[str]]


def account_of(session: boto3.Session) -> str:
    return session.client("sts").get_caller_identity()["Account"]


@contextmanager
def model_artifact(model_file: Path | None) -> Iterator[Path]:
    """``model_file``, or the demo model's artifact, trained now (byte-for-byte reproducible: deploying it again
    finds it already uploaded and changes nothing)."""
    if model_file is not None:
        yield model_file
        return
    from asyncinfer.model.demo import build_model_artifact

    with tempfile.TemporaryDirectory() as scratch:
        yield build_model_artifact(Path(scratch) / "model.tar.gz")


def upload_model(s3: S3Client, region: str, account: str, artifact: Path) -> model_artifacts.Upload:
    """Upload ``artifact`` under its content-addressed key in the account's SageMaker default bucket (created
    private and encrypted if missing)."""
    bucket = model_artifacts.default_bucket(region, account)
    model_artifacts.ensure_bucket(s3, bucket, region, account)
    return model_artifacts.upload_once(s3, artifact, bucket, account)


def plan(stack_name: str, region: str, model_data_url: str | None, parameters: dict[str, str], template: Path) -> Plan:
    # sam deploy gives CloudFormation UsePreviousValue for every parameter it is not given: the model stays.
    overrides = {**({"ModelDataUrl": model_data_url} if model_data_url else {}), **parameters}
    return Plan(
        model_data_url=model_data_url,
        commands=[
            ["sam", "build", "--template-file", str(template)],
            [
                "sam",
                "deploy",
                "--stack-name",
                stack_name,
                "--region",
                region,
                "--resolve-s3",
                "--capabilities",
                "CAPABILITY_IAM",
                "CAPABILITY_AUTO_EXPAND",
                "--no-confirm-changeset",
                "--no-fail-on-empty-changeset",
                "--parameter-overrides",
                *[f"{key}={value}" for key, value in overrides.items()],
            ],
        ],
    )


def run(steps: Plan, cwd: Path) -> None:
    sam = shutil.which("sam")
    if sam is None:
        raise DeployError("the SAM CLI is not on PATH (make venv installs it in .venv/bin)")
    for command in steps.commands:
        result = subprocess.run([sam, *command[1:]], cwd=cwd, check=False)
        if result.returncode != 0:
            raise DeployError(f"`{' '.join(command[:2])}` failed with status {result.returncode}")

"""`asyncinfer deploy`: put the demo model where the template expects it, then `sam build` and `sam deploy`.

The template's default ``ModelDataUrl`` is ``s3://sagemaker-<region>-<account>/async-inference-pipeline/
model.tar.gz`` (the SageMaker SDK's conventional bucket). This uploads the demo artifact there, creating the bucket
if needed (private, encrypted), unless the user passes their own ``ModelDataUrl``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_s3.literals import BucketLocationConstraintType

MODEL_KEY = "async-inference-pipeline/model.tar.gz"


class DeployError(RuntimeError):
    """A step of the deployment failed; the message says which and why."""


@dataclass(frozen=True)
class Plan:
    model_data_url: str
    commands: list[list[str]]


def default_model_location(session: boto3.Session) -> tuple[str, str]:
    account = session.client("sts").get_caller_identity()["Account"]
    return f"sagemaker-{session.region_name}-{account}", MODEL_KEY


def upload_demo_model(session: boto3.Session, bucket: str, key: str) -> str:
    """Train the demo model, upload its artifact; the bucket is created private and encrypted if missing."""
    from botocore.exceptions import ClientError

    from asyncinfer.model.demo import build_model_artifact

    s3 = session.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        if session.region_name == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            region = cast("BucketLocationConstraintType", session.region_name)
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
    with tempfile.TemporaryDirectory() as scratch:
        artifact = build_model_artifact(Path(scratch) / "model.tar.gz")
        s3.upload_file(str(artifact), bucket, key)
    return f"s3://{bucket}/{key}"


def plan(stack_name: str, region: str, model_data_url: str, parameters: dict[str, str], template: Path) -> Plan:
    overrides = {"ModelDataUrl": model_data_url, **parameters}
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

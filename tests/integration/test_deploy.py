"""asyncinfer deploy: the model upload (against moto) and the SAM commands it runs (not run: no AWS account here)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from asyncinfer import deploy
from asyncinfer.model.demo import MODEL_FILENAME
from tests.support import free_port


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    port = free_port()
    server = ThreadedMotoServer(port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"

    class Local(boto3.Session):
        def client(self, service: str, **kwargs: object) -> object:  # type: ignore[override]
            return super().client(service, endpoint_url=url, **kwargs)  # type: ignore[call-overload]

    yield Local(aws_access_key_id="x", aws_secret_access_key="x", region_name="eu-west-1")
    server.stop()


def test_demo_model_goes_to_the_templates_default_location(session: boto3.Session) -> None:
    bucket, key = deploy.default_model_location(session)
    assert (bucket, key) == ("sagemaker-eu-west-1-123456789012", "async-inference-pipeline/model.tar.gz")
    uri = deploy.upload_demo_model(session, bucket, key)
    assert uri == f"s3://{bucket}/{key}"
    s3 = session.client("s3")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert archive.getnames() == [MODEL_FILENAME]
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
    # A second deploy reuses the bucket.
    assert deploy.upload_demo_model(session, bucket, key) == uri


def test_plan_builds_then_deploys_with_the_model_location() -> None:
    steps = deploy.plan("my-stack", "eu-west-1", "s3://b/k.tar.gz", {"MaxInstances": "3"}, Path("template.yaml"))
    build, sam_deploy = steps.commands
    assert build[:2] == ["sam", "build"]
    assert sam_deploy[:4] == ["sam", "deploy", "--stack-name", "my-stack"]
    assert "--resolve-s3" in sam_deploy and "CAPABILITY_IAM" in sam_deploy
    overrides = sam_deploy[sam_deploy.index("--parameter-overrides") + 1 :]
    assert overrides == ["ModelDataUrl=s3://b/k.tar.gz", "MaxInstances=3"]


def test_cli_dry_run_prints_the_commands_and_runs_nothing() -> None:
    from click.testing import CliRunner

    from asyncinfer.cli import main

    result = CliRunner().invoke(
        main,
        ["--stack-name", "s1", "--region", "eu-west-1", "deploy", "--dry-run", "--model-data-url", "s3://b/m.tar.gz"],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("$ sam build --template-file ")
    assert lines[1].startswith("$ sam deploy --stack-name s1 --region eu-west-1 ")
    assert lines[1].endswith("--parameter-overrides ModelDataUrl=s3://b/m.tar.gz")
    assert "upload" not in result.output


def test_cli_deploy_without_a_stack_name_is_a_usage_error() -> None:
    from click.testing import CliRunner

    from asyncinfer.cli import main

    result = CliRunner().invoke(main, ["deploy", "--dry-run"])
    assert result.exit_code == 2
    assert "deploy needs --stack-name" in result.output

"""asyncinfer deploy: the model upload (against moto) and the SAM commands it runs (not run: no AWS account here)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from asyncinfer import deploy, model_artifacts
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


def test_the_demo_model_goes_under_its_content_address_once(session: boto3.Session) -> None:
    s3 = session.client("s3")
    with deploy.model_artifact(None) as artifact:
        upload = deploy.upload_model(s3, "eu-west-1", deploy.account_of(session), artifact)
        digest = model_artifacts.sha256_of(artifact)
    bucket = "sagemaker-eu-west-1-123456789012"
    assert upload.created
    assert upload.url == f"s3://{bucket}/async-inference-pipeline/models/{digest.hex}/model.tar.gz"
    key = upload.url.removeprefix(f"s3://{bucket}/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert archive.getnames() == [MODEL_FILENAME]
    assert s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")["ChecksumSHA256"] == digest.base64
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
    # The demo artifact is reproducible: a second deploy finds it there and writes nothing.
    with deploy.model_artifact(None) as artifact:
        again = deploy.upload_model(s3, "eu-west-1", "123456789012", artifact)
    assert (again.url, again.created) == (upload.url, False)
    assert len(s3.list_objects_v2(Bucket=bucket)["Contents"]) == 1


def test_another_model_gets_another_key_and_a_foreign_object_at_a_key_is_refused(
    session: boto3.Session, tmp_path: Path
) -> None:
    s3 = session.client("s3")
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    first.write_bytes(b"model a")
    second.write_bytes(b"model b")
    a = deploy.upload_model(s3, "eu-west-1", "123456789012", first)
    b = deploy.upload_model(s3, "eu-west-1", "123456789012", second)
    assert a.url != b.url and a.created and b.created
    # Someone overwrote b's key by hand: deploying b must not pretend that object is b.
    bucket, key = b.url.removeprefix("s3://").split("/", 1)
    for tampered in ({"ChecksumAlgorithm": "SHA256"}, {}):  # with another checksum, and with none S3 could compare
        s3.put_object(Bucket=bucket, Key=key, Body=b"tampered", **tampered)  # type: ignore[arg-type]
        with pytest.raises(model_artifacts.ArtifactError, match="not this artifact"):
            deploy.upload_model(s3, "eu-west-1", "123456789012", second)


def test_an_upload_racing_another_deploy_is_refused_by_the_condition_not_overwritten(
    session: boto3.Session, tmp_path: Path
) -> None:
    s3 = session.client("s3")
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"model")
    bucket = model_artifacts.default_bucket("eu-west-1", "123456789012")
    model_artifacts.ensure_bucket(s3, bucket, "eu-west-1", "123456789012")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})  # an overwrite would show
    digest = model_artifacts.sha256_of(artifact)
    key = model_artifacts.content_key(digest)
    other = session.client("s3")
    raced: list[str] = []

    def other_deploy_writes_first(**_: object) -> None:  # between our HeadObject and our PutObject
        if not raced:
            written = other.put_object(
                Bucket=bucket, Key=key, Body=b"model", Metadata={"sha256": digest.hex}, ChecksumAlgorithm="SHA256"
            )
            raced.append(written["VersionId"])

    s3.meta.events.register("before-call.s3.PutObject", other_deploy_writes_first)
    upload = model_artifacts.upload_once(s3, artifact, bucket, "123456789012")
    assert raced and not upload.created  # our If-None-Match PUT was refused (412), and the object checked
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    assert [v["VersionId"] for v in versions] == raced  # one version: the other deploy's, not overwritten


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


def test_cli_deploy_without_a_stack_name_and_no_local_stack_says_so(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from asyncinfer.cli import main

    result = CliRunner().invoke(main, ["deploy", "--dry-run"], env={"ASYNCINFER_STATE_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert "no local stack is up" in result.output


def test_a_deploy_without_a_model_leaves_model_data_url_to_its_previous_value() -> None:
    # sam deploy gives CloudFormation UsePreviousValue for a parameter it is not given: the deployed model stays.
    steps = deploy.plan("my-stack", "eu-west-1", None, {"MaxInstances": "3"}, Path("template.yaml"))
    sam_deploy = steps.commands[1]
    assert sam_deploy[sam_deploy.index("--parameter-overrides") + 1 :] == ["MaxInstances=3"]

"""asyncinfer delete as a user runs it: on a stack deployed with moto's CloudFormation (two versioned buckets holding
versions and delete markers, a table with records, all DeletionPolicy Retain, and a queue that is not), and on a
local stack (its state file, its AWS APIs, its process)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from moto import mock_aws
from moto.server import ThreadedMotoServer

from asyncinfer.cli import main
from asyncinfer.cli import teardown as teardown_command
from asyncinfer.local.stack import STATE_FILE
from tests.support import free_port

REGION = "eu-west-1"
STACK = "pipeline"


def stack_template(retain: bool = True) -> str:
    policies = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"} if retain else {}
    versioned = {"VersioningConfiguration": {"Status": "Enabled"}}
    return json.dumps(
        {
            "Resources": {
                "InputBucket": {"Type": "AWS::S3::Bucket", **policies, "Properties": versioned},
                "OutputBucket": {"Type": "AWS::S3::Bucket", **policies, "Properties": versioned},
                "JobsTable": {
                    "Type": "AWS::DynamoDB::Table",
                    **policies,
                    "Properties": {
                        "BillingMode": "PAY_PER_REQUEST",
                        "AttributeDefinitions": [{"AttributeName": "inferenceId", "AttributeType": "S"}],
                        "KeySchema": [{"AttributeName": "inferenceId", "KeyType": "HASH"}],
                    },
                },
                "ResultsQueue": {"Type": "AWS::SQS::Queue"},
            },
            "Outputs": {
                "InputBucketName": {"Value": {"Ref": "InputBucket"}},
                "OutputBucketName": {"Value": {"Ref": "OutputBucket"}},
                "JobsTableName": {"Value": {"Ref": "JobsTable"}},
                "ResultsQueueUrl": {"Value": {"Ref": "ResultsQueue"}},
            },
        }
    )


def fill(s3: Any, dynamodb: Any, buckets: list[str], table: str) -> None:
    """Each bucket: versioned (moto's CloudFormation may ignore the property), 3 keys with 2 versions each, a delete
    marker on one; the table: 3 records."""
    for bucket in buckets:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        for key in ("a.csv", "b.csv", "c.csv"):
            s3.put_object(Bucket=bucket, Key=key, Body=b"1")
            s3.put_object(Bucket=bucket, Key=key, Body=b"2")
        s3.delete_object(Bucket=bucket, Key="a.csv")
    for i in range(3):
        dynamodb.put_item(TableName=table, Item={"inferenceId": {"S": str(i)}})


def version_count(s3: Any, bucket: str) -> int:
    page = s3.list_object_versions(Bucket=bucket)
    return len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))


class Deployed:
    def __init__(self, retain: bool = True) -> None:
        self.cfn = boto3.client("cloudformation", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.stack_id = self.cfn.create_stack(StackName=STACK, TemplateBody=stack_template(retain))["StackId"]
        outputs = {
            o["OutputKey"]: o["OutputValue"] for o in self.cfn.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
        }
        self.buckets = [outputs["InputBucketName"], outputs["OutputBucketName"]]
        self.table = outputs["JobsTableName"]
        self.queue_url = outputs["ResultsQueueUrl"]
        fill(self.s3, self.dynamodb, self.buckets, self.table)

    def status(self) -> str:
        return str(self.cfn.describe_stacks(StackName=self.stack_id)["Stacks"][0]["StackStatus"])

    def buckets_left(self) -> set[str]:
        return {b["Name"] for b in self.s3.list_buckets()["Buckets"]} & set(self.buckets)

    def tables_left(self) -> list[str]:
        return list(self.dynamodb.list_tables()["TableNames"])


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    from asyncinfer.cli.display import console

    monkeypatch.setattr(console, "width", 250)  # names and ARNs on one line each


@pytest.fixture(autouse=True)
def deleted_stacks_list_what_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto lists a stack's resources through a lazy map that re-creates, on read, each resource the deletion
    removed (a deleted stack's ListStackResources would bring its queue back). AWS lists them as DELETE_COMPLETE
    and creates nothing: list only the resources moto still holds (all of them while the stack lives)."""
    from moto.cloudformation.models import Stack

    monkeypatch.setattr(Stack, "stack_resources", property(lambda self: self.resource_map._parsed_resources.values()))


@pytest.fixture
def deployed() -> Iterator[Deployed]:
    with mock_aws():
        yield Deployed()


def delete(*args: str, stack: bool = True, input: str | None = None) -> Result:
    target = ["--stack-name", STACK, "--region", REGION] if stack else []
    return CliRunner().invoke(main, [*target, "delete", *args], input=input, env={"COLUMNS": "250"})


def test_delete_keeps_the_data_and_lists_it(deployed: Deployed) -> None:
    result = delete("--yes")
    assert result.exit_code == 0, result.output
    assert deployed.status() == "DELETE_COMPLETE"
    # What is not retained went with the stack; the buckets keep every version and marker, the table its records.
    with pytest.raises(Exception, match=r"NonExistentQueue|QueueDoesNotExist"):
        deployed.sqs.get_queue_attributes(QueueUrl=deployed.queue_url)
    assert deployed.buckets_left() == set(deployed.buckets)
    assert [version_count(deployed.s3, b) for b in deployed.buckets] == [7, 7]
    assert deployed.dynamodb.scan(TableName=deployed.table)["Count"] == 3
    assert f"stack {STACK} deleted" in result.output
    for name in (*deployed.buckets, deployed.table):
        assert name in result.output
    assert f"arn:aws:s3:::{deployed.buckets[0]}" in result.output
    assert f"arn:aws:dynamodb:{REGION}:123456789012:table/{deployed.table}" in result.output
    assert "delete --purge" in result.output

    # Later: the stack is gone, what it kept is still found (by the deleted stack's id) and can be purged.
    again = delete("--yes")
    assert again.exit_code == 0 and "was deleted already" in again.output and deployed.table in again.output
    purged = delete("--purge", "--yes")
    assert purged.exit_code == 0, purged.output
    assert deployed.buckets_left() == set() and deployed.tables_left() == []
    assert "nothing it kept is left" in delete("--purge", "--yes").output


def test_purge_empties_every_version_and_marker_and_deletes_everything(deployed: Deployed) -> None:
    result = delete("--purge", "--yes")
    assert result.exit_code == 0, result.output
    assert deployed.status() == "DELETE_COMPLETE"
    assert deployed.buckets_left() == set()
    assert deployed.tables_left() == []
    assert "deleted with their data" in result.output and "kept" not in result.output


def test_without_yes_and_without_a_terminal_nothing_is_deleted(deployed: Deployed) -> None:
    result = delete("--purge")
    assert result.exit_code == 1
    assert "refusing to delete without confirmation: not run from a terminal; pass --yes" in result.output
    assert deployed.status() == "CREATE_COMPLETE"
    assert [version_count(deployed.s3, b) for b in deployed.buckets] == [7, 7]


def test_the_confirmation_is_asked_and_no_deletes_nothing(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(teardown_command, "interactive", lambda: True)
    refused = delete("--purge", input="n\n")
    assert refused.exit_code == 1 and "ALL its data" in refused.output and "nothing was deleted" in refused.output
    assert deployed.status() == "CREATE_COMPLETE" and deployed.buckets_left() == set(deployed.buckets)
    accepted = delete(input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert deployed.status() == "DELETE_COMPLETE" and deployed.buckets_left() == set(deployed.buckets)


def test_a_stack_deployed_without_retain_is_refused_where_aws_would_fail() -> None:
    """moto's CloudFormation "deletes" a non-empty bucket by leaving it in S3 and reports DELETE_COMPLETE; AWS ends
    in DELETE_FAILED (and deletes the table with its records). The command refuses before DeleteStack."""
    with mock_aws():
        old = Deployed(retain=False)
        result = delete("--yes")
        assert result.exit_code == 1
        assert "was deployed without DeletionPolicy Retain where it holds data" in result.output
        assert "cannot delete it (DELETE_FAILED)" in result.output and "delete its records" in result.output
        assert old.status() == "CREATE_COMPLETE" and old.tables_left() == [old.table]
        purged = delete("--purge", "--yes")
        assert purged.exit_code == 0, purged.output
        assert old.buckets_left() == set() and old.tables_left() == []

    with mock_aws():  # why the check is needed: moto alone is kinder than AWS
        lenient = Deployed(retain=False)
        lenient.cfn.delete_stack(StackName=STACK)
        assert lenient.status() == "DELETE_COMPLETE"
        assert lenient.buckets_left() == set(lenient.buckets)


# ------------------------------------------------------------------------------------------------------ local stack
@pytest.fixture
def local_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """What `asyncinfer local up` leaves for the other commands: its AWS APIs (a moto server here) holding the
    template's buckets and table, its state file, and a process serving it (a stand-in that SIGTERM stops)."""
    port = free_port()
    server = ThreadedMotoServer(port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # The server serves this process's moto backends, which other tests filled: start from nothing.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()
    aws = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")
    s3, dynamodb = aws.client("s3", endpoint_url=url), aws.client("dynamodb", endpoint_url=url)
    buckets = ["asyncinfer-local-inputbucket-1", "asyncinfer-local-outputbucket-1"]
    table = "asyncinfer-local-JobsTable-1"
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "inferenceId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "inferenceId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    fill(s3, dynamodb, buckets, table)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    threading.Thread(target=process.wait, daemon=True).start()  # reaped once stopped, as `local down` expects
    state = {
        "pid": process.pid,
        "aws_endpoint_url": url,
        "sagemaker_runtime_url": "http://127.0.0.1:1",
        "region": "us-east-1",
        "stack_name": "asyncinfer-local",
        "outputs": {"InputBucketName": buckets[0], "OutputBucketName": buckets[1], "JobsTableName": table},
    }
    (tmp_path / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
    monkeypatch.setenv("ASYNCINFER_STATE_DIR", str(tmp_path))
    yield {"s3": s3, "dynamodb": dynamodb, "buckets": buckets, "table": table, "process": process}
    process.kill()
    server.stop()


def test_locally_delete_without_purge_is_refused_and_lists_what_aws_would_keep(local_stack: dict[str, Any]) -> None:
    result = delete("--yes", stack=False)
    assert result.exit_code == 1
    assert "keeps everything in the memory of its moto process" in result.output
    for logical in ("InputBucket", "OutputBucket", "JobsTable", "InputBucketPolicy"):
        assert logical in result.output
    assert local_stack["process"].poll() is None
    assert [version_count(local_stack["s3"], b) for b in local_stack["buckets"]] == [7, 7]


def test_locally_purge_empties_and_deletes_the_data_then_stops_the_stack(local_stack: dict[str, Any]) -> None:
    refused = delete("--purge", stack=False)
    assert refused.exit_code == 1 and "pass --yes" in refused.output
    result = delete("--purge", "--yes", stack=False)
    assert result.exit_code == 0, result.output
    s3, dynamodb = local_stack["s3"], local_stack["dynamodb"]
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} & set(local_stack["buckets"]) == set()
    assert dynamodb.list_tables()["TableNames"] == []
    assert local_stack["process"].wait(timeout=10) is not None
    assert "stack asyncinfer-local deleted" in result.output and "deleted with their data" in result.output


@pytest.mark.slow
def test_a_real_local_stack_is_purged_and_stopped(tmp_path: Path) -> None:
    """`asyncinfer local up --detach`, files with old versions and delete markers, then `delete`: refused without
    --purge, and with it the buckets and the table are gone and the stack is down.

    The stack is a process of its own, started as a user starts it; `delete` and `local down` run in this process
    (CliRunner, the environment the same: the state folder, no AWS_* variables), which has the command imported
    already: a new process would spend most of its time importing it (the one-line errors of a new process are
    tests/integration/test_cli.py's)."""
    import os

    from tests.support import free_port_block

    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env = {**clean, "ASYNCINFER_STATE_DIR": str(tmp_path), "COLUMNS": "250", "AWS_EC2_METADATA_DISABLED": "true"}
    in_process: dict[str, str | None] = {
        **{k: None for k in os.environ if k.startswith("AWS_")},
        "ASYNCINFER_STATE_DIR": str(tmp_path),
        "COLUMNS": "250",
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    def start(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "asyncinfer.cli", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=240, check=False)

    def run(*args: str) -> Result:
        return CliRunner(mix_stderr=False).invoke(main, list(args), env=in_process)

    started = start("local", "up", "--detach", "--port", str(free_port_block()))
    assert started.returncode == 0, started.stderr + started.stdout
    try:
        state = json.loads((tmp_path / STATE_FILE).read_text(encoding="utf-8"))
        aws = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=state["region"])
        s3 = aws.client("s3", endpoint_url=state["aws_endpoint_url"])
        dynamodb = aws.client("dynamodb", endpoint_url=state["aws_endpoint_url"])
        buckets = [state["outputs"]["InputBucketName"], state["outputs"]["OutputBucketName"]]
        table = state["outputs"]["JobsTableName"]
        # Old versions and delete markers in both buckets. The uploads to the input bucket set the pipeline going:
        # its outputs and job records may land while the purge runs, which the purge must cope with.
        fill(s3, dynamodb, buckets, table)

        refused = run("delete", "--yes")
        assert refused.exit_code == 1 and "keeps everything in the memory of its moto process" in refused.stderr
        assert s3.head_bucket(Bucket=buckets[0])

        purged = run("delete", "--purge", "--yes")
        assert purged.exit_code == 0, purged.stderr + purged.stdout
        assert "stack asyncinfer-local deleted" in purged.stdout
        for name in (*buckets, table):
            assert name in purged.stdout
        assert not (tmp_path / STATE_FILE).exists()
        assert "no local stack is up" in run("local", "down").stderr
    finally:
        if (tmp_path / STATE_FILE).exists():
            start("local", "down")

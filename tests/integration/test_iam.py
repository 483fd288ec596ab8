"""IAM on the local stack, enforced as AWS enforces it (issue 11): the pipeline works with every piece acting as its
own role; a role cannot do what it was not given; a grant taken away shows as the AccessDenied AWS would answer; and
every grant of template.yaml the local stack can exercise is needed by something the run did.

One stack for the module; the tests run in order (the last one replays what the others made the stack decide).
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from asyncinfer import target
from asyncinfer.local.iam import client as iam_client
from asyncinfer.local.iam.decisions import SeenCheck
from asyncinfer.local.iam.grant_notes import EXPLANATIONS, NOT_EMULATED, ONLY_WHEN
from asyncinfer.local.iam.identities import RoleCredentials
from asyncinfer.local.iam.mutations import Mutant, mutants, newly_denied
from asyncinfer.local.iam.template_policies import IamSetup
from asyncinfer.local.stack import RunningStack
from asyncinfer.model.demo import make_csv_payload
from tests.support import ResultCollector, local_stack

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with local_stack(tmp_path_factory.mktemp("iam"), retry_delays=(0.2, 0.2), function_timeout=10) as stack:
        yield stack


@pytest.fixture(scope="module")
def results(running: RunningStack) -> Iterator[ResultCollector]:
    collector = ResultCollector(target.local(running.config.state_dir))
    yield collector
    collector.stop()


@pytest.fixture(scope="module")
def seen() -> list[SeenCheck]:
    """What the stack decided, gathered by the tests before each reconfiguration (which starts a new log)."""
    return []


def _as(credentials: RoleCredentials, service: str, running: RunningStack) -> Any:
    session = boto3.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        region_name=running.config.region,
    )
    url = running.sagemaker_runtime_url if service == "sagemaker-runtime" else running.aws_endpoint_url
    return session.client(service, endpoint_url=url, config=NO_RETRIES)  # type: ignore[call-overload]


def _code(call: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def _gather(running: RunningStack, seen: list[SeenCheck]) -> None:
    seen.extend(SeenCheck.from_json(s) for s in iam_client.decisions(running.aws_endpoint_url))


def _reconfigure(running: RunningStack, seen: list[SeenCheck], drop: str | None = None) -> None:
    """Start deciding with the template's policies less the statement ``drop`` ("Policy#Sid"), or all of them."""
    _gather(running, seen)
    iam = running.iam
    setup = IamSetup.from_json(copy.deepcopy(iam.setup.to_json()))
    if drop is not None:
        policy, sid = drop.split("#")
        documents = [doc for role in setup.roles.values() for name, doc in role.policies.items() if name == policy]
        documents += [spec.document for spec in setup.resource_policies if spec.name == policy]
        (document,) = documents
        assert isinstance(document, dict)
        before = len(document["Statement"])
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != sid]
        assert len(document["Statement"]) == before - 1, drop
    credentials = [*iam.functions.values(), *iam.execution.values()]
    iam_client.configure(running.aws_endpoint_url, setup, credentials, "enforce", None)


def _upload(running: RunningStack, name: str, body: bytes) -> str:
    key = f"iam/{uuid.uuid4().hex[:8]}/{name}"
    running.client("s3").put_object(Bucket=running.stack.outputs["InputBucketName"], Key=key, Body=body)  # type: ignore[union-attr]
    return key


def _dead_letters(running: RunningStack, wait: float) -> list[dict[str, Any]]:
    sqs = running.client("sqs")
    url = running.stack.outputs["DeadLetterQueueUrl"]  # type: ignore[union-attr]
    found: list[dict[str, Any]] = []
    deadline = time.time() + wait
    while time.time() < deadline and not found:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_the_pipeline_runs_with_every_piece_acting_as_its_own_role(
    running: RunningStack, results: ResultCollector
) -> None:
    small = _upload(running, "small.csv", make_csv_payload(3))
    large = _upload(running, "large.csv", make_csv_payload(1_200))  # over 128,000 bytes: staged, read by the role
    rejected = _upload(running, "empty.csv", b"")
    # A request nobody claimed (the endpoint invoked directly, as admin) on an input that is not there: the endpoint
    # gets a 404 (its role may list the bucket), the error handler records the unknown job (PutItem).
    admin = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=running.config.region)
    direct = admin.client("sagemaker-runtime", endpoint_url=running.sagemaker_runtime_url).invoke_endpoint_async(
        EndpointName=running.stack.endpoints[0],  # type: ignore[union-attr]
        InputLocation=f"s3://{running.stack.outputs['OutputBucketName']}/staging/none",  # type: ignore[union-attr]
        ContentType="text/csv",
    )
    events = results.wait_for([small, large, rejected, "staging/none"], timeout=60)
    statuses = {key: [e.detail["status"] for e in found] for key, found in events.items()}
    assert statuses == {small: ["COMPLETED"], large: ["COMPLETED"], rejected: ["FAILED"], "staging/none": ["FAILED"]}
    assert direct["InferenceId"]
    report = iam_client.report(running.aws_endpoint_url)
    assert [r["denied"] for r in report["roles"]] == [[] for _ in report["roles"]]
    assert report["unmapped"] == {}
    used = {(r["role"].rsplit("-", 1)[-1], u["action"]) for r in report["roles"] for u in r["used"]}
    assert ("SubmitterFunctionRole", "sagemaker:InvokeEndpointAsync") in used
    assert ("SageMakerExecutionRole", "s3:GetObject") in used  # the model artifact and the staged input
    assert ("SageMakerExecutionRole", "sns:Publish") in used


def test_a_role_cannot_do_what_it_was_not_given(running: RunningStack) -> None:
    iam, outputs = running.iam, running.stack.outputs  # type: ignore[union-attr]
    success, submitter = iam.functions["SuccessHandlerFunction"], iam.functions["SubmitterFunction"]
    (execution,) = iam.execution.values()
    endpoint = running.stack.endpoints[0]  # type: ignore[union-attr]
    runtime = _as(success, "sagemaker-runtime", running)
    assert (
        _code(lambda: runtime.invoke_endpoint_async(EndpointName=endpoint, InputLocation="s3://b/k"))
        == "AccessDeniedException"
    )
    s3 = _as(success, "s3", running)
    assert _code(lambda: s3.put_object(Bucket=outputs["InputBucketName"], Key="x", Body=b"x")) == "AccessDenied"
    endpoint_s3 = _as(execution, "s3", running)
    # The endpoint writes only under output/ and failure/, and never reads the input bucket.
    assert _code(lambda: endpoint_s3.put_object(Bucket=outputs["OutputBucketName"], Key="x/y", Body=b"")) == (
        "AccessDenied"
    )
    assert endpoint_s3.put_object(Bucket=outputs["OutputBucketName"], Key="output/iam-probe", Body=b"")["ETag"]
    assert _code(lambda: endpoint_s3.get_object(Bucket=outputs["InputBucketName"], Key="x")) == "AccessDenied"
    table = _as(submitter, "dynamodb", running)
    key = {"inferenceId": {"S": "nobody"}}
    assert _code(lambda: table.delete_item(TableName=outputs["JobsTableName"], Key=key)) == "AccessDeniedException"
    events = _as(success, "events", running)
    entry = {"Source": "x", "DetailType": "x", "Detail": "{}", "EventBusName": "default"}
    assert _code(lambda: events.put_events(Entries=[entry])) == "AccessDeniedException"

    # Paths that are not AWS's are not a way around it: moto's admin API, the local stack's private paths, and a
    # request to the endpoint signed for another service.
    def sts_at(url: str) -> Any:
        return boto3.Session(
            aws_access_key_id=success.access_key_id,
            aws_secret_access_key=success.secret_access_key,
            aws_session_token=success.session_token,
            region_name=running.config.region,
        ).client("sts", endpoint_url=url, config=NO_RETRIES)

    assert _code(lambda: sts_at(running.aws_endpoint_url + "/moto-api/reset").get_caller_identity()) == "AccessDenied"
    assert running.client("s3").head_bucket(Bucket=outputs["InputBucketName"])  # nothing was reset
    with pytest.raises(ResponseParserError, match="private paths are not for a role"):  # a 403 in JSON, not STS XML
        sts_at(running.aws_endpoint_url + "/_asyncinfer/iam/report").get_caller_identity()
    runtime_path = f"{running.sagemaker_runtime_url}/endpoints/{endpoint}/async-invocations"
    assert _code(lambda: sts_at(runtime_path).get_caller_identity()) == "AccessDenied"
    forged = RoleCredentials(success.role_arn, success.session_name, success.access_key_id, "s", "wrong-token")
    assert _code(lambda: _as(forged, "dynamodb", running).list_tables()) == "UnrecognizedClientException"
    stranger = RoleCredentials(success.role_arn, "x", "ASIAUNKNOWNKEY00000", "s", "t")
    assert _code(lambda: _as(stranger, "s3", running).list_buckets()) == "InvalidAccessKeyId"


def test_a_missing_input_is_a_404_only_with_list_bucket(running: RunningStack, seen: list[SeenCheck]) -> None:
    s3 = _as(running.iam.functions["SubmitterFunction"], "s3", running)
    key = _upload(running, "gone.csv", b"1,2,3\n")
    bucket = running.stack.outputs["InputBucketName"]  # type: ignore[union-attr]
    version = running.client("s3").head_object(Bucket=bucket, Key=key)["VersionId"]
    running.client("s3").delete_object(Bucket=bucket, Key=key, VersionId=version)

    def read() -> object:
        return s3.get_object(Bucket=bucket, Key=key, VersionId=version, Range="bytes=0-10")

    assert _code(read) in ("NoSuchVersion", "NoSuchKey")  # a defined FAILED outcome for the submitter
    _reconfigure(running, seen, drop="SubmitterInputPolicy/submitter-input-and-endpoint#TellMissingInputsApart")
    try:
        assert _code(read) == "AccessDenied"  # indistinguishable from "not allowed": retried, then dead-lettered
    finally:
        _reconfigure(running, seen)


def test_an_invoke_the_role_may_not_make_dead_letters_with_aws_access_denied(
    running: RunningStack, seen: list[SeenCheck]
) -> None:
    _dead_letters(running, wait=0.5)  # nothing left over
    _reconfigure(running, seen, drop="SubmitterInputPolicy/submitter-input-and-endpoint#InvokeEndpoint")
    try:
        key = _upload(running, "denied.csv", make_csv_payload(1))
        records = _dead_letters(running, wait=60)
    finally:
        _reconfigure(running, seen)
    (record,) = records  # the submitter's on-failure record, sent with its own role (OnFailureDestination)
    error = record["responsePayload"]
    assert key.rsplit("/", 1)[-1] in json.dumps(record["requestPayload"])
    assert "AccessDeniedException" in error["errorMessage"]
    assert "sagemaker:InvokeEndpointAsync" in error["errorMessage"]


def test_a_queue_policy_without_the_rule_sends_result_events_to_the_dead_letter_queue(
    running: RunningStack, results: ResultCollector, seen: list[SeenCheck]
) -> None:
    _reconfigure(running, seen, drop="ResultsQueuePolicy#AllowResultsRule")
    try:
        key = _upload(running, "undeliverable.csv", make_csv_payload(1))
        records = _dead_letters(running, wait=60)
    finally:
        _reconfigure(running, seen)
    (event,) = records  # EventBridge's dead letter: the event itself, allowed by the DLQ's policy for the rule
    assert event["detail"]["status"] == "COMPLETED"
    assert event["detail"]["inputLocation"].endswith(key.rsplit("/", 1)[-1])
    assert results.events_for(key) == []


def _explained(mutant: Mutant, statement_used: bool) -> bool:
    """A grant the run did not need is explained: a statement the run never used, by a reason that says the local
    stack cannot exercise it or when it is used; a part of a statement the run used, by a reason naming that part."""
    explanation = EXPLANATIONS.get(str(mutant.statement), "")
    if not statement_used:
        return explanation.startswith((NOT_EMULATED, ONLY_WHEN))
    part = mutant.action or mutant.resource
    return re.search(rf"{re.escape(part)}(?![A-Za-z])", explanation) is not None


def test_every_exercisable_grant_is_needed_by_something_the_run_did(
    running: RunningStack, seen: list[SeenCheck]
) -> None:
    _gather(running, seen)
    setup = running.iam.setup
    used_statements = {ref for entry in seen if entry.allowed for ref, _ in entry.matched_actions}
    needed: dict[str, str] = {}
    unneeded: list[str] = []
    for mutant in mutants(setup):
        denied = newly_denied(setup, seen, mutant)
        if denied:
            needed[str(mutant)] = f"{denied[0].principal.label}: {denied[0].check.action} on {denied[0].check.resource}"
        elif not _explained(mutant, str(mutant.statement) in used_statements):
            unneeded.append(str(mutant))
    print("\n".join(f"{grant}: {what}" for grant, what in sorted(needed.items())))  # shown with -s
    assert unneeded == []
    # What the run proved: each of these grants, removed alone, denies something specific the pipeline did.
    for proved in (
        "SubmitterInputPolicy/submitter-input-and-endpoint#InvokeEndpoint without sagemaker:InvokeEndpointAsync",
        "SubmitterInputPolicy/submitter-input-and-endpoint#StageLargeInputs without s3:PutObject",
        "SubmitterInputPolicy/submitter-input-and-endpoint#TellMissingInputsApart without s3:ListBucket",
        "SageMakerExecutionPolicy/sagemaker-async-endpoint#ReadStagedInputs without s3:GetObject",
        "SageMakerExecutionPolicy/sagemaker-async-endpoint#ReadModelArtifacts without s3:GetObject",
        "SubmitterFunctionRole/submitter#OnFailureDestination without sqs:SendMessage",
        "ErrorHandlerFunctionRole/error-handler#Jobs without dynamodb:PutItem",  # the direct, unclaimed request
        "SageMakerExecutionPolicy/sagemaker-async-endpoint#ListOutputBucket without s3:ListBucket",
        "SubmitterFunctionInputObjectCreatedPermission#SubmitterFunctionInputObjectCreatedPermission without "
        "lambda:InvokeFunction",
        "ResultsQueuePolicy#AllowResultsRule without sqs:SendMessage",
        "DeadLetterQueuePolicy#AllowEventBridgeDeadLettersFromResultsRule without sqs:SendMessage",
    ):
        assert proved in needed, proved
    # Each resource of the statements naming several is needed too (outputs and failures, both topics).
    for statement in ("#WriteOutputsAndFailures without arn:", "#PublishNotifications without arn:"):
        assert sum(statement in grant for grant in needed) == 2, statement

"""asyncinfer deploy refuses an InstanceType change while the deployed stack has autoscaling on (AWS would refuse
the UpdateEndpoint and roll the stack back), reading the stack's parameters with DescribeStacks (against moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from asyncinfer import deploy as deploying
from asyncinfer import instance_type
from asyncinfer.cli import main

REGION = "eu-west-1"
TEMPLATE = json.dumps(
    {
        "Parameters": {
            "InstanceType": {"Type": "String", "Default": "ml.m5.large"},
            "AutoScaling": {"Type": "String", "Default": "enabled"},
        },
        "Resources": {"Handle": {"Type": "AWS::SNS::Topic"}},
    }
)


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def _deployed(session: boto3.Session, **parameters: str) -> None:
    session.client("cloudformation").create_stack(
        StackName="s1",
        TemplateBody=TEMPLATE,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )


def test_the_deployed_parameters_are_read_and_a_missing_stack_is_none(session: boto3.Session) -> None:
    assert instance_type.deployed_parameters(session, "s1") is None
    _deployed(session, InstanceType="ml.c5.xlarge")
    assert instance_type.deployed_parameters(session, "s1") == {
        "InstanceType": "ml.c5.xlarge",
        "AutoScaling": "enabled",
    }


@pytest.mark.parametrize(
    ("deployed", "overrides", "refused"),
    [
        ({"InstanceType": "ml.m5.large", "AutoScaling": "enabled"}, {"InstanceType": "ml.m5.xlarge"}, True),
        # Turning autoscaling off in the same update does not help: CloudFormation updates the endpoint first.
        (
            {"InstanceType": "ml.m5.large", "AutoScaling": "enabled"},
            {"InstanceType": "ml.m5.xlarge", "AutoScaling": "disabled"},
            True,
        ),
        ({"InstanceType": "ml.m5.large"}, {"InstanceType": "ml.m5.xlarge"}, True),  # deployed before the parameter
        ({"InstanceType": "ml.m5.large", "AutoScaling": "disabled"}, {"InstanceType": "ml.m5.xlarge"}, False),
        ({"InstanceType": "ml.m5.large", "AutoScaling": "enabled"}, {"InstanceType": "ml.m5.large"}, False),
        ({"InstanceType": "ml.m5.large", "AutoScaling": "enabled"}, {"MaxInstances": "4"}, False),  # type kept
        (None, {"InstanceType": "ml.m5.xlarge"}, False),  # a new stack
    ],
)
def test_refusal(deployed: dict[str, str] | None, overrides: dict[str, str], refused: bool) -> None:
    assert (instance_type.refusal("s1", deployed, overrides) is not None) is refused


def _deploy(monkeypatch: pytest.MonkeyPatch, *parameters: str) -> tuple[int, str, list[object]]:
    ran: list[object] = []
    monkeypatch.setattr(deploying, "run", lambda steps, cwd: ran.append(steps))
    arguments = ["--stack-name", "s1", "--region", REGION, "deploy", "--model-data-url", "s3://b/m.tar.gz"]
    for parameter in parameters:
        arguments += ["--parameter", parameter]
    result = CliRunner().invoke(main, arguments)
    return result.exit_code, result.output, ran


def test_cli_refuses_a_new_instance_type_under_autoscaling_naming_the_three_deploys(
    session: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deployed(session, InstanceType="ml.m5.large")
    code, output, ran = _deploy(monkeypatch, "InstanceType=ml.m5.xlarge")
    assert (code, ran) == (1, [])
    assert "ml.m5.large to ml.m5.xlarge" in output
    assert "AutoScaling=disabled" in output and "InstanceType=ml.m5.xlarge" in output
    assert "AutoScaling=enabled" in output


def test_cli_deploys_the_three_steps(session: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    _deployed(session, InstanceType="ml.m5.large")
    cloudformation = session.client("cloudformation")
    for parameters in (["AutoScaling=disabled"], ["AutoScaling=disabled", "InstanceType=ml.m5.xlarge"]):
        code, output, ran = _deploy(monkeypatch, *parameters)
        assert (code, len(ran)) == (0, 1), output
        # What sam deploy would have done (moto cannot run the SAM CLI).
        cloudformation.update_stack(
            StackName="s1",
            TemplateBody=TEMPLATE,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (p.split("=") for p in parameters)],
        )
    code, output, ran = _deploy(monkeypatch, "AutoScaling=enabled")
    assert (code, len(ran)) == (0, 1), output

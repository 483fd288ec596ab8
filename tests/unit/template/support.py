"""What the template tests share: template.yaml as plain JSON and as the CloudFormation the SAM transform makes of it,
a small resolver of its intrinsics, and readers of its IAM statements and of docs/design.md.

The resolver evaluates Conditions, Fn::If, Fn::Sub, Fn::Select and friends for given parameter values, so the
parameter-dependent parts (image, model artifact, framework variables, inline responses, input filter) are checked
with real values rather than by reading the !If tree.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import samples
from tests.samples import ROOT

SAMCONFIG = ROOT / "samconfig.toml"
DESIGN = ROOT / "docs" / "design.md"
LAYER_REQUIREMENTS = ROOT / "layers" / "shared" / "requirements.txt"
# Present next to the repository on the project's machines and in CI, but nothing depends on it but one test.
# A copy of the public registry list (shared/reference), kept with the tests so the comparison always runs.
REGISTRIES = ROOT / "tests" / "unit" / "data" / "sagemaker-xgboost-1.7-1-registries.json"
BIN = Path(sys.executable).parent

FUNCTIONS = {
    "SubmitterFunction": ("functions/submitter", "submitter.lambda_handler"),
    "SuccessHandlerFunction": ("functions/success_handler", "success_handler.lambda_handler"),
    "ErrorHandlerFunction": ("functions/error_handler", "error_handler.lambda_handler"),
}
# docs/design.md names functions by role in its environment table.
DESIGN_FUNCTION_NAMES = {
    "submitter": "SubmitterFunction",
    "success handler": "SuccessHandlerFunction",
    "error handler": "ErrorHandlerFunction",
}
TOPIC_OF_HANDLER = {"SuccessHandlerFunction": "SuccessTopic", "ErrorHandlerFunction": "ErrorTopic"}
OUTPUTS = {
    "InputBucketName",
    "OutputBucketName",
    "SuccessTopicArn",
    "ErrorTopicArn",
    "EndpointName",
    "JobsTableName",
    "EventBusName",
    "ResultsQueueUrl",
    "DeadLetterQueueUrl",
}
# Actions that support no resource-level permission: the only ones allowed on "*".
RESOURCELESS_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "cloudwatch:PutMetricData",
    "ecr:GetAuthorizationToken",
}
COMMON_FUNCTION_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "sqs:SendMessage",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "events:PutEvents",
}
FUNCTION_ACTIONS = {
    "SubmitterFunction": COMMON_FUNCTION_ACTIONS
    | {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:PutObject", "sagemaker:InvokeEndpointAsync"},
    # No S3 action: the submitter's claim records the input's metadata, so the handlers never read a payload.
    "SuccessHandlerFunction": COMMON_FUNCTION_ACTIONS,
    "ErrorHandlerFunction": COMMON_FUNCTION_ACTIONS,
}
DLQ_ARN = {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def load_template() -> dict[str, Any]:
    """template.yaml as plain dicts and lists (intrinsic tags become their long form)."""
    loaded: dict[str, Any] = json.loads(json.dumps(samples.load_template()))
    return loaded


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def sam_transform(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation the SAM transform makes of the template, offline (local code paths become S3 URIs)."""
    from samtranslator.translator.transform import transform

    fragment = json.loads(json.dumps(template))
    for resource in fragment["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = "s3://bucket/" + properties[key].strip("/")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_DEFAULT_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
        transformed: dict[str, Any] = transform(fragment, {}, _NoManagedPolicies())
    return transformed


_NO_VALUE = object()
SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class Resolver:
    """Evaluates the template's intrinsics for given parameter values.

    Parameters, pseudo parameters, Conditions, Fn::If, Fn::Sub, Fn::Select, Fn::Split, Fn::Join, Fn::FindInMap and
    AWS::NoValue are evaluated; a reference to a resource becomes "<Name>" or "<Name.Attribute>".
    """

    def __init__(self, template: dict[str, Any], region: str = "us-east-1", **parameters: str) -> None:
        self.template = template
        self.values: dict[str, str] = {
            name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()
        }
        unknown = set(parameters) - set(self.values)
        assert not unknown, f"not parameters of the template: {unknown}"
        self.values.update(parameters)
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
        self.values.update(
            {
                "AWS::Region": region,
                "AWS::AccountId": "123456789012",
                "AWS::Partition": partition,
                "AWS::URLSuffix": suffix,
                "AWS::StackName": "my-stack",
            }
        )

    def condition(self, name: str) -> bool:
        return self._truth(self.template["Conditions"][name])

    def _truth(self, node: Any) -> bool:
        ((function, argument),) = node.items()
        if function == "Fn::Equals":
            left, right = (self.resolve(x) for x in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._truth(argument[0])
        if function == "Fn::Or":
            return any(self._truth(x) for x in argument)
        if function == "Fn::And":
            return all(self._truth(x) for x in argument)
        if function == "Condition":
            return self.condition(argument)
        raise AssertionError(f"unsupported condition function {function}")

    def _name(self, name: str) -> str:
        if name in self.values:
            return self.values[name]
        assert name.split(".", maxsplit=1)[0] in self.template["Resources"], f"unknown reference {name}"
        return f"<{name}>"

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            return str(variables[name]) if name in variables else self._name(name)

        return SUB_VARIABLE.sub(replace, text).replace("${!", "${")

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [r for r in (self.resolve(x) for x in node) if r is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref":
                return _NO_VALUE if argument == "AWS::NoValue" else self._name(argument)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Sub":
                if isinstance(argument, str):
                    return self._sub(argument, {})
                text, variables = argument
                return self._sub(text, {k: self.resolve(v) for k, v in variables.items()})
            if key == "Fn::GetAtt":
                return f"<{argument[0]}.{argument[1]}>"
            if key == "Fn::Select":
                return self.resolve(argument[1])[int(self.resolve(argument[0]))]
            if key == "Fn::Split":
                return str(self.resolve(argument[1])).split(argument[0])
            if key == "Fn::Join":
                return argument[0].join(str(x) for x in self.resolve(argument[1]))
            if key == "Fn::FindInMap":
                mapping, first, second = (self.resolve(x) for x in argument)
                return self.template["Mappings"][mapping][first][second]
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in as_list(document["Statement"]) if isinstance(s, dict)]


def role_statements(cfn: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Every statement granted to a role: its inline policies and the AWS::IAM::Policy resources attached to it."""
    resources = cfn["Resources"]
    role = resources[role_id]["Properties"]
    found = [s for policy in role.get("Policies", []) for s in statements_of(policy["PolicyDocument"])]
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            found += statements_of(resource["Properties"]["PolicyDocument"])
    return found


def statements_in_branches(statement: Any) -> Iterator[dict[str, Any]]:
    """A statement, or both branches of a statement chosen by Fn::If."""
    if isinstance(statement, dict) and set(statement) == {"Fn::If"}:
        for branch in statement["Fn::If"][1:]:
            yield from statements_in_branches(branch)
    elif isinstance(statement, dict) and statement != {"Ref": "AWS::NoValue"}:
        yield statement


def function_role(cfn: dict[str, Any], function_id: str) -> str:
    role = cfn["Resources"][function_id]["Properties"]["Role"]
    assert set(role) == {"Fn::GetAtt"}, f"{function_id} must use its own role from this template"
    role_id: str = role["Fn::GetAtt"][0]
    return role_id


def design_section(heading: str) -> str:
    text = DESIGN.read_text(encoding="utf-8")
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def backticked(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def of_type(cfn: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in cfn["Resources"].items() if r["Type"] == type_name}


def depends_on(resource: dict[str, Any]) -> list[str]:
    return as_list(resource.get("DependsOn", []))


def run(command: list[str | Path], timeout: float = 600, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    env.update(kwargs.pop("env", {}))
    return subprocess.run(
        [str(c) for c in command],
        cwd=kwargs.pop("cwd", ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )

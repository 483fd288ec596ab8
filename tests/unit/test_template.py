"""Tests of template.yaml and samconfig.toml.

Fast tests read the template (cfn-lint's YAML loader understands the short intrinsic tags) and the CloudFormation
that the SAM transform makes of it (samtranslator, offline), and check what the issue and docs/design.md require.
A small resolver evaluates Conditions, Fn::If, Fn::Sub, Fn::Select and friends for given parameter values, so the
parameter-dependent parts (image, model artifact, framework variables, inline responses, input filter) are checked
with real values rather than by reading the !If tree.

Slow tests run the tools themselves: cfn-lint, `sam validate --lint`, checkov (its own environment: CHECKOV, default
.venv-checkov/bin/checkov) and `sam build` into a temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
DESIGN = ROOT / "docs" / "design.md"
LAYER_REQUIREMENTS = ROOT / "layers" / "shared" / "requirements.txt"
# Present next to the repository on the project's machines and in CI, but nothing depends on it but one test.
# A copy of the public registry list (shared/reference), kept with the tests so the comparison always runs.
REGISTRIES = Path(__file__).parent / "data" / "sagemaker-xgboost-1.7-1-registries.json"
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
    | {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "sagemaker:InvokeEndpointAsync"},
    "SuccessHandlerFunction": COMMON_FUNCTION_ACTIONS,
    "ErrorHandlerFunction": COMMON_FUNCTION_ACTIONS,
}
DLQ_ARN = {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


# ----------------------------------------------------------------------------------------------------------- helpers
def load_template() -> dict[str, Any]:
    """template.yaml as plain dicts and lists (intrinsic tags become their long form)."""
    loaded: dict[str, Any] = json.loads(json.dumps(cfn_yaml.load(str(TEMPLATE))))
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
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


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

        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")

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


# ----------------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def cfn(raw: dict[str, Any]) -> dict[str, Any]:
    return sam_transform(raw)


@pytest.fixture(scope="module")
def resources(cfn: dict[str, Any]) -> dict[str, Any]:
    resources_: dict[str, Any] = cfn["Resources"]
    return resources_


# ----------------------------------------------------------------------------------------------------------- contract
def test_logical_ids_of_the_design_exist(raw: dict[str, Any]) -> None:
    section = design_section("Logical IDs")
    ids = backticked(section.split("Outputs:")[0])
    assert len(ids) >= 20
    missing = [i for i in ids if i not in raw["Resources"]]
    assert not missing, f"docs/design.md names resources the template lacks: {missing}"


def test_outputs_are_exactly_the_public_contract(raw: dict[str, Any]) -> None:
    documented = set(backticked(design_section("Logical IDs").split("Outputs:")[1]))
    assert documented == OUTPUTS
    assert set(raw["Outputs"]) == OUTPUTS
    expected_values = {
        "InputBucketName": {"Ref": "InputBucket"},
        "OutputBucketName": {"Ref": "OutputBucket"},
        "SuccessTopicArn": {"Ref": "SuccessTopic"},
        "ErrorTopicArn": {"Ref": "ErrorTopic"},
        "EndpointName": {"Fn::GetAtt": ["Endpoint", "EndpointName"]},
        "JobsTableName": {"Ref": "JobsTable"},
        "EventBusName": {"Ref": "ResultsBus"},
        "ResultsQueueUrl": {"Ref": "ResultsQueue"},
        "DeadLetterQueueUrl": {"Ref": "DeadLetterQueue"},
    }
    assert {name: output["Value"] for name, output in raw["Outputs"].items()} == expected_values


def test_function_environment_matches_the_design(resources: dict[str, Any]) -> None:
    expected: dict[str, set[str]] = {function: set() for function in FUNCTIONS}
    for line in design_section("Environment variables").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        variable = cells[0].strip("`")
        for who in (w.strip() for w in cells[1].split(",")):
            targets = FUNCTIONS if who == "all" else [DESIGN_FUNCTION_NAMES[who]]
            for function in targets:
                expected[function].add(variable)
    assert all(expected.values()), "could not read the environment table of docs/design.md"
    for function in FUNCTIONS:
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert set(variables) == expected[function], function
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "AsyncInferencePipeline"
        assert variables["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}
        assert variables["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
        assert variables["JOBS_TABLE_NAME"] == {"Ref": "JobsTable"}
        assert variables["EVENT_BUS_NAME"] == {"Ref": "ResultsBus"}
        # The functions get the endpoint's name without depending on it: it must be the name the endpoint has.
        assert variables["ENDPOINT_NAME"] == resources["Endpoint"]["Properties"]["EndpointName"]
    assert resources["SuccessHandlerFunction"]["Properties"]["Environment"]["Variables"]["SUCCESS_TOPIC_ARN"] == {
        "Ref": "SuccessTopic"
    }
    assert resources["ErrorHandlerFunction"]["Properties"]["Environment"]["Variables"]["ERROR_TOPIC_ARN"] == {
        "Ref": "ErrorTopic"
    }
    submitter = resources["SubmitterFunction"]["Properties"]["Environment"]["Variables"]
    assert submitter["REQUEST_TTL_SECONDS"] == {"Ref": "RequestTTLSeconds"}
    assert submitter["INVOCATION_TIMEOUT_SECONDS"] == {"Ref": "InvocationTimeoutSeconds"}
    assert submitter["DEFAULT_CONTENT_TYPE"] == {"Ref": "DefaultContentType"}
    assert submitter["DEFAULT_ACCEPT"] == {"Ref": "DefaultAccept"}


def test_functions_runtime_tracing_logging_and_layer(raw: dict[str, Any], resources: dict[str, Any]) -> None:
    layer_ids = list(of_type({"Resources": resources}, "AWS::Lambda::LayerVersion"))
    assert len(layer_ids) == 1, "exactly one layer"
    assert set(of_type({"Resources": resources}, "AWS::Lambda::Function")) == set(FUNCTIONS)
    for function, (code_uri, handler) in FUNCTIONS.items():
        source = raw["Resources"][function]["Properties"]
        assert source["CodeUri"].rstrip("/") == code_uri
        assert source["Handler"] == handler
        properties = resources[function]["Properties"]
        assert properties["Runtime"] == "python3.13"
        assert properties["Architectures"] == ["arm64"]
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert properties["LoggingConfig"]["LogFormat"] == "JSON"
        assert properties["Timeout"] == 30
        assert properties["MemorySize"] == 256
        assert properties["Layers"] == [{"Ref": layer_ids[0]}]
        # The function logs to a log group of this stack that has a retention.
        log_group = properties["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[log_group]["Type"] == "AWS::Logs::LogGroup"
        assert resources[log_group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_shared_layer(raw: dict[str, Any]) -> None:
    layer = raw["Resources"]["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/shared"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    pins = [line.strip() for line in LAYER_REQUIREMENTS.read_text().splitlines() if line.strip()[:1].isalpha()]
    assert any(re.fullmatch(r"aws-lambda-powertools(\[[a-z,]+\])?==[0-9.]+", pin) for pin in pins), pins


# ----------------------------------------------------------------------------------------------------------- SNS
@pytest.mark.parametrize("function", sorted(TOPIC_OF_HANDLER))
def test_subscription_filter_policy_drops_test_notification(resources: dict[str, Any], function: str) -> None:
    subscriptions = [
        r["Properties"]
        for r in of_type({"Resources": resources}, "AWS::SNS::Subscription").values()
        if r["Properties"]["Endpoint"] == {"Fn::GetAtt": [function, "Arn"]}
    ]
    assert len(subscriptions) == 1
    (subscription,) = subscriptions
    assert subscription["Protocol"] == "lambda"
    assert subscription["TopicArn"] == {"Ref": TOPIC_OF_HANDLER[function]}
    assert subscription["FilterPolicyScope"] == "MessageBody"
    policy = subscription["FilterPolicy"]
    assert set(policy) == {"eventName"}
    alternatives = sorted(json.dumps(a, sort_keys=True) for a in policy["eventName"])
    assert alternatives == sorted(
        json.dumps(a, sort_keys=True) for a in ({"anything-but": ["TestNotification"]}, {"exists": False})
    )


def test_filter_policy_delivers_everything_but_test_notification(resources: dict[str, Any]) -> None:
    """Runs the transformed filter policies through moto's SNS (what the local stack uses): validity and effect."""
    import boto3
    from moto import mock_aws

    messages = {
        "TestNotification": {"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "TestNotification"},
        "InferenceResult": {"eventSource": "aws:sagemaker", "eventName": "InferenceResult", "inferenceId": "a"},
        "unexpected": {"eventSource": "aws:sagemaker", "eventName": "SomethingNew", "inferenceId": "b"},
        "no-eventName": {"eventSource": "aws:sagemaker", "inferenceId": "c"},
    }
    for subscription in of_type({"Resources": resources}, "AWS::SNS::Subscription").values():
        properties = subscription["Properties"]
        with mock_aws():
            sns = boto3.client("sns", region_name="us-east-1")
            sqs = boto3.client("sqs", region_name="us-east-1")
            topic = sns.create_topic(Name="topic")["TopicArn"]
            queue = sqs.create_queue(QueueName="queue")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(
                TopicArn=topic,
                Protocol="sqs",
                Endpoint=queue_arn,
                Attributes={
                    "RawMessageDelivery": "true",
                    "FilterPolicyScope": properties["FilterPolicyScope"],
                    "FilterPolicy": json.dumps(properties["FilterPolicy"]),
                },
            )
            for message in messages.values():
                sns.publish(TopicArn=topic, Message=json.dumps(message))
            received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
            delivered = {json.loads(m["Body"]).get("inferenceId") for m in received}
        assert delivered == {"a", "b", "c"}, "only TestNotification may be filtered out"


def test_every_subscription_redrives_to_the_dead_letter_queue(resources: dict[str, Any]) -> None:
    subscriptions = of_type({"Resources": resources}, "AWS::SNS::Subscription")
    assert len(subscriptions) == 2
    for name, subscription in subscriptions.items():
        assert subscription["Properties"]["RedrivePolicy"] == {"deadLetterTargetArn": DLQ_ARN}, name


def test_dead_letter_queue_admits_only_this_stacks_senders(resources: dict[str, Any]) -> None:
    (policy,) = [
        r["Properties"]
        for r in of_type({"Resources": resources}, "AWS::SQS::QueuePolicy").values()
        if r["Properties"]["Queues"] == [{"Ref": "DeadLetterQueue"}]
    ]
    allows = {s["Principal"]["Service"]: s for s in statements_of(policy["PolicyDocument"]) if s["Effect"] == "Allow"}
    assert set(allows) == {"sns.amazonaws.com", "events.amazonaws.com"}
    for statement in allows.values():
        assert statement["Action"] == "sqs:SendMessage"
        assert statement["Resource"] == DLQ_ARN
    sns_sources = allows["sns.amazonaws.com"]["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(sns_sources, key=json.dumps) == [{"Ref": "ErrorTopic"}, {"Ref": "SuccessTopic"}]
    assert allows["events.amazonaws.com"]["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["ResultsRule", "Arn"]
    }


# ----------------------------------------------------------------------------------------------------------- Lambda
def test_every_function_has_an_on_failure_destination(resources: dict[str, Any]) -> None:
    configs = {
        r["Properties"]["FunctionName"]["Ref"]: r["Properties"]
        for r in of_type({"Resources": resources}, "AWS::Lambda::EventInvokeConfig").values()
    }
    assert set(configs) == set(FUNCTIONS)
    for function, config in configs.items():
        assert config["Qualifier"] == "$LATEST"
        assert config["MaximumRetryAttempts"] == 2
        assert 60 <= config["MaximumEventAgeInSeconds"] <= 21600
        assert config["DestinationConfig"]["OnFailure"]["Destination"] == DLQ_ARN, function
        # Lambda sends to the destination with the function's role.
        sends = [
            s
            for s in role_statements({"Resources": resources}, function_role({"Resources": resources}, function))
            if "sqs:SendMessage" in as_list(s["Action"])
        ]
        assert [s["Resource"] for s in sends] == [DLQ_ARN], function


def test_input_bucket_triggers_the_submitter_and_nothing_else_does(resources: dict[str, Any]) -> None:
    buckets = of_type({"Resources": resources}, "AWS::S3::Bucket")
    assert set(buckets) == {"InputBucket", "OutputBucket"}
    assert "NotificationConfiguration" not in buckets["OutputBucket"]["Properties"]
    notifications = buckets["InputBucket"]["Properties"]["NotificationConfiguration"]
    assert set(notifications) == {"LambdaConfigurations"}
    (configuration,) = notifications["LambdaConfigurations"]
    assert configuration["Function"] == {"Fn::GetAtt": ["SubmitterFunction", "Arn"]}
    assert configuration["Event"] == "s3:ObjectCreated:*"
    # Who may invoke which function.
    principals = {
        (p["Properties"]["FunctionName"]["Ref"], p["Properties"]["Principal"])
        for p in of_type({"Resources": resources}, "AWS::Lambda::Permission").values()
    }
    assert principals == {
        ("SubmitterFunction", "s3.amazonaws.com"),
        ("SuccessHandlerFunction", "sns.amazonaws.com"),
        ("ErrorHandlerFunction", "sns.amazonaws.com"),
    }


@pytest.mark.parametrize(
    ("prefix", "suffix", "rules"),
    [
        ("", "", None),
        ("incoming/", "", [{"Name": "prefix", "Value": "incoming/"}]),
        ("", ".csv", [{"Name": "suffix", "Value": ".csv"}]),
        ("incoming/", ".csv", [{"Name": "prefix", "Value": "incoming/"}, {"Name": "suffix", "Value": ".csv"}]),
    ],
)
def test_input_filter_follows_prefix_and_suffix(
    raw: dict[str, Any], resources: dict[str, Any], prefix: str, suffix: str, rules: list[dict[str, str]] | None
) -> None:
    resolver = Resolver(raw, InputPrefix=prefix, InputSuffix=suffix)
    (configuration,) = resolver.resolve(resources["InputBucket"]["Properties"]["NotificationConfiguration"])[
        "LambdaConfigurations"
    ]
    assert configuration.get("Filter") == (None if rules is None else {"S3Key": {"Rules": rules}})
    # The submitter and SageMaker may read exactly the objects that can trigger an inference.
    for role in ("SubmitterFunctionRole", "SageMakerExecutionRole"):
        reads = [
            s
            for s in resolver.resolve(role_statements({"Resources": resources}, role))
            if "s3:GetObject" in as_list(s["Action"]) and "InputBucket" in json.dumps(s["Resource"])
        ]
        assert [r["Resource"] for r in reads] == [f"<InputBucket.Arn>/{prefix}*"], role


# ----------------------------------------------------------------------------------------------------------- IAM
@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_function_role_grants_exactly_the_actions_it_uses(resources: dict[str, Any], function: str) -> None:
    cfn = {"Resources": resources}
    role_id = function_role(cfn, function)
    role = resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role, "managed policies grant on '*': list the actions instead"
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    statements = role_statements(cfn, role_id)
    granted = {action for s in statements for action in as_list(s["Action"])}
    assert granted == FUNCTION_ACTIONS[function]
    own_log_group = resources[function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    expected_resource = {
        "logs": {"Fn::GetAtt": [own_log_group, "Arn"]},
        "sqs": DLQ_ARN,
        "dynamodb": {"Fn::GetAtt": ["JobsTable", "Arn"]},
        "events": {"Fn::GetAtt": ["ResultsBus", "Arn"]},
        "sagemaker": {"Ref": "Endpoint"},
        "s3": {"Fn::Sub": "${InputBucket.Arn}/${InputPrefix}*"},
        "xray": "*",
    }
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        for action in as_list(statement["Action"]):
            # ListBucket is a bucket-level action: its resource is the bucket, not objects in it.
            expected = {"Fn::GetAtt": ["InputBucket", "Arn"]} if action == "s3:ListBucket" else None
            assert statement["Resource"] == (expected or expected_resource[action.split(":")[0]]), action


def test_no_statement_of_the_stack_grants_on_star_what_supports_a_resource(resources: dict[str, Any]) -> None:
    documents: list[dict[str, Any]] = []
    for resource in resources.values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in properties.get("Policies", [])]
            assert "ManagedPolicyArns" not in properties
        if resource["Type"] == "AWS::IAM::Policy":
            documents.append(properties["PolicyDocument"])
    checked = 0
    for document in documents:
        for branch in (b for s in as_list(document["Statement"]) for b in statements_in_branches(s)):
            checked += 1
            actions = as_list(branch["Action"])
            assert not any("*" in action for action in actions), f"wildcard action in {branch}"
            if "*" in as_list(branch["Resource"]):
                assert set(actions) <= RESOURCELESS_ACTIONS, branch
    assert checked > 20


def test_sagemaker_role_is_scoped_to_this_stack(raw: dict[str, Any], resources: dict[str, Any]) -> None:
    role = resources["SageMakerExecutionRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    assert "Policies" not in role, "all permissions in SageMakerExecutionPolicy, which the endpoint waits for"
    policy = resources["SageMakerExecutionPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "SageMakerExecutionRole"}]
    statements = {s["Sid"]: s for s in Resolver(raw).resolve(policy["PolicyDocument"])["Statement"]}
    assert statements["PublishNotifications"]["Action"] == "sns:Publish"
    assert statements["PublishNotifications"]["Resource"] == ["<SuccessTopic>", "<ErrorTopic>"]
    assert statements["ReadInputs"]["Resource"] == "<InputBucket.Arn>/*"  # InputPrefix "" by default
    assert statements["WriteOutputsAndFailures"]["Resource"] == [
        "<OutputBucket.Arn>/output/*",
        "<OutputBucket.Arn>/failure/*",
    ]
    kms = statements["EncryptNotificationsThroughSns"]
    assert kms["Condition"]["StringEquals"]["kms:ViaService"] == "sns.us-east-1.amazonaws.com"
    assert statements["PutEndpointMetrics"]["Condition"]["StringEquals"]["cloudwatch:namespace"]
    assert all("my-stack" in r for r in statements["WriteEndpointLogs"]["Resource"]), (
        "only the endpoint's own log group"
    )
    # Default image: SageMaker pulls its built-in image itself; the role gets no ECR permission.
    assert not [s for s in statements.values() if any(a.startswith("ecr:") for a in as_list(s["Action"]))]


def test_model_artifact_read_is_pinned_to_one_object(raw: dict[str, Any], resources: dict[str, Any]) -> None:
    def artifact_statement(resolver: Resolver) -> dict[str, Any]:
        document = resolver.resolve(resources["SageMakerExecutionPolicy"]["Properties"]["PolicyDocument"])
        (statement,) = [s for s in document["Statement"] if s["Sid"] == "ReadModelArtifact"]
        return statement

    default = Resolver(raw, region="eu-west-1")
    assert default.resolve(resources["Model"]["Properties"]["PrimaryContainer"]["ModelDataUrl"]) == (
        "s3://sagemaker-eu-west-1-123456789012/async-inference-pipeline/model.tar.gz"
    )
    statement = artifact_statement(default)
    assert statement["Action"] == "s3:GetObject"
    assert (
        statement["Resource"] == "arn:aws:s3:::sagemaker-eu-west-1-123456789012/async-inference-pipeline/model.tar.gz"
    )
    # The default bucket's name is predictable: it must belong to this account.
    assert statement["Condition"] == {"StringEquals": {"s3:ResourceAccount": "123456789012"}}

    custom = Resolver(raw, ModelDataUrl="s3://models-bucket/xgb/v3/model.tar.gz")
    assert custom.resolve(resources["Model"]["Properties"]["PrimaryContainer"]["ModelDataUrl"]) == (
        "s3://models-bucket/xgb/v3/model.tar.gz"
    )
    statement = artifact_statement(custom)
    assert statement["Resource"] == "arn:aws:s3:::models-bucket/xgb/v3/model.tar.gz"
    assert "Condition" not in statement


@pytest.mark.parametrize(
    ("image", "repository_arns"),
    [
        (
            "111122223333.dkr.ecr.eu-west-1.amazonaws.com/my-model:1.0",
            [
                "arn:aws:ecr:eu-west-1:111122223333:repository/my-model",
                "arn:aws:ecr:eu-west-1:111122223333:repository/my-model/*",
            ],
        ),
        (
            "111122223333.dkr.ecr.us-west-2.amazonaws.com/team/model@sha256:" + "a" * 64,
            [
                "arn:aws:ecr:us-west-2:111122223333:repository/team",
                "arn:aws:ecr:us-west-2:111122223333:repository/team/*",
            ],
        ),
    ],
)
def test_custom_image_pull_is_scoped_to_its_repository(
    raw: dict[str, Any], resources: dict[str, Any], image: str, repository_arns: list[str]
) -> None:
    resolver = Resolver(raw, ContainerImage=image)
    assert resolver.resolve(resources["Model"]["Properties"]["PrimaryContainer"]["Image"]) == image
    document = resolver.resolve(resources["SageMakerExecutionPolicy"]["Properties"]["PolicyDocument"])
    statements = {s["Sid"]: s for s in document["Statement"]}
    pull = statements["PullCustomContainerImage"]
    assert set(pull["Action"]) == {"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}
    assert pull["Resource"] == repository_arns
    assert statements["EcrAuthorizationForCustomImage"]["Action"] == "ecr:GetAuthorizationToken"


def test_parameter_patterns(raw: dict[str, Any]) -> None:
    def accepts(parameter: str, value: str) -> bool:
        return re.fullmatch(raw["Parameters"][parameter]["AllowedPattern"], value) is not None

    assert accepts("ContainerImage", "")
    assert accepts("ContainerImage", "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
    assert accepts("ContainerImage", "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1")
    assert not accepts("ContainerImage", "nginx:latest")
    assert not accepts("ContainerImage", "683313688378.dkr.ecr.us-east-1.amazonaws.com/no-tag")
    assert accepts("ModelDataUrl", "")
    assert accepts("ModelDataUrl", "s3://my-bucket/models/model.tar.gz")
    assert not accepts("ModelDataUrl", "https://my-bucket.s3.amazonaws.com/model.tar.gz")
    assert not accepts("ModelDataUrl", "s3://my-bucket")


# ----------------------------------------------------------------------------------------------------------- SageMaker
def test_default_image_is_the_regions_builtin_xgboost(raw: dict[str, Any], resources: dict[str, Any]) -> None:
    image = resources["Model"]["Properties"]["PrimaryContainer"]["Image"]
    assert Resolver(raw).resolve(image) == "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    assert Resolver(raw, region="cn-north-1").resolve(image) == (
        "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1"
    )


def test_registry_mapping_is_well_formed(raw: dict[str, Any]) -> None:
    mapping = raw["Mappings"]["XGBoostRegistry"]
    assert len(mapping) >= 20
    for region, entry in mapping.items():
        assert re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", region), region
        assert set(entry) == {"Account"}
        assert re.fullmatch(r"\d{12}", entry["Account"]), (region, entry)
    assert mapping["us-east-1"]["Account"] == "683313688378"


def test_registry_mapping_equals_the_reference_list(raw: dict[str, Any]) -> None:
    registries = json.loads(REGISTRIES.read_text())
    assert registries["repository"] == "sagemaker-xgboost"
    assert registries["tag"] == "1.7-1"
    mapping = {region: entry["Account"] for region, entry in raw["Mappings"]["XGBoostRegistry"].items()}
    assert mapping == registries["registries"]


def test_endpoint_config_waits_for_the_role_policy(resources: dict[str, Any]) -> None:
    assert "SageMakerExecutionPolicy" in depends_on(resources["EndpointConfig"])
    assert "SageMakerExecutionPolicy" in depends_on(resources["Model"])
    assert resources["Model"]["Properties"]["ExecutionRoleArn"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
    assert resources["Endpoint"]["Properties"]["EndpointConfigName"] == {
        "Fn::GetAtt": ["EndpointConfig", "EndpointConfigName"]
    }


def test_async_inference_config(raw: dict[str, Any], resources: dict[str, Any]) -> None:
    properties = resources["EndpointConfig"]["Properties"]
    (variant,) = properties["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["InitialInstanceCount"] >= 1, "AWS minimum; zero is reached through autoscaling"
    assert variant["InstanceType"] == {"Ref": "InstanceType"}
    assert variant["ModelName"] == {"Fn::GetAtt": ["Model", "ModelName"]}
    config = properties["AsyncInferenceConfig"]
    assert config["ClientConfig"] == {
        "MaxConcurrentInvocationsPerInstance": {"Ref": "MaxConcurrentInvocationsPerInstance"}
    }
    output = Resolver(raw).resolve(config["OutputConfig"])
    # Outputs and failures go to the output bucket, which triggers nothing.
    assert output["S3OutputPath"] == "s3://<OutputBucket>/output/"
    assert output["S3FailurePath"] == "s3://<OutputBucket>/failure/"
    assert output["NotificationConfig"]["SuccessTopic"] == "<SuccessTopic>"
    assert output["NotificationConfig"]["ErrorTopic"] == "<ErrorTopic>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("none", None),
        ("success", ["SUCCESS_NOTIFICATION_TOPIC"]),
        ("error", ["ERROR_NOTIFICATION_TOPIC"]),
        ("both", ["SUCCESS_NOTIFICATION_TOPIC", "ERROR_NOTIFICATION_TOPIC"]),
    ],
)
def test_include_inference_response_in(
    raw: dict[str, Any], resources: dict[str, Any], value: str, expected: list[str] | None
) -> None:
    assert value in raw["Parameters"]["IncludeInferenceResponseIn"]["AllowedValues"]
    config = resources["EndpointConfig"]["Properties"]["AsyncInferenceConfig"]
    notification = Resolver(raw, IncludeInferenceResponseIn=value).resolve(config)["OutputConfig"]["NotificationConfig"]
    assert notification.get("IncludeInferenceResponseIn") == expected


@pytest.mark.parametrize(
    ("framework", "environment"),
    [
        ("none", None),
        (
            "TorchServe",
            {
                "TS_MAX_REQUEST_SIZE": "100000000",
                "TS_MAX_RESPONSE_SIZE": "100000000",
                "TS_DEFAULT_RESPONSE_TIMEOUT": "1000",
            },
        ),
        (
            "MMS",
            {
                "MMS_MAX_REQUEST_SIZE": "2000000000",
                "MMS_MAX_RESPONSE_SIZE": "2000000000",
                "MMS_DEFAULT_RESPONSE_TIMEOUT": "900",
            },
        ),
    ],
)
def test_model_server_framework_environment(
    raw: dict[str, Any], resources: dict[str, Any], framework: str, environment: dict[str, str] | None
) -> None:
    container = Resolver(raw, ModelServerFramework=framework).resolve(
        resources["Model"]["Properties"]["PrimaryContainer"]
    )
    assert container.get("Environment") == environment


# ----------------------------------------------------------------------------------------------------------- scaling
def test_scales_to_zero_and_back(raw: dict[str, Any], resources: dict[str, Any]) -> None:
    assert raw["Parameters"]["MinInstances"]["Default"] == 0
    target = resources["ScalableTarget"]["Properties"]
    assert target["MinCapacity"] == {"Ref": "MinInstances"}
    assert target["MaxCapacity"] == {"Ref": "MaxInstances"}
    assert target["ServiceNamespace"] == "sagemaker"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target["ResourceId"] == {"Fn::Sub": "endpoint/${Endpoint.EndpointName}/variant/AllTraffic"}

    endpoint_dimension = [{"Name": "EndpointName", "Value": {"Fn::GetAtt": ["Endpoint", "EndpointName"]}}]
    tracking = resources["BacklogTargetTrackingPolicy"]["Properties"]
    assert tracking["PolicyType"] == "TargetTrackingScaling"
    assert tracking["ScalingTargetId"] == {"Ref": "ScalableTarget"}
    configuration = tracking["TargetTrackingScalingPolicyConfiguration"]
    assert configuration["TargetValue"] == {"Ref": "TargetBacklogPerInstance"}
    assert configuration.get("DisableScaleIn", False) is False, "scale-in is what reaches zero"
    metric = configuration["CustomizedMetricSpecification"]
    assert metric["MetricName"] == "ApproximateBacklogSizePerInstance"
    assert metric["Namespace"] == "AWS/SageMaker"
    assert metric["Dimensions"] == endpoint_dimension

    step = resources["ScaleOutFromZeroPolicy"]["Properties"]
    assert step["PolicyType"] == "StepScaling"
    assert step["ScalingTargetId"] == {"Ref": "ScalableTarget"}
    step_configuration = step["StepScalingPolicyConfiguration"]
    assert step_configuration["AdjustmentType"] == "ChangeInCapacity"
    assert step_configuration["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]

    alarm = resources["HasBacklogWithoutCapacityAlarm"]["Properties"]
    assert alarm["Namespace"] == "AWS/SageMaker"
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity"
    assert alarm["Dimensions"] == endpoint_dimension
    assert alarm["AlarmActions"] == [{"Ref": "ScaleOutFromZeroPolicy"}]
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


# ----------------------------------------------------------------------------------------------------------- security
def test_buckets_are_private_encrypted_and_tls_only(resources: dict[str, Any]) -> None:
    policies = {
        r["Properties"]["Bucket"]["Ref"]: r["Properties"]["PolicyDocument"]
        for r in of_type({"Resources": resources}, "AWS::S3::BucketPolicy").values()
    }
    for name, bucket in of_type({"Resources": resources}, "AWS::S3::Bucket").items():
        properties = bucket["Properties"]
        (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        denies = [
            s
            for s in statements_of(policies[name])
            if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert len(denies) == 1, name
        assert denies[0]["Principal"] == "*"
        assert denies[0]["Action"] == "s3:*"
        assert denies[0]["Resource"] == [{"Fn::GetAtt": [name, "Arn"]}, {"Fn::Sub": f"${{{name}.Arn}}/*"}]
    input_bucket = resources["InputBucket"]["Properties"]
    assert input_bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = input_bucket["LifecycleConfiguration"]["Rules"]
    assert any(r["Status"] == "Enabled" and "NoncurrentVersionExpiration" in r for r in rules)


def test_topics_queues_and_table_are_encrypted(resources: dict[str, Any]) -> None:
    cfn = {"Resources": resources}
    topics = of_type(cfn, "AWS::SNS::Topic")
    assert set(topics) == {"SuccessTopic", "ErrorTopic"}
    for topic in topics.values():
        assert topic["Properties"]["KmsMasterKeyId"]
    queues = of_type(cfn, "AWS::SQS::Queue")
    assert set(queues) == {"DeadLetterQueue", "ResultsQueue"}
    for queue in queues.values():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True or queue["Properties"].get("KmsMasterKeyId")
    for name in queues:
        (policy,) = [
            p for p in of_type(cfn, "AWS::SQS::QueuePolicy").values() if p["Properties"]["Queues"] == [{"Ref": name}]
        ]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements_of(policy["Properties"]["PolicyDocument"])
        ), name
    table = resources["JobsTable"]["Properties"]
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["KeySchema"] == [{"AttributeName": "inferenceId", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "inferenceId", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}


# ----------------------------------------------------------------------------------------------------------- results
def test_results_rule_forwards_every_result_event_to_the_queue(resources: dict[str, Any]) -> None:
    from async_pipeline.result_events import SOURCE

    rule = resources["ResultsRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "ResultsBus"}
    assert rule["EventPattern"] == {"source": [SOURCE]}
    assert rule.get("State", "ENABLED") == "ENABLED"
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["ResultsQueue", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": DLQ_ARN}
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in of_type({"Resources": resources}, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": "ResultsQueue"}]
    ]
    (allow,) = [s for s in statements_of(policy) if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ResultsRule", "Arn"]}}}


# ----------------------------------------------------------------------------------------------------------- operations
def test_alarms(resources: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in of_type({"Resources": resources}, "AWS::CloudWatch::Alarm").values()]

    def watched(namespace: str, metric: str) -> list[list[dict[str, Any]]]:
        return [a["Dimensions"] for a in alarms if a["Namespace"] == namespace and a["MetricName"] == metric]

    assert watched("AWS/SQS", "ApproximateNumberOfMessagesVisible") == [
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    ]
    assert sorted(d[0]["Value"]["Ref"] for d in watched("AWS/Lambda", "Errors")) == sorted(FUNCTIONS)
    endpoint = {"Name": "EndpointName", "Value": {"Fn::GetAtt": ["Endpoint", "EndpointName"]}}
    assert watched("AWS/SageMaker", "InvocationFailures") == [
        [endpoint, {"Name": "VariantName", "Value": "AllTraffic"}]
    ]
    assert watched("AWS/SageMaker", "ApproximateAgeOfOldestRequest") == [[endpoint]]
    assert watched("AWS/SageMaker", "HasBacklogWithoutCapacity") == [[endpoint]]


def test_dashboard(raw: dict[str, Any], resources: dict[str, Any]) -> None:
    text, variables = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    references = set(_SUB_VARIABLE.findall(text))
    for reference in references:
        assert reference in variables or reference.startswith("AWS::") or reference.split(".")[0] in raw["Resources"], (
            reference
        )
    body = json.loads(_SUB_VARIABLE.sub("x", text))
    metric_rows = [row for widget in body["widgets"] for row in widget["properties"].get("metrics", [])]
    names = {item for row in metric_rows for item in row if isinstance(item, str)}
    custom = {"FilesSubmitted", "FilesRejected", "InferencesCompleted", "InferencesFailed", "DuplicateDeliveries"}
    assert custom <= set(backticked(design_section("Custom metrics"))), "dashboard metrics must be in the design"
    assert custom <= names
    assert {"AsyncInferencePipeline", "service"} <= names
    assert {"ApproximateBacklogSize", "ApproximateAgeOfOldestRequest", "TotalProcessingTime", "ModelLatency"} <= names
    (instances,) = [row for row in metric_rows if "CPUUtilization" in row]
    assert instances[0] == "/aws/sagemaker/Endpoints"
    assert instances[-1]["stat"] == "SampleCount"


def test_every_parameter_is_in_a_console_group(raw: dict[str, Any]) -> None:
    groups = raw["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(raw["Parameters"])


def test_every_parameter_has_a_working_default(raw: dict[str, Any]) -> None:
    parameters = raw["Parameters"]
    for name, spec in parameters.items():
        assert "Default" in spec, name
        default = spec["Default"]
        if "AllowedValues" in spec:
            assert default in spec["AllowedValues"], name
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], str(default)), name
        if "MinValue" in spec:
            assert float(default) >= float(spec["MinValue"]), name
        if "MaxValue" in spec:
            assert float(default) <= float(spec["MaxValue"]), name
    assert parameters["RequestTTLSeconds"]["MaxValue"] == 21600
    assert parameters["InvocationTimeoutSeconds"]["MaxValue"] == 3600
    assert parameters["IncludeInferenceResponseIn"]["Default"] == "both"
    assert set(parameters["ModelServerFramework"]["AllowedValues"]) == {"none", "TorchServe", "MMS"}
    assert parameters["MinInstances"]["MinValue"] == 0


# ----------------------------------------------------------------------------------------------------------- samconfig
@pytest.mark.parametrize("environment", ["default", "dev", "prod"])
def test_samconfig_environment(raw: dict[str, Any], environment: str) -> None:
    config = tomllib.loads(SAMCONFIG.read_text())
    section = config[environment]
    stack_name = section["global"]["parameters"]["stack_name"]
    # The stack name is the endpoint's name.
    assert re.fullmatch(r"[a-zA-Z][-a-zA-Z0-9]{0,62}", stack_name)
    assert section["validate"]["parameters"]["lint"] is True
    deploy = section["deploy"]["parameters"]
    assert "CAPABILITY_IAM" in deploy["capabilities"].split()
    assert deploy["resolve_s3"] is True
    assert isinstance(deploy["confirm_changeset"], bool)
    overrides = dict(pair.split("=", 1) for pair in deploy["parameter_overrides"].split())
    assert overrides
    for name, value in overrides.items():
        spec = raw["Parameters"][name]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], (name, value)
        if "MinValue" in spec:
            assert float(value) >= float(spec["MinValue"]), (name, value)
        if "MaxValue" in spec:
            assert float(value) <= float(spec["MaxValue"]), (name, value)
    minimum = int(overrides.get("MinInstances", raw["Parameters"]["MinInstances"]["Default"]))
    assert minimum <= int(overrides.get("MaxInstances", raw["Parameters"]["MaxInstances"]["Default"]))


def test_samconfig_prod_asks_before_changing() -> None:
    config = tomllib.loads(SAMCONFIG.read_text())
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    names = {config[e]["global"]["parameters"]["stack_name"] for e in ("default", "dev", "prod")}
    assert len(names) == 3, "each environment is its own stack"


# ----------------------------------------------------------------------------------------------------------- tools
def _tool_output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@pytest.mark.slow
def test_cfn_lint_has_no_findings() -> None:
    result = run([BIN / "cfn-lint", TEMPLATE])
    assert result.returncode == 0, _tool_output(result)
    assert result.stdout.strip() == "", _tool_output(result)
    assert result.stderr.strip() == "", _tool_output(result)


@pytest.mark.slow
def test_sam_validate_lint_has_no_findings() -> None:
    result = run([BIN / "sam", "validate", "--lint", "--template", TEMPLATE])
    assert result.returncode == 0, _tool_output(result)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert lines == [f"{TEMPLATE} is a valid SAM Template"], _tool_output(result)


def _checkov() -> Path:
    checkov = Path(os.environ.get("CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))
    if not checkov.is_file():
        pytest.fail(f"checkov not found at {checkov}: run `make .venv-checkov/.stamp` or set CHECKOV")
    return checkov


def _checkov_scan(checkov: Path, path: Path) -> dict[str, Any]:
    result = run([checkov, "--framework", "cloudformation", "--skip-download", "--output", "json", "--file", path])
    assert result.returncode in {0, 1}, _tool_output(result)
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["check_type"] == "cloudformation", _tool_output(result)
    assert report["summary"]["parsing_errors"] == 0
    scan: dict[str, Any] = report
    return scan


@pytest.fixture(scope="module")
def checkov_reports(
    raw: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], dict[str, Any]]:
    """checkov on the template, and on a copy without its checkov skips (both at once)."""
    checkov = _checkov()
    unskipped = load_template()
    for resource in unskipped["Resources"].values():
        resource.get("Metadata", {}).pop("checkov", None)
    copy = tmp_path_factory.mktemp("checkov") / "template-without-skips.json"
    copy.write_text(json.dumps(unskipped))
    with ThreadPoolExecutor(max_workers=2) as pool:
        template_scan = pool.submit(_checkov_scan, checkov, TEMPLATE)
        unskipped_scan = pool.submit(_checkov_scan, checkov, copy)
        return template_scan.result(), unskipped_scan.result()


@pytest.mark.slow
def test_checkov_has_no_failed_check_and_every_skip_has_a_reason(
    checkov_reports: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, _ = checkov_reports
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 50
    for check in report["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 30, f"skip of {check['check_id']} on {check['resource']} needs a reason"


@pytest.mark.slow
def test_checkov_skips_are_all_needed(checkov_reports: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, unskipped = checkov_reports
    skipped = {(c["check_id"], c["resource"]) for c in report["results"]["skipped_checks"]}
    would_fail = {(c["check_id"], c["resource"]) for c in unskipped["results"]["failed_checks"]}
    assert skipped == would_fail, "a skip that silences nothing is stale; a failure without a skip is a finding"


def _python313_dir() -> Path:
    found = shutil.which("python3.13")
    if found:
        return Path(found).parent
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(pyenv_root.glob("versions/3.13*/bin/python3.13"), reverse=True)
    if not candidates:
        pytest.fail("sam build needs python3.13 on PATH (or under pyenv) for the python3.13 runtime")
    return candidates[0].parent


@pytest.mark.slow
def test_sam_build(tmp_path: Path) -> None:
    build = tmp_path / "build"
    path = os.pathsep.join([str(_python313_dir()), str(BIN), os.environ.get("PATH", "")])
    result = run(
        [
            BIN / "sam",
            "build",
            "--template-file",
            TEMPLATE,
            "--build-dir",
            build,
            "--cache-dir",
            tmp_path / "cache",
            "--no-cached",
        ],
        env={"PATH": path},
    )
    assert result.returncode == 0, _tool_output(result)
    assert (build / "template.yaml").is_file()
    for function, (code_uri, handler) in FUNCTIONS.items():
        module = handler.split(".")[0]
        assert (build / function / f"{module}.py").is_file(), function
        assert (build / function / f"{module}.py").read_bytes() == (ROOT / code_uri / f"{module}.py").read_bytes()
    layer = build / "SharedLayer" / "python"
    assert (layer / "async_pipeline" / "__init__.py").is_file()
    assert (layer / "aws_lambda_powertools" / "__init__.py").is_file()
    pin = re.search(r"aws-lambda-powertools(?:\[[a-z,]+\])?==([0-9.]+)", LAYER_REQUIREMENTS.read_text())
    assert pin
    assert (layer / f"aws_lambda_powertools-{pin.group(1)}.dist-info").is_dir()
    # Compiled dependencies must be built for the functions' architecture.
    for extension in layer.rglob("*.so"):
        assert "x86_64" not in extension.name, extension

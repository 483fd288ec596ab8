"""The template's public contract: the logical ids and outputs docs/design.md names, the functions and their layer."""

from __future__ import annotations

import re
from typing import Any

from asyncinfer.target import REQUIRED_OUTPUTS
from tests.unit.template.support import (
    DESIGN_FUNCTION_NAMES,
    FUNCTIONS,
    LAYER_REQUIREMENTS,
    OUTPUTS,
    backticked,
    design_section,
    of_type,
)


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
    assert set(REQUIRED_OUTPUTS) == OUTPUTS  # what the CLI reads from a stack is what the template gives
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
    # Built by its own Makefile (byte-compiled for the runtime; the slow test_tools checks what it builds).
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    makefile = (LAYER_REQUIREMENTS.parent / "Makefile").read_text()
    assert re.search(r"^build-SharedLayer:", makefile, re.MULTILINE)
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/shared"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    pins = [line.strip() for line in LAYER_REQUIREMENTS.read_text().splitlines() if line.strip()[:1].isalpha()]
    assert any(re.fullmatch(r"aws-lambda-powertools(\[[a-z,]+\])?==[0-9.]+", pin) for pin in pins), pins

"""Alarms, the dashboard, and parameters a console user can fill in."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.unit.template.support import (
    FUNCTIONS,
    SUB_VARIABLE,
    backticked,
    design_section,
    of_type,
)


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
    references = set(SUB_VARIABLE.findall(text))
    for reference in references:
        assert reference in variables or reference.startswith("AWS::") or reference.split(".")[0] in raw["Resources"], (
            reference
        )
    body = json.loads(SUB_VARIABLE.sub("x", text))
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
    # SampleCount of a host metric is a heuristic for the instance count: the widget says so.
    assert "approximate" in instances[-1]["label"]
    (widget,) = [w for w in body["widgets"] if instances in w["properties"].get("metrics", [])]
    assert "approximate" in widget["properties"]["title"]


def test_alarm_topic_parameter_says_which_topics_can_receive_alarms(raw: dict[str, Any]) -> None:
    # CloudWatch publishes as a service principal, which the AWS managed key alias/aws/sns does not admit.
    description = raw["Parameters"]["AlarmTopicArn"]["Description"]
    assert "customer managed KMS key" in description
    assert "cloudwatch.amazonaws.com" in description
    assert "alias/aws/sns" in description


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

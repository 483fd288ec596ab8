"""CloudWatch's alarm evaluation (documented semantics): M of N, each TreatMissingData, the template's alarms."""

from __future__ import annotations

import pytest

from asyncinfer.local.alarms import AlarmDefinition, AlarmState, UnsupportedAlarm, evaluate

# The template's HasBacklogWithoutCapacityAlarm, as DescribeAlarms returns it.
BACKLOG_ALARM = {
    "AlarmName": "HasBacklogWithoutCapacity",
    "Namespace": "AWS/SageMaker",
    "MetricName": "HasBacklogWithoutCapacity",
    "Dimensions": [{"Name": "EndpointName", "Value": "ep"}],
    "Statistic": "Average",
    "Period": 60,
    "EvaluationPeriods": 2,
    "DatapointsToAlarm": 2,
    "Threshold": 1.0,
    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    "TreatMissingData": "missing",
    "AlarmActions": ["arn:policy"],
}


def alarm(**changes: object) -> AlarmDefinition:
    return AlarmDefinition.from_api({**BACKLOG_ALARM, **changes})


def test_from_api_reads_every_setting() -> None:
    definition = alarm()
    assert definition.dimensions == (("EndpointName", "ep"),)
    assert (definition.period, definition.evaluation_periods, definition.datapoints_to_alarm) == (60, 2, 2)
    assert definition.actions_for("ALARM") == ("arn:policy",)
    assert definition.actions_for("OK") == ()
    assert alarm(ActionsEnabled=False).actions_for("ALARM") == ()


def test_datapoints_to_alarm_defaults_to_evaluation_periods() -> None:
    raw = {k: v for k, v in BACKLOG_ALARM.items() if k != "DatapointsToAlarm"}
    assert AlarmDefinition.from_api({**raw, "EvaluationPeriods": 4}).datapoints_to_alarm == 4


def test_metric_math_is_refused_not_ignored() -> None:
    with pytest.raises(UnsupportedAlarm):
        AlarmDefinition.from_api({"AlarmName": "math", "Metrics": [], "ComparisonOperator": "LessThanThreshold"})


@pytest.mark.parametrize(
    ("values", "current", "expected"),
    [
        ([1.0, 1.0], "INSUFFICIENT_DATA", "ALARM"),
        ([0.0, 1.0], "INSUFFICIENT_DATA", "OK"),  # one good of two: 2 breaches impossible
        ([None, 1.0], "INSUFFICIENT_DATA", "INSUFFICIENT_DATA"),  # not enough data to decide: state kept
        ([None, 1.0], "ALARM", "ALARM"),
        ([None, None], "ALARM", "INSUFFICIENT_DATA"),  # missing: all missing → INSUFFICIENT_DATA
        ([1.0, 0.0], "ALARM", "OK"),
    ],
)
def test_missing_data_treated_as_missing(values: list[float | None], current: AlarmState, expected: str) -> None:
    assert evaluate(alarm(), values, current) == expected


def test_m_of_n() -> None:
    three_of_five = alarm(EvaluationPeriods=5, DatapointsToAlarm=3, TreatMissingData="notBreaching")
    assert evaluate(three_of_five, [1, 0, 1, 0, 1], "OK") == "ALARM"
    assert evaluate(three_of_five, [1, 0, 0, 0, 1], "ALARM") == "OK"
    assert evaluate(three_of_five, [1, None, 1, None, None], "OK") == "OK"  # missing counts as good


def test_breaching_and_ignore() -> None:
    assert evaluate(alarm(TreatMissingData="breaching"), [None, None], "OK") == "ALARM"
    assert evaluate(alarm(TreatMissingData="ignore"), [None, None], "ALARM") == "ALARM"
    assert evaluate(alarm(TreatMissingData="ignore"), [None, None], "OK") == "OK"
    assert evaluate(alarm(TreatMissingData="notBreaching"), [None, None], "ALARM") == "OK"


def test_short_history_counts_as_missing() -> None:
    assert evaluate(alarm(), [1.0], "INSUFFICIENT_DATA") == "INSUFFICIENT_DATA"
    assert evaluate(alarm(), [], "OK") == "INSUFFICIENT_DATA"


@pytest.mark.parametrize(
    ("operator", "value", "breaches"),
    [
        ("GreaterThanThreshold", 1.0, False),
        ("GreaterThanOrEqualToThreshold", 1.0, True),
        ("LessThanThreshold", 1.0, False),
        ("LessThanOrEqualToThreshold", 1.0, True),
        ("LessThanThreshold", 0.5, True),
    ],
)
def test_comparisons(operator: str, value: float, breaches: bool) -> None:
    assert alarm(ComparisonOperator=operator).breaches(value) is breaches

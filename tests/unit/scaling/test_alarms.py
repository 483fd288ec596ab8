"""CloudWatch's alarm evaluation (documented semantics): M of N, each TreatMissingData, the template's alarms."""

from __future__ import annotations

import pytest

from asyncinfer.local.alarms import AlarmDefinition, AlarmState, UnsupportedAlarm, evaluate, evaluation_range, reason

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


def points(row: str) -> list[float | None]:
    """A row of the user guide's tables: 0 a good datapoint, X a breaching one, - a missing one (oldest first)."""
    return [{"0": 0.0, "X": 1.0, "-": None}[c] for c in row.split()]


KEEP = "retain"
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")


def table_cases(rows: list[tuple[str, tuple[str, str, str, str]]]) -> list[tuple[str, str, str]]:
    return [
        (row, treatment, state) for row, states in rows for treatment, state in zip(TREATMENTS, states, strict=True)
    ]


# "How alarm state is evaluated when data is missing" (CloudWatch user guide, AlarmThatSendsEmail.md): the states for
# MISSING, IGNORE, BREACHING, NOT BREACHING; CloudWatch retrieves the 5 most recent datapoints.
THREE_OF_THREE = table_cases(
    [
        ("0 - X - X", ("OK", "OK", "OK", "OK")),
        ("0 - - - -", ("OK", "OK", "OK", "OK")),
        ("- - - - -", ("INSUFFICIENT_DATA", KEEP, "ALARM", "OK")),
        ("0 X X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
        ("- - - - X", ("INSUFFICIENT_DATA", KEEP, "ALARM", "OK")),
        ("X - - - -", ("ALARM", KEEP, "ALARM", "OK")),
    ]
)
TWO_OF_THREE = table_cases(
    [
        ("0 - X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
        ("0 0 X 0 X", ("ALARM", "ALARM", "ALARM", "ALARM")),
        ("0 - X - -", ("OK", "OK", "ALARM", "OK")),
        ("- - - - 0", ("OK", "OK", "ALARM", "OK")),
        ("- - - - X", ("INSUFFICIENT_DATA", KEEP, "ALARM", "OK")),
    ]
)


@pytest.mark.parametrize("current", ["OK", "ALARM", "INSUFFICIENT_DATA"])
@pytest.mark.parametrize(("row", "treatment", "expected"), THREE_OF_THREE)
def test_the_documented_three_of_three_table(row: str, treatment: str, expected: str, current: AlarmState) -> None:
    definition = alarm(EvaluationPeriods=3, DatapointsToAlarm=3, TreatMissingData=treatment)
    assert evaluation_range(definition) == 5
    assert evaluate(definition, points(row), current) == (current if expected == KEEP else expected)


@pytest.mark.parametrize("current", ["OK", "ALARM", "INSUFFICIENT_DATA"])
@pytest.mark.parametrize(("row", "treatment", "expected"), TWO_OF_THREE)
def test_the_documented_two_of_three_table(row: str, treatment: str, expected: str, current: AlarmState) -> None:
    definition = alarm(EvaluationPeriods=3, DatapointsToAlarm=2, TreatMissingData=treatment)
    assert evaluate(definition, points(row), current) == (current if expected == KEEP else expected)


def test_enough_real_datapoints_decide_alone_and_older_ones_count_when_some_are_missing() -> None:
    two = alarm()  # the template's HasBacklogWithoutCapacityAlarm: 2 of 2, missing
    assert evaluate(two, points("X X - -"), "OK") == "ALARM"  # two real datapoints in the range of 4
    assert evaluate(two, points("X 0 - -"), "ALARM") == "OK"
    assert evaluate(two, points("X X 0 X"), "ALARM") == "OK"  # the latest two real ones


def test_m_of_n() -> None:
    three_of_five = alarm(EvaluationPeriods=5, DatapointsToAlarm=3, TreatMissingData="notBreaching")
    assert evaluate(three_of_five, [1, 0, 1, 0, 1], "OK") == "ALARM"
    assert evaluate(three_of_five, [1, 0, 0, 0, 1], "ALARM") == "OK"
    assert evaluate(three_of_five, [1, None, 1, None, None], "OK") == "OK"  # missing counts as good


def test_short_history_counts_as_missing() -> None:
    assert evaluate(alarm(), [1.0], "INSUFFICIENT_DATA") == "INSUFFICIENT_DATA"
    assert evaluate(alarm(), [], "OK") == "INSUFFICIENT_DATA"


def test_the_state_reason_says_what_was_evaluated() -> None:
    three = alarm(EvaluationPeriods=3, DatapointsToAlarm=2)
    assert reason(three, points("0 - X 0 X"), "ALARM") == (
        "Threshold Crossed: 2 out of the last 3 datapoints [1, 0, 1] were greater than or equal to the threshold (1) "
        "(minimum 2 datapoints for OK -> ALARM transition)."
    )
    assert reason(three, points("- - X 0 0"), "OK") == (
        "Threshold Crossed: 2 out of the last 3 datapoints [1, 0, 0] were not greater than or equal to the threshold "
        "(1) (minimum 2 datapoints for ALARM -> OK transition)."
    )
    assert reason(three, points("- - - - -"), "INSUFFICIENT_DATA") == "Insufficient Data: 3 datapoints were unknown."


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

"""CloudWatch metric alarms, evaluated as CloudWatch documents it (pure): a definition as DescribeAlarms returns it,
the values of its last ``EvaluationPeriods`` periods, and its current state give its next state.

Semantics ("Evaluating an alarm" and "How alarm state is evaluated when data is missing", CloudWatch user guide,
whose two tables tests/unit/scaling/test_alarms.py runs): a period breaches when its value compares to ``Threshold``
as ``ComparisonOperator`` says. CloudWatch retrieves an evaluation range longer than ``EvaluationPeriods`` (N);
when it holds at least N real datapoints the latest N decide and ``TreatMissingData`` is ignored: ALARM when at least
``DatapointsToAlarm`` (M, default N) breach, else OK. Otherwise every real datapoint counts and the missing ones
complete N: ``breaching`` / ``notBreaching`` fill them as bad / good; ``missing`` and ``ignore`` go to ALARM with M
breaching, to OK with fewer and a good one among them; with no data or only (fewer than M) breaching datapoints
``ignore`` keeps the state and ``missing`` goes to INSUFFICIENT_DATA (ALARM when the oldest datapoint of the range
breaches: the tables' row "X - - - -").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

AlarmState = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
MissingData = Literal["missing", "ignore", "breaching", "notBreaching"]

_COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}


# CloudWatch's wording of each comparison in a StateReason.
_WORDS = {
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "GreaterThanThreshold": "greater than",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
# The evaluation range's periods beyond EvaluationPeriods (see evaluation_range).
EXTRA_PERIODS = 2


class UnsupportedAlarm(ValueError):
    """An alarm this evaluator cannot judge (metric math, anomaly detection, an extended statistic)."""


@dataclass(frozen=True, slots=True)
class AlarmDefinition:
    name: str
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: MissingData = "missing"
    actions_enabled: bool = True
    alarm_actions: tuple[str, ...] = ()
    ok_actions: tuple[str, ...] = ()
    insufficient_data_actions: tuple[str, ...] = ()
    description: str | None = None

    @classmethod
    def from_api(cls, alarm: Mapping[str, Any]) -> AlarmDefinition:
        """From one ``MetricAlarms`` entry of DescribeAlarms (or PutMetricAlarm's parameters)."""
        if "MetricName" not in alarm or "Statistic" not in alarm:
            raise UnsupportedAlarm(f"alarm {alarm.get('AlarmName')}: only single-metric alarms with a Statistic")
        comparison = str(alarm["ComparisonOperator"])
        if comparison not in _COMPARE:
            raise UnsupportedAlarm(f"alarm {alarm.get('AlarmName')}: comparison {comparison}")
        evaluation_periods = int(alarm["EvaluationPeriods"])
        return cls(
            name=str(alarm["AlarmName"]),
            namespace=str(alarm["Namespace"]),
            metric_name=str(alarm["MetricName"]),
            dimensions=tuple((str(d["Name"]), str(d["Value"])) for d in alarm.get("Dimensions") or ()),
            statistic=str(alarm["Statistic"]),
            period=int(alarm["Period"]),
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=int(alarm.get("DatapointsToAlarm") or evaluation_periods),
            threshold=float(alarm["Threshold"]),
            comparison=comparison,
            treat_missing_data=cast("MissingData", alarm.get("TreatMissingData") or "missing"),
            actions_enabled=bool(alarm.get("ActionsEnabled", True)),
            alarm_actions=tuple(alarm.get("AlarmActions") or ()),
            ok_actions=tuple(alarm.get("OKActions") or ()),
            insufficient_data_actions=tuple(alarm.get("InsufficientDataActions") or ()),
            description=alarm.get("AlarmDescription"),
        )

    def breaches(self, value: float) -> bool:
        return bool(_COMPARE[self.comparison](value, self.threshold))

    def actions_for(self, state: AlarmState) -> tuple[str, ...]:
        if not self.actions_enabled:
            return ()
        return {"ALARM": self.alarm_actions, "OK": self.ok_actions}.get(state, self.insufficient_data_actions)


def evaluation_range(alarm: AlarmDefinition) -> int:
    """How many periods CloudWatch retrieves to evaluate the alarm: more than ``EvaluationPeriods`` (its tables
    show 5 for 3; the exact number depends on the period: UNVERIFIED, N + 2 here)."""
    return alarm.evaluation_periods + EXTRA_PERIODS


def _window(alarm: AlarmDefinition, values: Sequence[float | None]) -> list[float | None]:
    window = list(values)[-evaluation_range(alarm) :]
    return [None] * (evaluation_range(alarm) - len(window)) + window


def evaluated_points(alarm: AlarmDefinition, values: Sequence[float | None]) -> list[float | None]:
    """The datapoints the evaluation looks at, oldest first: the latest ``EvaluationPeriods`` real ones when the
    evaluation range has that many, else every real one with the missing periods (None) that complete N, as few as
    possible, taken from the most recent missing ones."""
    window = _window(alarm, values)
    present = [v for v in window if v is not None]
    periods = alarm.evaluation_periods
    if len(present) >= periods:
        return list(present[-periods:])
    fills = periods - len(present)
    missing_slots = [i for i, v in enumerate(window) if v is None][-fills:] if fills else []
    return [v for i, v in enumerate(window) if v is not None or i in missing_slots]


def evaluate(alarm: AlarmDefinition, values: Sequence[float | None], current: AlarmState) -> AlarmState:
    """The alarm's state after an evaluation; ``values`` are its period values over the evaluation range
    (:func:`evaluation_range`; oldest first, None where the metric has no data; a shorter list is padded with
    missing periods at the old end)."""
    window = _window(alarm, values)
    needed, periods = alarm.datapoints_to_alarm, alarm.evaluation_periods
    present = [v for v in window if v is not None]
    if len(present) >= periods:  # enough real data: TreatMissingData is not needed and ignored
        breaching = sum(1 for v in present[-periods:] if alarm.breaches(v))
        return "ALARM" if breaching >= needed else "OK"
    treatment = alarm.treat_missing_data
    if treatment in ("breaching", "notBreaching"):
        filled = periods - len(present)  # every real datapoint counts; the rest are filled
        breaching = sum(1 for v in present if alarm.breaches(v)) + (filled if treatment == "breaching" else 0)
        return "ALARM" if breaching >= needed else "OK"
    if not present:
        return "INSUFFICIENT_DATA" if treatment == "missing" else current
    breaching = sum(1 for v in present if alarm.breaches(v))
    if breaching >= needed:
        return "ALARM"
    if breaching < len(present):  # a real good datapoint and fewer than M breaching
        return "OK"
    # Only breaching datapoints, fewer than M. The documented tables: ``ignore`` keeps the state; ``missing`` goes
    # to INSUFFICIENT_DATA, except that the row "X - - - -" (the oldest datapoint of the range breaching) is ALARM.
    if treatment == "ignore":
        return current
    return "ALARM" if window[0] is not None else "INSUFFICIENT_DATA"


def reason(alarm: AlarmDefinition, values: Sequence[float | None], state: AlarmState) -> str:
    """CloudWatch's kind of StateReason, for SetAlarmState and the status command."""
    points = evaluated_points(alarm, values)
    if state == "INSUFFICIENT_DATA":
        unknown = sum(1 for v in points if v is None)
        return f"Insufficient Data: {unknown} datapoint{'s were' if unknown != 1 else ' was'} unknown."
    shown = ", ".join("missing" if v is None else f"{v:g}" for v in points)
    breaching = sum(1 for v in points if v is not None and alarm.breaches(v))
    if state == "ALARM":
        return (
            f"Threshold Crossed: {breaching} out of the last {alarm.evaluation_periods} datapoints [{shown}] "
            f"{'was' if breaching == 1 else 'were'} {_WORDS[alarm.comparison]} the threshold ({alarm.threshold:g}) "
            f"(minimum {alarm.datapoints_to_alarm} datapoints for OK -> ALARM transition)."
        )
    good = alarm.evaluation_periods - breaching
    return (
        f"Threshold Crossed: {good} out of the last {alarm.evaluation_periods} datapoints [{shown}] "
        f"{'was' if good == 1 else 'were'} not {_WORDS[alarm.comparison]} the threshold ({alarm.threshold:g}) "
        f"(minimum {alarm.evaluation_periods - alarm.datapoints_to_alarm + 1} datapoints for ALARM -> OK transition)."
    )


def notification(
    alarm: AlarmDefinition,
    old: AlarmState,
    new: AlarmState,
    why: str,
    when: str,
    region: str,
    account: str,
) -> tuple[str, dict[str, Any]]:
    """The subject and message CloudWatch publishes to an SNS action when an alarm changes state."""
    message = {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account,
        "NewStateValue": new,
        "NewStateReason": why,
        "StateChangeTime": when,
        "Region": region,
        "AlarmArn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm.name}",
        "OldStateValue": old,
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "StatisticType": "Statistic",
            "Statistic": alarm.statistic.upper(),
            "Unit": None,
            "Dimensions": [{"value": v, "name": k} for k, v in alarm.dimensions],
            "Period": alarm.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "DatapointsToAlarm": alarm.datapoints_to_alarm,
            "ComparisonOperator": alarm.comparison,
            "Threshold": alarm.threshold,
            "TreatMissingData": alarm.treat_missing_data,
        },
    }
    return f'{new}: "{alarm.name}" in {region}'[:100], message

"""CloudWatch metric alarms, evaluated as CloudWatch documents it (pure): a definition as DescribeAlarms returns it,
the values of its last ``EvaluationPeriods`` periods, and its current state give its next state.

Semantics ("Evaluating an alarm" and "Configuring how CloudWatch alarms treat missing data", CloudWatch user
guide): a period breaches when its value compares to ``Threshold`` as ``ComparisonOperator`` says; the alarm goes
to ALARM when at least ``DatapointsToAlarm`` (M, default ``EvaluationPeriods``) of the last ``EvaluationPeriods``
(N) periods breach. Missing periods: ``notBreaching`` counts them as good, ``breaching`` as bad; with ``ignore`` and
``missing`` only the periods that have data count: ALARM when M of them breach, OK when so many are good that M
breaches are no longer possible, else the state stays; with no data at all ``missing`` goes to INSUFFICIENT_DATA and
``ignore`` keeps the state. (CloudWatch also looks further back than N periods when data is missing; this does not.)
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


def evaluate(alarm: AlarmDefinition, values: Sequence[float | None], current: AlarmState) -> AlarmState:
    """The alarm's state after an evaluation; ``values`` are its last ``EvaluationPeriods`` period values (oldest
    first, None where the metric has no data)."""
    window: list[float | None] = list(values)[-alarm.evaluation_periods :]
    window[:0] = [None] * (alarm.evaluation_periods - len(window))
    needed, periods = alarm.datapoints_to_alarm, alarm.evaluation_periods
    if alarm.treat_missing_data in ("breaching", "notBreaching"):
        bad = alarm.treat_missing_data == "breaching"
        breaching = sum(1 for v in window if (alarm.breaches(v) if v is not None else bad))
        return "ALARM" if breaching >= needed else "OK"
    present = [v for v in window if v is not None]
    if not present:
        return "INSUFFICIENT_DATA" if alarm.treat_missing_data == "missing" else current
    breaching = sum(1 for v in present if alarm.breaches(v))
    if breaching >= needed:
        return "ALARM"
    if periods - (len(present) - breaching) < needed:
        return "OK"
    return current


def reason(alarm: AlarmDefinition, values: Sequence[float | None], state: AlarmState) -> str:
    """CloudWatch's kind of StateReason, for SetAlarmState and the status command."""
    shown = ", ".join("missing" if v is None else f"{v:g}" for v in values[-alarm.evaluation_periods :])
    if state == "INSUFFICIENT_DATA":
        return f"Insufficient Data: {alarm.evaluation_periods} datapoints were unknown."
    verb = "was" if state == "ALARM" else "was not"
    return (
        f"Threshold Crossed: {alarm.datapoints_to_alarm} out of the last {alarm.evaluation_periods} datapoints "
        f"[{shown}] {verb} {alarm.comparison} {alarm.threshold:g} (minimum {alarm.datapoints_to_alarm} "
        "datapoints for OK -> ALARM transition)."
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

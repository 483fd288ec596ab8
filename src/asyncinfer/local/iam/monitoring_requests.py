"""CloudWatch calls as AWS authorizes them (IAM prefix ``cloudwatch``, signing name ``monitoring``).

PutMetricData supports no resource (``*``) and carries ``cloudwatch:namespace``; alarms are
``arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME``. The pinned botocore sends the JSON protocol (``x-amz-target:
GraniteServiceVersion20100801.PutMetricData``); the query protocol maps the same way. An RPC v2 CBOR body is not
decoded, so its PutMetricData names no namespace and is not mapped (fail closed)."""

from __future__ import annotations

from collections.abc import Mapping

from asyncinfer.local.iam.check_sets import unique
from asyncinfer.local.iam.checks import Check, UnmappedRequest
from asyncinfer.local.iam.protocol_bodies import text

_ACCOUNT_OPERATIONS = frozenset({"GetMetricData", "GetMetricStatistics", "ListMetrics", "DescribeAlarmsForMetric"})
_ALARM_OPERATIONS = frozenset({"PutMetricAlarm", "SetAlarmState", "DescribeAlarmHistory"})
_ALARM_LIST_OPERATIONS = frozenset({"DeleteAlarms", "DescribeAlarms", "EnableAlarmActions", "DisableAlarmActions"})


def alarm_arn(name: str, region: str, account: str) -> str:
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"


def checks(operation: str, params: Mapping[str, object], region: str, account: str) -> tuple[Check, ...]:
    """The checks of one CloudWatch call; UnmappedRequest for an operation not mapped."""
    action = f"cloudwatch:{operation}"
    if operation == "PutMetricData":
        return (Check(action, "*", {"cloudwatch:namespace": text(params, "Namespace", action)}),)
    if operation in _ACCOUNT_OPERATIONS:
        return (Check(action, "*"),)
    if operation in _ALARM_OPERATIONS:
        return (Check(action, alarm_arn(text(params, "AlarmName", action), region, account)),)
    if operation in _ALARM_LIST_OPERATIONS:
        names = _alarm_names(params)
        if not names:  # every alarm of the account (DescribeAlarms without names)
            return (Check(action, "*"),)
        return unique(Check(action, alarm_arn(name, region, account)) for name in names)
    raise UnmappedRequest(f"{action} is not mapped to IAM checks")


def _alarm_names(params: Mapping[str, object]) -> list[str]:
    """AlarmNames from JSON (a list) or query (``AlarmNames.member.N``)."""
    value = params.get("AlarmNames")
    if isinstance(value, list):
        return [str(name) for name in value]
    return [str(item) for key, item in params.items() if key.startswith("AlarmNames.member.")]

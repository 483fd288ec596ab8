"""Why is my file not done yet? The endpoint's state, read from AWS APIs only (so the same code answers for the
local stack and, with ``--stack-name``, for a deployed one): DescribeEndpoint, the scalable target and its latest
scaling activity, the endpoint's CloudWatch metrics and the stack's alarms in ALARM, and the jobs table's counts.

:func:`gather` makes the calls; :func:`lines` and :meth:`EndpointStatus.to_json` say it (pure).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from asyncinfer import job_records

if TYPE_CHECKING:
    from asyncinfer.target import Target

VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# How long an instance typically takes to come into service on AWS (UNVERIFIED: AWS documents "minutes", no figure).
AWS_TYPICAL_START_SECONDS = 300.0
METRIC_WINDOW_SECONDS = 600  # the latest datapoint within the last ten minutes
_METRICS = {  # query id → metric, statistic
    "backlog": ("ApproximateBacklogSize", "Maximum"),
    "oldest": ("ApproximateAgeOfOldestRequest", "Maximum"),
    "nocapacity": ("HasBacklogWithoutCapacity", "Maximum"),
}


@dataclass(frozen=True, slots=True)
class Activity:
    description: str
    cause: str
    status: str
    started: float  # seconds since the epoch (the stack's time)
    ended: float | None = None


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    endpoint: str
    status: str
    now: float
    current_instances: int | None
    desired_instances: int | None
    min_instances: int | None = None  # None: no scalable target (AutoScaling disabled)
    max_instances: int | None = None
    backlog: float | None = None
    oldest_request_age_seconds: float | None = None
    backlog_without_capacity: bool | None = None
    activity: Activity | None = None
    alarms: dict[str, str] = field(default_factory=dict)  # name → reason, those in ALARM
    jobs: dict[str, int] = field(default_factory=dict)
    instance_start_seconds: float = AWS_TYPICAL_START_SECONDS
    time_scale: float = 1.0  # the local stack's --time-scale

    @property
    def first_instance_in(self) -> float | None:
        """Seconds until the first instance should be in service, while scaling out from zero (else None)."""
        if self.current_instances or not self.desired_instances:
            return None
        started = self.activity.started if self.activity is not None and self.activity.status == "InProgress" else None
        if started is None:
            return self.instance_start_seconds
        return max(0.0, started + self.instance_start_seconds - self.now)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["firstInstanceExpectedInSeconds"] = self.first_instance_in
        return data


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _latest_metrics(target: Target, endpoint: str, now: float) -> dict[str, float]:
    queries = [
        {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SageMaker",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                },
                "Period": 60,
                "Stat": stat,
            },
        }
        for query_id, (metric, stat) in _METRICS.items()
    ]
    answer = target.client("cloudwatch").get_metric_data(
        MetricDataQueries=queries,
        StartTime=datetime.fromtimestamp(now - METRIC_WINDOW_SECONDS, UTC),
        EndTime=datetime.fromtimestamp(now + 60, UTC),
        ScanBy="TimestampDescending",
    )
    latest: dict[str, float] = {}
    for result in answer.get("MetricDataResults", []):
        points = sorted(zip(result.get("Timestamps", []), result.get("Values", []), strict=True), key=lambda p: p[0])
        if points:
            latest[result["Id"]] = float(points[-1][1])
    return latest


# The template's alarms: no AlarmName, so CloudFormation names them <stack>-<LogicalId>-<SUFFIX> (the local stack:
# <stack>-<LogicalId>), and every logical id ends in "Alarm" (tests/unit/scaling/test_endpoint_status.py checks it).
# So the alarms of a stack named <stack>-dev, which share the prefix, are not taken for this stack's.
_STACK_ALARM = re.compile(r"[A-Za-z0-9]*Alarm(-[A-Za-z0-9]+)?")


def _alarms_in_alarm(target: Target, endpoint: str) -> dict[str, str]:
    """This stack's alarms in ALARM and target tracking's for its endpoint, by name prefix (not the whole account)."""
    found: dict[str, str] = {}
    paginator = target.client("cloudwatch").get_paginator("describe_alarms")
    tracking = f"TargetTracking-endpoint/{endpoint}/"
    for prefix in (f"{target.name}-", tracking):
        for page in paginator.paginate(AlarmNamePrefix=prefix, StateValue="ALARM"):
            for alarm in page.get("MetricAlarms", []):
                name = alarm["AlarmName"]
                if alarm.get("StateValue") != "ALARM":  # moto drops StateValue when AlarmNamePrefix is given
                    continue
                if prefix == tracking:
                    # Target tracking's low alarm is in ALARM whenever the endpoint idles at its minimum: not news.
                    if "-AlarmLow-" in name:
                        continue
                elif not _STACK_ALARM.fullmatch(name.removeprefix(prefix)):
                    continue
                found[name] = alarm.get("StateReason", "")
    return found


def gather(target: Target, *, jobs: bool = True, alarms: bool = True) -> EndpointStatus:
    """Everything the AWS APIs say about the stack's endpoint, now. ``jobs=False`` skips the job counts (a Scan of
    the whole jobs table), ``alarms=False`` the alarms in ALARM: for a line refreshed every few seconds."""
    endpoint = target.outputs["EndpointName"]
    now = target.now()
    described = target.client("sagemaker").describe_endpoint(EndpointName=endpoint)
    variant: dict[str, Any] = dict((described.get("ProductionVariants") or [{"VariantName": "AllTraffic"}])[0])
    resource = f"endpoint/{endpoint}/variant/{variant.get('VariantName', 'AllTraffic')}"
    scaling = target.client("application-autoscaling")
    targets = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource], ScalableDimension=VARIANT_DIMENSION
    ).get("ScalableTargets", [])
    activities = scaling.describe_scaling_activities(
        ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=VARIANT_DIMENSION, MaxResults=1
    ).get("ScalingActivities", [])
    activity = None
    if activities:
        latest = activities[0]
        activity = Activity(
            latest.get("Description", ""),
            latest.get("Cause", ""),
            latest.get("StatusCode", ""),
            _epoch(latest["StartTime"]),
            _epoch(latest["EndTime"]) if latest.get("EndTime") else None,
        )
    metrics = _latest_metrics(target, endpoint, now)
    return EndpointStatus(
        endpoint=endpoint,
        status=described.get("EndpointStatus", "?"),
        now=now,
        current_instances=variant.get("CurrentInstanceCount"),
        desired_instances=variant.get("DesiredInstanceCount"),
        min_instances=int(targets[0]["MinCapacity"]) if targets else None,
        max_instances=int(targets[0]["MaxCapacity"]) if targets else None,
        backlog=metrics.get("backlog"),
        oldest_request_age_seconds=metrics.get("oldest"),
        backlog_without_capacity=bool(metrics["nocapacity"]) if "nocapacity" in metrics else None,
        activity=activity,
        alarms=_alarms_in_alarm(target, endpoint) if alarms else {},
        jobs=job_records.status_counts(target) if jobs else {},
        instance_start_seconds=target.instance_start_seconds or AWS_TYPICAL_START_SECONDS,
        time_scale=target.time_scale,
    )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def endpoint_line(status: EndpointStatus) -> str:
    """One line: the endpoint, its instances and its backlog (``asyncinfer watch`` shows it above its progress)."""
    instances = f"{status.current_instances if status.current_instances is not None else '?'} instance(s)"
    if status.desired_instances is not None and status.desired_instances != status.current_instances:
        instances += f", {status.desired_instances} desired"
    if status.min_instances is not None:
        instances += f" (min {status.min_instances}, max {status.max_instances})"
    line = f"endpoint {status.endpoint} {status.status}: {instances}"
    if status.backlog is not None:
        line += f"; backlog {status.backlog:g}"
        if status.backlog and status.oldest_request_age_seconds:
            line += f", oldest request {_duration(status.oldest_request_age_seconds)}"
    eta = status.first_instance_in
    if eta is not None:
        line += f"; scaling out from zero, first instance expected in about {_duration(eta)}"
    return line


def lines(status: EndpointStatus) -> list[str]:
    """What ``asyncinfer status`` prints: the endpoint line, then why things wait, alarms, jobs."""
    said = [endpoint_line(status)]
    if status.activity is not None:
        activity = status.activity
        ago = _duration(max(0.0, status.now - activity.started))
        said.append(f"last scaling, {ago} ago: {activity.description} {activity.status} ({activity.cause})")
    waiting = bool(status.backlog) and not status.current_instances
    if waiting and not status.desired_instances:
        if status.min_instances is None:
            said.append("requests wait and no instance runs: autoscaling is off, nothing will start one")
        else:
            said.append(
                "requests wait and no instance runs: the HasBacklogWithoutCapacity alarm starts one after 2 minutes"
            )
    if status.time_scale != 1:
        said.append(
            f"time scale {status.time_scale:g}: metrics, alarms, cooldowns and instance start-up run "
            f"{status.time_scale:g}x faster; RequestTTLSeconds, InvocationTimeoutSeconds and the model's latency keep "
            "real time"
        )
    for name, reason in sorted(status.alarms.items()):
        said.append(f"ALARM {name}: {reason}")
    if status.jobs:
        said.append("jobs: " + ", ".join(f"{count} {state}" for state, count in sorted(status.jobs.items())))
    else:
        said.append("jobs: none")
    return said

"""Application Auto Scaling's decisions for a scalable target, as documented (pure): the policies as
DescribeScalingPolicies returns them, the alarms target tracking creates for itself, and what an alarm's
invocation of a policy does to the desired capacity, with cooldowns and the target's min and max.

* Target tracking creates two alarms on the policy's metric (as AWS does, named ``TargetTracking-…-AlarmHigh/Low``):
  high when the metric exceeds the target for 3 of 3 minutes, low when it is under 90 % of it for 15 of 15. An
  invocation sets the capacity to ``ceil(capacity * metric / target)`` (scale-out never lowers it, scale-in never
  raises it). At zero capacity the formula is taken with one instance, so that a backlog over the target scales
  out from zero, as SageMaker's guide says target tracking alone does for asynchronous endpoints.
* Step scaling applies the step whose interval contains ``metric - threshold`` (lower bound inclusive above the
  threshold, upper bound inclusive below it) (ChangeInCapacity, PercentChangeInCapacity rounded as AAS rounds it,
  then MinAdjustmentMagnitude, ExactCapacity).
* Cooldowns: a policy does not scale out again within its scale-out cooldown (``Cooldown`` for step policies) of its
  own last scale-out; nothing scales in within the scale-in cooldown of the last scaling activity. When policies
  disagree the largest capacity wins; scale-in happens only when no policy wants to scale out.
* Defaults for SageMaker variants: both cooldowns 300 s.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

DEFAULT_COOLDOWN = 300
TRACKING_HIGH_PERIODS = 3
TRACKING_LOW_PERIODS = 15
TRACKING_LOW_RATIO = 0.9
# Predefined metrics of SageMaker variants: namespace, metric, statistic. InvocationsPerInstance is one that
# asynchronous endpoints never publish (reference §5.5): a policy on it never scales.
PREDEFINED = {
    "SageMakerVariantInvocationsPerInstance": ("AWS/SageMaker", "InvocationsPerInstance", "Sum"),
}

Direction = Literal["out", "in"]


class UnsupportedPolicy(ValueError):
    """A policy this emulation cannot run (the message says why); it is reported, never silently skipped."""


@dataclass(frozen=True, slots=True)
class MetricSpec:
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str


@dataclass(frozen=True, slots=True)
class Step:
    lower: float | None
    upper: float | None
    adjustment: int

    def contains(self, difference: float) -> bool:
        """Above the threshold the lower bound is inclusive and the upper exclusive; below it, the other way round
        (Application Auto Scaling's step adjustments). At the threshold itself either reading counts."""
        above = (self.lower is None or difference >= self.lower) and (self.upper is None or difference < self.upper)
        below = (self.lower is None or difference > self.lower) and (self.upper is None or difference <= self.upper)
        if difference > 0:
            return above
        if difference < 0:
            return below
        return above or below


@dataclass(frozen=True, slots=True)
class TrackingPolicy:
    name: str
    arn: str
    resource_id: str
    target_value: float
    metric: MetricSpec
    scale_out_cooldown: int = DEFAULT_COOLDOWN
    scale_in_cooldown: int = DEFAULT_COOLDOWN
    disable_scale_in: bool = False


@dataclass(frozen=True, slots=True)
class StepPolicy:
    name: str
    arn: str
    resource_id: str
    adjustment_type: str
    steps: tuple[Step, ...]
    cooldown: int = DEFAULT_COOLDOWN
    min_adjustment_magnitude: int | None = None


Policy = TrackingPolicy | StepPolicy


def _variant_dimensions(resource_id: str) -> tuple[tuple[str, str], ...]:
    # endpoint/<name>/variant/<variant>
    parts = resource_id.split("/")
    return (("EndpointName", parts[1]), ("VariantName", parts[3])) if len(parts) == 4 else ()


def policy_from_api(policy: Mapping[str, Any]) -> Policy:
    """One entry of DescribeScalingPolicies' ``ScalingPolicies``."""
    name, arn, resource_id = str(policy["PolicyName"]), str(policy["PolicyARN"]), str(policy["ResourceId"])
    if policy["PolicyType"] == "TargetTrackingScaling":
        config = policy["TargetTrackingScalingPolicyConfiguration"]
        custom = config.get("CustomizedMetricSpecification")
        if custom:
            if "MetricName" not in custom:
                raise UnsupportedPolicy(f"policy {name}: metric math is not emulated")
            metric = MetricSpec(
                str(custom["Namespace"]),
                str(custom["MetricName"]),
                tuple((str(d["Name"]), str(d["Value"])) for d in custom.get("Dimensions") or ()),
                str(custom.get("Statistic", "Average")),
            )
        else:
            kind = str(config.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType"))
            if kind not in PREDEFINED:
                raise UnsupportedPolicy(f"policy {name}: predefined metric {kind} is not emulated")
            namespace, metric_name, statistic = PREDEFINED[kind]
            metric = MetricSpec(namespace, metric_name, _variant_dimensions(resource_id), statistic)
        return TrackingPolicy(
            name,
            arn,
            resource_id,
            float(config["TargetValue"]),
            metric,
            int(config.get("ScaleOutCooldown", DEFAULT_COOLDOWN)),
            int(config.get("ScaleInCooldown", DEFAULT_COOLDOWN)),
            bool(config.get("DisableScaleIn", False)),
        )
    if policy["PolicyType"] == "StepScaling":
        config = policy["StepScalingPolicyConfiguration"]
        steps = tuple(
            Step(
                float(s["MetricIntervalLowerBound"]) if "MetricIntervalLowerBound" in s else None,
                float(s["MetricIntervalUpperBound"]) if "MetricIntervalUpperBound" in s else None,
                int(s["ScalingAdjustment"]),
            )
            for s in config.get("StepAdjustments") or ()
        )
        magnitude = config.get("MinAdjustmentMagnitude")
        return StepPolicy(
            name,
            arn,
            resource_id,
            str(config.get("AdjustmentType", "ChangeInCapacity")),
            steps,
            int(config.get("Cooldown", DEFAULT_COOLDOWN)),
            int(magnitude) if magnitude is not None else None,
        )
    raise UnsupportedPolicy(f"policy {name}: type {policy['PolicyType']} is not emulated")


def tracking_alarms(policy: TrackingPolicy) -> list[dict[str, Any]]:
    """PutMetricAlarm parameters of the alarms Application Auto Scaling creates for a target tracking policy."""
    common = {
        "Namespace": policy.metric.namespace,
        "MetricName": policy.metric.metric_name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in policy.metric.dimensions],
        "Statistic": policy.metric.statistic,
        "Period": 60,
        "AlarmActions": [policy.arn],
        "AlarmDescription": f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy.arn}.",
    }
    prefix = f"TargetTracking-{policy.resource_id}"
    alarms = [
        {
            **common,
            "AlarmName": f"{prefix}-AlarmHigh-{uuid.uuid4()}",
            "EvaluationPeriods": TRACKING_HIGH_PERIODS,
            "DatapointsToAlarm": TRACKING_HIGH_PERIODS,
            "Threshold": policy.target_value,
            "ComparisonOperator": "GreaterThanThreshold",
        }
    ]
    if not policy.disable_scale_in:
        alarms.append(
            {
                **common,
                "AlarmName": f"{prefix}-AlarmLow-{uuid.uuid4()}",
                "EvaluationPeriods": TRACKING_LOW_PERIODS,
                "DatapointsToAlarm": TRACKING_LOW_PERIODS,
                "Threshold": round(policy.target_value * TRACKING_LOW_RATIO, 6),
                "ComparisonOperator": "LessThanThreshold",
            }
        )
    return alarms


def tracking_capacity(policy: TrackingPolicy, capacity: int, metric_value: float, direction: Direction) -> int:
    proposed = math.ceil(max(capacity, 1) * metric_value / policy.target_value - 1e-9)
    return max(proposed, capacity) if direction == "out" else min(proposed, capacity)


def step_capacity(policy: StepPolicy, capacity: int, metric_value: float, threshold: float) -> int:
    difference = metric_value - threshold
    step = next((s for s in policy.steps if s.contains(difference)), None)
    if step is None:
        return capacity
    if policy.adjustment_type == "ExactCapacity":
        return step.adjustment
    if policy.adjustment_type == "PercentChangeInCapacity":
        change = percent_change(capacity, step.adjustment)
        if policy.min_adjustment_magnitude and abs(change) < policy.min_adjustment_magnitude:
            change = int(math.copysign(policy.min_adjustment_magnitude, step.adjustment))
        return capacity + change
    return capacity + step.adjustment


def percent_change(capacity: int, percent: int) -> int:
    """Application Auto Scaling's rounding of a percent change: between 0 and 1 is 1, between -1 and 0 is -1,
    above 1 rounds down, below -1 rounds up (toward zero)."""
    raw = capacity * percent / 100
    if 0 < raw < 1:
        return 1
    if -1 < raw < 0:
        return -1
    return math.floor(raw) if raw > 0 else math.ceil(raw)


def suspended(state: Mapping[str, Any], proposed: int, capacity: int) -> bool:
    """Whether the scalable target's ``SuspendedState`` stops a policy proposing ``proposed`` (dynamic scaling:
    ``DynamicScalingOutSuspended`` for more, ``DynamicScalingInSuspended`` for fewer)."""
    if proposed > capacity:
        return bool(state.get("DynamicScalingOutSuspended"))
    if proposed < capacity:
        return bool(state.get("DynamicScalingInSuspended"))
    return False


@dataclass(frozen=True, slots=True)
class Invocation:
    """An alarm in ALARM invoked ``policy``, which proposes ``capacity``."""

    policy: Policy
    capacity: int
    alarm_name: str


@dataclass
class ScalingHistory:
    """When the target last scaled, for cooldowns (emulated seconds)."""

    last_scale_out: dict[str, float] = field(default_factory=dict)  # by policy ARN
    last_activity: float | None = None

    def record(self, invocation: Invocation, direction: Direction, now: float) -> None:
        if direction == "out":
            self.last_scale_out[invocation.policy.arn] = now
        self.last_activity = now


def _scale_out_cooldown(policy: Policy) -> int:
    return policy.scale_out_cooldown if isinstance(policy, TrackingPolicy) else policy.cooldown


def _scale_in_cooldown(policy: Policy) -> int:
    return policy.scale_in_cooldown if isinstance(policy, TrackingPolicy) else policy.cooldown


@dataclass(frozen=True, slots=True)
class Decision:
    capacity: int
    direction: Direction
    invocation: Invocation


def decide(
    invocations: Iterable[Invocation],
    capacity: int,
    min_capacity: int,
    max_capacity: int,
    history: ScalingHistory,
    now: float,
) -> Decision | None:
    """The capacity the target moves to now, or None (nothing to do, or cooling down)."""

    def clamp(value: int) -> int:
        return max(min_capacity, min(max_capacity, value))

    outs, ins = [], []
    wants_out = False  # a policy that wants to scale out blocks scale-in, even while its own cooldown runs
    for invocation in invocations:
        proposed = clamp(invocation.capacity)
        if proposed > capacity:
            wants_out = True
            last = history.last_scale_out.get(invocation.policy.arn)
            if last is None or now - last >= _scale_out_cooldown(invocation.policy):
                outs.append((proposed, invocation))
        elif proposed < capacity:
            ins.append((proposed, invocation))
    if outs:
        proposed, invocation = max(outs, key=lambda pair: pair[0])
        return Decision(proposed, "out", invocation)
    if ins and not wants_out:
        proposed, invocation = max(ins, key=lambda pair: pair[0])
        last = history.last_activity
        if last is None or now - last >= _scale_in_cooldown(invocation.policy):
            return Decision(proposed, "in", invocation)
    return None

"""Application Auto Scaling's decisions: the template's policies as DescribeScalingPolicies returns them."""

from __future__ import annotations

import pytest

from asyncinfer.local.autoscaling import (
    Invocation,
    ScalingHistory,
    StepPolicy,
    TrackingPolicy,
    UnsupportedPolicy,
    decide,
    policy_from_api,
    step_capacity,
    suspended,
    tracking_alarms,
    tracking_capacity,
)

RESOURCE = "endpoint/ep/variant/AllTraffic"
TRACKING = {
    "PolicyName": "backlog",
    "PolicyARN": "arn:tracking",
    "ResourceId": RESOURCE,
    "PolicyType": "TargetTrackingScaling",
    "TargetTrackingScalingPolicyConfiguration": {
        "TargetValue": 5.0,
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 60,
        "CustomizedMetricSpecification": {
            "MetricName": "ApproximateBacklogSizePerInstance",
            "Namespace": "AWS/SageMaker",
            "Statistic": "Average",
            "Dimensions": [{"Name": "EndpointName", "Value": "ep"}],
        },
    },
}
STEP = {
    "PolicyName": "from-zero",
    "PolicyARN": "arn:step",
    "ResourceId": RESOURCE,
    "PolicyType": "StepScaling",
    "StepScalingPolicyConfiguration": {
        "AdjustmentType": "ChangeInCapacity",
        "MetricAggregationType": "Average",
        "Cooldown": 300,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
    },
}


def tracking() -> TrackingPolicy:
    policy = policy_from_api(TRACKING)
    assert isinstance(policy, TrackingPolicy)
    return policy


def step() -> StepPolicy:
    policy = policy_from_api(STEP)
    assert isinstance(policy, StepPolicy)
    return policy


def test_tracking_alarms_are_awss() -> None:
    high, low = tracking_alarms(tracking())
    assert high["AlarmName"].startswith(f"TargetTracking-{RESOURCE}-AlarmHigh-")
    assert (high["EvaluationPeriods"], high["Threshold"], high["ComparisonOperator"]) == (
        3,
        5.0,
        "GreaterThanThreshold",
    )
    assert (low["EvaluationPeriods"], low["Threshold"], low["ComparisonOperator"]) == (15, 4.5, "LessThanThreshold")
    assert high["AlarmActions"] == ["arn:tracking"]
    assert high["MetricName"] == "ApproximateBacklogSizePerInstance"


def test_predefined_invocations_per_instance_tracks_a_metric_async_endpoints_never_publish() -> None:
    config = {
        "TargetValue": 10.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    }
    policy = policy_from_api({**TRACKING, "TargetTrackingScalingPolicyConfiguration": config})
    assert isinstance(policy, TrackingPolicy)
    assert policy.metric.metric_name == "InvocationsPerInstance"
    assert policy.metric.dimensions == (("EndpointName", "ep"), ("VariantName", "AllTraffic"))


def test_unknown_predefined_metric_is_refused() -> None:
    config = {
        "TargetValue": 1.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
    }
    with pytest.raises(UnsupportedPolicy):
        policy_from_api({**TRACKING, "TargetTrackingScalingPolicyConfiguration": config})


def test_tracking_capacity() -> None:
    assert tracking_capacity(tracking(), 1, 12.0, "out") == 3  # ceil(1 * 12 / 5)
    assert tracking_capacity(tracking(), 0, 6.0, "out") == 2  # from zero: the backlog over the target
    assert tracking_capacity(tracking(), 2, 0.0, "in") == 0
    assert tracking_capacity(tracking(), 2, 4.0, "in") == 2  # ceil(1.6): no change


def test_step_capacity() -> None:
    assert step_capacity(step(), 0, 1.0, 1.0) == 1
    assert step_capacity(step(), 0, 0.0, 1.0) == 0  # below the threshold: no step applies
    percent = policy_from_api(
        {
            **STEP,
            "StepScalingPolicyConfiguration": {
                **STEP["StepScalingPolicyConfiguration"],
                "AdjustmentType": "PercentChangeInCapacity",
                "MinAdjustmentMagnitude": 1,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 10}],
            },
        }
    )
    assert isinstance(percent, StepPolicy)
    assert step_capacity(percent, 2, 1.0, 1.0) == 3  # 10 % of 2 is 0.2: the minimum magnitude applies


def test_decide_clamps_and_takes_the_largest() -> None:
    history = ScalingHistory()
    invocations = [Invocation(step(), 1, "a"), Invocation(tracking(), 9, "b")]
    decision = decide(invocations, 0, 0, 2, history, now=0)
    assert decision is not None
    assert (decision.capacity, decision.direction, decision.invocation.alarm_name) == (2, "out", "b")


def test_scale_out_cooldown_is_per_policy() -> None:
    history = ScalingHistory()
    first = Invocation(step(), 1, "backlog")
    history.record(first, "out", 0)
    assert decide([Invocation(step(), 2, "backlog")], 1, 0, 5, history, now=299) is None
    assert decide([Invocation(tracking(), 2, "high")], 1, 0, 5, history, now=60) is not None
    assert decide([Invocation(step(), 2, "backlog")], 1, 0, 5, history, now=300) is not None


def test_scale_in_waits_for_its_cooldown_and_for_no_scale_out() -> None:
    history = ScalingHistory()
    history.record(Invocation(tracking(), 2, "high"), "out", 0)
    low = Invocation(tracking(), 0, "low")
    assert decide([low], 2, 0, 2, history, now=299) is None
    decision = decide([low], 2, 0, 2, history, now=300)
    assert decision is not None
    assert (decision.capacity, decision.direction) == (0, "in")
    assert decide([low, Invocation(step(), 3, "b")], 2, 0, 5, history, now=900).direction == "out"  # type: ignore[union-attr]


def test_scale_in_stops_at_min_capacity() -> None:
    decision = decide([Invocation(tracking(), 0, "low")], 2, 1, 2, ScalingHistory(), now=0)
    assert decision is not None
    assert decision.capacity == 1


def test_a_scale_out_cooling_down_still_blocks_scale_in() -> None:
    history = ScalingHistory()
    history.record(Invocation(step(), 1, "backlog"), "out", 0)
    # At 200 s the step policy (cooldown 300 s, last scale-out at 0) is cooling down but still wants out: the low
    # alarm's scale-in must wait, as AWS does.
    blocked = [Invocation(tracking(), 0, "low"), Invocation(step(), 2, "backlog")]
    history.last_activity = -1000  # no recent activity: only the scale-out's wish blocks the scale-in
    assert decide(blocked, 1, 0, 5, history, now=200) is None
    assert decide([Invocation(tracking(), 0, "low")], 1, 0, 5, history, now=200) is not None


def percent_policy(adjustment: int, magnitude: int | None = None) -> StepPolicy:
    config: dict[str, object] = {
        **STEP["StepScalingPolicyConfiguration"],  # type: ignore[dict-item]
        "AdjustmentType": "PercentChangeInCapacity",
        "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": adjustment}],
    }
    if magnitude is not None:
        config["MinAdjustmentMagnitude"] = magnitude
    policy = policy_from_api({**STEP, "StepScalingPolicyConfiguration": config})
    assert isinstance(policy, StepPolicy)
    return policy


@pytest.mark.parametrize(
    ("capacity", "percent", "expected"),
    [
        (1, 50, 2),  # +0.5 rounds to +1
        (2, -30, 1),  # -0.6 rounds to -1
        (3, 50, 4),  # +1.5 rounds down
        (5, -30, 4),  # -1.5 rounds up
        (4, 50, 6),
        (0, 50, 0),  # nothing to take a percentage of
    ],
)
def test_a_percent_change_rounds_as_application_auto_scaling(capacity: int, percent: int, expected: int) -> None:
    assert step_capacity(percent_policy(percent), capacity, 1.0, 1.0) == expected


def test_min_adjustment_magnitude_applies_after_rounding() -> None:
    assert step_capacity(percent_policy(50, magnitude=2), 1, 1.0, 1.0) == 3


def test_step_bounds_below_the_threshold_are_lower_exclusive_upper_inclusive() -> None:
    below = policy_from_api(
        {
            **STEP,
            "StepScalingPolicyConfiguration": {
                **STEP["StepScalingPolicyConfiguration"],  # type: ignore[dict-item]
                "StepAdjustments": [
                    {"MetricIntervalLowerBound": -2.0, "MetricIntervalUpperBound": -1.0, "ScalingAdjustment": -1},
                    {"MetricIntervalUpperBound": -2.0, "ScalingAdjustment": -2},
                ],
            },
        }
    )
    assert isinstance(below, StepPolicy)
    assert step_capacity(below, 5, 8.0, 10.0) == 3  # difference -2: the upper bound of (-inf, -2] holds it
    assert step_capacity(below, 5, 9.0, 10.0) == 4  # difference -1: (-2, -1]
    above = policy_from_api(
        {
            **STEP,
            "StepScalingPolicyConfiguration": {
                **STEP["StepScalingPolicyConfiguration"],  # type: ignore[dict-item]
                "StepAdjustments": [
                    {"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 2.0, "ScalingAdjustment": 1},
                    {"MetricIntervalLowerBound": 2.0, "ScalingAdjustment": 2},
                ],
            },
        }
    )
    assert isinstance(above, StepPolicy)
    assert step_capacity(above, 1, 12.0, 10.0) == 3  # difference 2: [2, inf)


def test_suspended_dynamic_scaling() -> None:
    out = {"DynamicScalingOutSuspended": True}
    assert suspended(out, 2, 1) and not suspended(out, 0, 1)
    assert suspended({"DynamicScalingInSuspended": True}, 0, 1)
    assert not suspended({}, 2, 1)

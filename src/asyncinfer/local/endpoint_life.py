"""The endpoint's life on the local stack: what CloudWatch and Application Auto Scaling do for it on AWS.

Every emulated minute (:mod:`asyncinfer.local.time_scale`) :class:`EndpointLife`

1. publishes the endpoint's metrics to CloudWatch (moto) as SageMaker does (:mod:`cloudwatch_metrics`);
2. evaluates every metric alarm CloudWatch holds, the template's and those target tracking created, on the data
   CloudWatch holds (:mod:`alarms`), sets their state and runs their actions: an SNS topic is told of each change of
   state, a scaling policy is invoked at every evaluation in ALARM (as CloudWatch does for Auto Scaling actions);
3. decides, per scalable target, what the invoked policies do to its capacity (:mod:`autoscaling`) and sets the
   variant's desired instance count with UpdateEndpointWeightsAndCapacities, recording the scaling activity;
4. follows the variant's desired count (DescribeEndpoint: also UpdateEndpoint's) with instances that take time to
   start and to stop (:mod:`endpoint.instances`); the emulator serves with the running ones, and moto's
   DescribeEndpoint reports them as CurrentInstanceCount.

So everything the template says about scaling is read from the AWS APIs, as AWS reads it, and everything the loop
does is visible through the AWS APIs (``asyncinfer status`` reads nothing else).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from asyncinfer.local import alarms, autoscaling
from asyncinfer.local.cloudwatch_metrics import NAMESPACE, PERIOD_SECONDS, EndpointMeter, QueueSnapshot, metric_data
from asyncinfer.local.endpoint.instances import InstanceFleet
from asyncinfer.local.time_scale import ScaledClock

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sns import SNSClient

    from asyncinfer.local.endpoint.emulator import AsyncEndpointEmulator

logger = logging.getLogger(__name__)

VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# How often (real seconds) the variant's desired count is read between minutes (UpdateEndpointWeightsAndCapacities
# or UpdateEndpoint by someone else: SageMaker acts on it at once).
FOLLOW_SECONDS = 1.0
# Behind by more than this many emulated minutes (a time scale this machine cannot keep up with): skip ahead.
MAX_LAG_MINUTES = 30

Recorder = Callable[[dict[str, Any]], object]  # tells moto what happened (moto_process.record_emulated)


@dataclass(frozen=True, slots=True)
class LifeOptions:
    """``time_scale``: emulated seconds per real second. ``instance_start_seconds`` / ``instance_stop_seconds``:
    how long an instance takes to come into service and to go (emulated seconds; AWS: minutes to start)."""

    time_scale: float = 1.0
    instance_start_seconds: float = 120.0
    instance_stop_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class LifeClients:
    # No type stubs are installed for CloudWatch and Application Auto Scaling: botocore clients, untyped.
    cloudwatch: Any
    autoscaling: Any
    sagemaker: SageMakerClient
    sns: SNSClient


@dataclass
class _Variant:
    endpoint: str
    variant: str
    fleet: InstanceFleet
    history: autoscaling.ScalingHistory = field(default_factory=autoscaling.ScalingHistory)
    activity: dict[str, Any] | None = None  # the scaling activity in progress
    serving: int | None = None  # the instance count the emulator serves with
    reported_current: int | None = None  # the CurrentInstanceCount moto was told

    @property
    def resource_id(self) -> str:
        return f"endpoint/{self.endpoint}/variant/{self.variant}"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EndpointLife:
    """The loop above, on a daemon thread, for the given endpoints of ``emulator``."""

    def __init__(
        self,
        emulator: AsyncEndpointEmulator,
        clients: LifeClients,
        endpoints: Iterable[str],
        *,
        region: str,
        account: str,
        recorder: Recorder,
        options: LifeOptions | None = None,
        clock: ScaledClock | None = None,
    ) -> None:
        self.options = options or LifeOptions()
        self.clock = clock or ScaledClock(self.options.time_scale)
        self.meter = EndpointMeter()
        self.unsupported: dict[str, str] = {}  # alarm or policy name → why it is not evaluated
        self._emulator = emulator
        self._clients = clients
        self._endpoint_names = list(endpoints)
        self._region, self._account = region, account
        self._record = recorder
        self._variants: dict[str, _Variant] = {}
        self._policies: dict[str, autoscaling.Policy] = {}  # by ARN
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start following the endpoints, and the loop's thread."""
        self.start_without_thread()
        self._thread = threading.Thread(target=self._run, name="endpoint-life", daemon=True)
        self._thread.start()

    def start_without_thread(self) -> None:
        """Start following the endpoints; the caller then calls :meth:`minute` itself (tests, on a fake clock)."""
        self._emulator.add_hooks(self.meter)
        now = self.clock.now()
        for name in self._endpoint_names:
            variant = self._clients.sagemaker.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
            count = int(variant.get("CurrentInstanceCount", variant.get("DesiredInstanceCount", 1)))
            fleet = InstanceFleet.running(
                count, now, self.options.instance_start_seconds, self.options.instance_stop_seconds
            )
            self._variants[name] = _Variant(name, variant["VariantName"], fleet, serving=count, reported_current=count)
        self._sync_policies()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        minute = (math.floor(self.clock.now() / PERIOD_SECONDS) + 1) * PERIOD_SECONDS
        while not self._stop.is_set():
            now = self.clock.now()
            if now >= minute:
                try:
                    self.minute(minute)
                except Exception:  # the loop must outlive a failed call to moto; the next minute tries again
                    logger.exception("endpoint life: the minute ending %s failed", _iso(minute))
                minute += PERIOD_SECONDS
                if self.clock.now() - minute > MAX_LAG_MINUTES * PERIOD_SECONDS:
                    logger.warning("endpoint life: %s minutes behind, skipping ahead", MAX_LAG_MINUTES)
                    minute = (math.floor(self.clock.now() / PERIOD_SECONDS) + 1) * PERIOD_SECONDS
                continue
            try:
                with self._lock:
                    self._follow_desired(now)  # SageMaker acts on a new desired count at once, not at the minute
                    self._advance(now)
            except Exception:  # as above: an instance change is reported again at the next minute
                logger.exception("endpoint life: instance changes could not be applied")
            follow = now + FOLLOW_SECONDS * self.clock.scale
            changes = (c for v in self._variants.values() if (c := v.fleet.next_change()) is not None)
            wake = min([minute, follow, *changes])
            self.clock.wait(self._stop, max(wake - now, 0.0) + 0.001)

    # --- one minute -----------------------------------------------------------------------------------------------

    def minute(self, end: float) -> None:
        """Everything that happens at the end of the emulated minute ``[end - 60, end)``."""
        with self._lock:
            self._follow_desired(end)
            for variant in self._variants.values():
                # Someone else set the emulator's count (an UpdateEndpoint that ended with the counts of its new
                # config): the fleet decides, and both are told again. Zero behind the fleet's back is a fault
                # episode (ttl-expiry: no instance for a few seconds), held until the fault restores the count.
                if self._served(variant) != variant.serving and not self._held(variant):
                    variant.serving = None
                variant.reported_current = None
            self._advance(end)
            for variant in self._variants.values():
                self._publish(variant, end - PERIOD_SECONDS)
            described = self._sync_policies()
            invocations = self._evaluate_alarms(described, end)
            self._scale(invocations, end)

    def _follow_desired(self, now: float) -> None:
        for variant in self._variants.values():
            described = self._clients.sagemaker.describe_endpoint(EndpointName=variant.endpoint)
            for entry in described["ProductionVariants"]:
                desired = entry.get("DesiredInstanceCount")
                if entry["VariantName"] == variant.variant and desired is not None and desired != variant.fleet.desired:
                    variant.fleet.set_desired(int(desired), now)
                    if "PendingDeploymentSummary" not in described:  # a capacity change, not an UpdateEndpoint
                        self._emulator.capacity_changed(variant.endpoint)

    def _advance(self, now: float) -> None:
        with self._lock:
            for variant in self._variants.values():
                variant.fleet.advance(now)
                running = variant.fleet.running_count
                if running != variant.serving and not self._held(variant):
                    self._emulator.set_instance_count(variant.endpoint, running)
                    variant.serving = running
                # SageMaker's CurrentInstanceCount: instances in service, and those still draining before they go.
                current = running + variant.fleet.stopping_count
                if current != variant.reported_current:
                    self._record(
                        {
                            "kind": "instance_count",
                            "region": self._region,
                            "account": self._account,
                            "endpoint": variant.endpoint,
                            "variant": variant.variant,
                            "count": current,
                        }
                    )
                    variant.reported_current = current
                fleet = variant.fleet
                if variant.activity is not None and not fleet.starting_count and not fleet.stopping_count:
                    self._finish_activity(variant, now)

    def _served(self, variant: _Variant) -> int:
        return int(self._emulator.stats(variant.endpoint)["instances"])

    def _held(self, variant: _Variant) -> bool:
        """The emulator serves with no instance while the fleet had it serve with some: a fault episode owns the
        count (faults/endpoint.py restores it)."""
        return bool(variant.serving) and self._served(variant) == 0

    def _publish(self, variant: _Variant, timestamp: float) -> None:
        stats = self._emulator.stats(variant.endpoint)
        oldest = self.meter.oldest_received_at(variant.endpoint)
        age = None if oldest is None else max(0.0, (self.clock.real() - oldest) * self.clock.scale)
        # What the emulator serves with (a fault episode's zero included), as SageMaker's metrics see the instances.
        snapshot = QueueSnapshot(variant.endpoint, variant.variant, stats["backlog"], stats["instances"], age)
        data = metric_data(snapshot, self.meter.take(variant.endpoint), datetime.fromtimestamp(timestamp, UTC))
        self._clients.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)

    # --- policies and alarms --------------------------------------------------------------------------------------

    def _sync_policies(self) -> list[dict[str, Any]]:
        """Read the scaling policies; give each target tracking policy its two alarms (and drop the alarms of a
        policy that is gone), as Application Auto Scaling does. Returns every metric alarm, as DescribeAlarms does."""
        described = self._clients.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")
        policies: dict[str, autoscaling.Policy] = {}
        for entry in described.get("ScalingPolicies", []):
            try:
                policy = autoscaling.policy_from_api(entry)
            except autoscaling.UnsupportedPolicy as exc:
                self._unsupported(entry["PolicyName"], str(exc))
                continue
            policies[policy.arn] = policy
        self._policies = policies
        described = self._describe_alarms()
        tracking_alarms: dict[str, list[str]] = {}
        for alarm in described:
            if alarm["AlarmName"].startswith("TargetTracking-"):
                for action in alarm.get("AlarmActions", []):
                    tracking_alarms.setdefault(action, []).append(alarm["AlarmName"])
        changed = False
        for arn, policy in policies.items():
            if isinstance(policy, autoscaling.TrackingPolicy) and arn not in tracking_alarms:
                for params in autoscaling.tracking_alarms(policy):
                    self._clients.cloudwatch.put_metric_alarm(**params)
                changed = True
        gone = [name for arn, names in tracking_alarms.items() if arn not in policies for name in names]
        if gone:
            self._clients.cloudwatch.delete_alarms(AlarmNames=gone)
            changed = True
        return self._describe_alarms() if changed else described

    def _describe_alarms(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {}
        while True:
            page = self._clients.cloudwatch.describe_alarms(**params)
            found += page.get("MetricAlarms", [])
            if not page.get("NextToken"):
                return found
            params["NextToken"] = page["NextToken"]

    def _unsupported(self, name: str, why: str) -> None:
        if name not in self.unsupported:
            logger.warning("endpoint life: %s", why)
            self.unsupported[name] = why

    def _values(self, defined: list[alarms.AlarmDefinition], end: float) -> list[list[float | None]]:
        """Each alarm's period values over its evaluation range (oldest first), in one GetMetricData call."""
        if not defined:
            return []
        step = math.lcm(*(a.period for a in defined))
        window = math.ceil(max(a.period * alarms.evaluation_range(a) for a in defined) / step) * step
        start = end - window
        queries = [
            {
                "Id": f"q{index}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": a.namespace,
                        "MetricName": a.metric_name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in a.dimensions],
                    },
                    "Period": a.period,
                    "Stat": a.statistic,
                },
            }
            for index, a in enumerate(defined)
        ]
        found: dict[str, dict[float, float]] = {}
        params: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": datetime.fromtimestamp(start, UTC),
            "EndTime": datetime.fromtimestamp(end, UTC),
        }
        while True:
            page = self._clients.cloudwatch.get_metric_data(**params)
            for result in page.get("MetricDataResults", []):
                points = found.setdefault(result["Id"], {})
                points.update(zip((t.timestamp() for t in result["Timestamps"]), result["Values"], strict=True))
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]
        values = []
        for index, a in enumerate(defined):
            periods = alarms.evaluation_range(a)
            series: list[float | None] = [None] * periods
            for stamp, value in found.get(f"q{index}", {}).items():
                slot = periods - math.ceil((end - stamp) / a.period)
                if 0 <= slot < periods and stamp < end:
                    series[slot] = float(value)
            values.append(series)
        return values

    def _evaluate_alarms(self, described: list[dict[str, Any]], end: float) -> list[autoscaling.Invocation]:
        invocations: list[autoscaling.Invocation] = []
        defined, raws = [], []
        for raw in described:
            try:
                defined.append(alarms.AlarmDefinition.from_api(raw))
                raws.append(raw)
            except alarms.UnsupportedAlarm as exc:
                self._unsupported(str(raw.get("AlarmName")), str(exc))
        for alarm, raw, values in zip(defined, raws, self._values(defined, end), strict=True):
            old: alarms.AlarmState = raw.get("StateValue", "INSUFFICIENT_DATA")
            new = alarms.evaluate(alarm, values, old)
            if new != old:
                why = alarms.reason(alarm, values, new)
                self._clients.cloudwatch.set_alarm_state(AlarmName=alarm.name, StateValue=new, StateReason=why)
                self._notify(alarm, old, new, why, end)
            if new == "ALARM":
                latest = next((v for v in reversed(values) if v is not None), None)
                invocations += self._invoke(alarm, latest)
        return invocations

    def _notify(
        self, alarm: alarms.AlarmDefinition, old: alarms.AlarmState, new: alarms.AlarmState, why: str, end: float
    ) -> None:
        for action in alarm.actions_for(new):
            if action.startswith("arn:aws:sns:"):
                subject, message = alarms.notification(alarm, old, new, why, _iso(end), self._region, self._account)
                try:
                    self._clients.sns.publish(TopicArn=action, Subject=subject, Message=json.dumps(message))
                except Exception as exc:  # a topic that is gone or refuses: CloudWatch records it and goes on
                    logger.warning("endpoint life: alarm %s could not notify %s: %s", alarm.name, action, exc)
            elif ":scalingPolicy:" not in action:
                self._unsupported(f"{alarm.name} action {action}", f"alarm action {action} is not emulated")

    def _invoke(self, alarm: alarms.AlarmDefinition, latest: float | None) -> list[autoscaling.Invocation]:
        invocations = []
        for action in alarm.alarm_actions if alarm.actions_enabled else ():
            policy = self._policies.get(action)
            if policy is None or latest is None:
                continue
            variant = next((v for v in self._variants.values() if v.resource_id == policy.resource_id), None)
            if variant is None:
                continue
            capacity = variant.fleet.desired
            if isinstance(policy, autoscaling.TrackingPolicy):
                direction: autoscaling.Direction = "out" if alarm.comparison.startswith("Greater") else "in"
                proposed = autoscaling.tracking_capacity(policy, capacity, latest, direction)
            else:
                proposed = autoscaling.step_capacity(policy, capacity, latest, alarm.threshold)
            invocations.append(autoscaling.Invocation(policy, proposed, alarm.name))
        return invocations

    # --- scaling --------------------------------------------------------------------------------------------------

    def _scale(self, invocations: list[autoscaling.Invocation], now: float) -> None:
        targets = self._clients.autoscaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ScalableDimension=VARIANT_DIMENSION
        ).get("ScalableTargets", [])
        for target in targets:
            variant = next((v for v in self._variants.values() if v.resource_id == target["ResourceId"]), None)
            if variant is None:
                continue
            low, high = int(target["MinCapacity"]), int(target["MaxCapacity"])
            capacity = variant.fleet.desired
            suspended = target.get("SuspendedState") or {}
            mine = [
                i
                for i in invocations
                if i.policy.resource_id == variant.resource_id
                and not autoscaling.suspended(suspended, i.capacity, capacity)
            ]
            decision = autoscaling.decide(mine, capacity, low, high, variant.history, now)
            if decision is not None:
                cause = (
                    f"monitor alarm {decision.invocation.alarm_name} in state ALARM triggered policy "
                    f"{decision.invocation.policy.name}"
                )
                # The cooldown starts only when the change was accepted: a refused one is retried next minute.
                if self._try_set_desired(variant, decision.capacity, cause, now):
                    variant.history.record(decision.invocation, decision.direction, now)
            elif not low <= capacity <= high:
                self._try_set_desired(variant, max(low, min(high, capacity)), "the scalable target's min or max", now)

    def _try_set_desired(self, variant: _Variant, capacity: int, cause: str, now: float) -> bool:
        """:meth:`_set_desired`; when SageMaker refuses (an endpoint still updating, say), a Failed scaling
        activity with the error, as Application Auto Scaling records one, and False. Other targets go on."""
        try:
            self._set_desired(variant, capacity, cause, now)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            reason = f"{error.get('Code', 'Error')}: {error.get('Message', str(exc))}"
            logger.warning("endpoint life: %s → %s instance(s) refused: %s", variant.endpoint, capacity, reason)
            self._record_activity(
                _activity(
                    variant,
                    capacity,
                    cause,
                    now,
                    EndTime=now,
                    StatusCode="Failed",
                    StatusMessage=f"Failed to set desired instance count to {capacity}. Reason: {reason}",
                )
            )
            return False
        return True

    def _set_desired(self, variant: _Variant, capacity: int, cause: str, now: float) -> None:
        described = self._clients.sagemaker.describe_endpoint(EndpointName=variant.endpoint)
        weight = next(
            (v.get("CurrentWeight") for v in described["ProductionVariants"] if v["VariantName"] == variant.variant),
            None,
        )
        self._clients.sagemaker.update_endpoint_weights_and_capacities(
            EndpointName=variant.endpoint,
            DesiredWeightsAndCapacities=[
                {
                    "VariantName": variant.variant,
                    "DesiredInstanceCount": capacity,
                    "DesiredWeight": float(weight or 1.0),
                }
            ],
        )
        variant.fleet.set_desired(capacity, now)
        self._emulator.capacity_changed(variant.endpoint)
        if variant.activity is not None:
            self._finish_activity(variant, now, "Overridden")
        variant.activity = _activity(
            variant,
            capacity,
            cause,
            now,
            StatusCode="InProgress",
            StatusMessage="Waiting for change to be fulfilled by sagemaker.",
        )
        self._record(
            {"kind": "scaling_activity", "region": self._region, "account": self._account, "activity": variant.activity}
        )
        logger.info("endpoint life: %s → %s instance(s) (%s)", variant.endpoint, capacity, cause)
        self._advance(now)

    def _finish_activity(self, variant: _Variant, now: float, status: str = "Successful") -> None:
        activity = variant.activity
        assert activity is not None
        count = activity["Description"].removeprefix("Setting desired instance count to ").rstrip(".")
        message = (
            f"Successfully set desired instance count to {count}. Change successfully fulfilled by sagemaker."
            if status == "Successful"
            else "A later scaling activity replaced this one."
        )
        done = {**activity, "EndTime": now, "StatusCode": status, "StatusMessage": message}
        variant.activity = None
        self._record_activity(done)

    def _record_activity(self, activity: dict[str, Any]) -> None:
        self._record(
            {"kind": "scaling_activity", "region": self._region, "account": self._account, "activity": activity}
        )


def _activity(variant: _Variant, capacity: int, cause: str, now: float, **status: object) -> dict[str, Any]:
    """A scaling activity of ``variant`` setting ``capacity`` (DescribeScalingActivities' shape), with its status."""
    return {
        "ActivityId": str(uuid.uuid4()),
        "ServiceNamespace": "sagemaker",
        "ResourceId": variant.resource_id,
        "ScalableDimension": VARIANT_DIMENSION,
        "Description": f"Setting desired instance count to {capacity}.",
        "Cause": cause,
        "StartTime": now,
        **status,
    }

"""Every patch the local stack applies to moto, in one place: where moto's output differs from what AWS sends and
the pipeline depends on it, and where moto spends CPU for nothing on every request.

Each patch names the moto function it wraps. tests/integration/test_local_stack.py asserts the shapes the first
kind produces; tests/unit/test_moto_patches.py shows the second kind changes no result (events still match, messages
still expire, every service still routes), so a moto upgrade that breaks a patch fails loudly.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from moto.s3.models import FakeBucket, FakeKey

DEFAULT_ACCOUNT = "123456789012"  # moto's
_applied = False
_lock = threading.Lock()
_sequence = itertools.count()


def _sequencer() -> str:
    # S3 sequencers are hex strings that order events on one key; time plus a counter keeps them increasing.
    return f"{time.time_ns():016X}{next(_sequence) % 0xFFFF:04X}"


# DynamoDB operations that read or write items. moto checks a ConditionExpression and then writes, with nothing
# between two server threads doing so at once: two conditional updates of one item can then both succeed, which
# DynamoDB never allows (conditional writes are atomic per item). The soak's concurrent duplicate deliveries found it.
_DYNAMODB_ITEM_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "scan",
    "transact_write_items",
    "transact_get_items",
    "batch_write_item",
    "batch_get_item",
    "execute_statement",
)


def _serialise_dynamodb() -> None:
    """Make moto's item operations atomic, as DynamoDB's are, with one lock for all of them."""
    from moto.dynamodb.models import DynamoDBBackend

    items_lock = threading.RLock()
    for name in _DYNAMODB_ITEM_OPERATIONS:
        original = getattr(DynamoDBBackend, name, None)
        if original is None:
            continue

        def atomic(
            self: DynamoDBBackend, *args: object, __original: Callable[..., object] = original, **kwargs: object
        ) -> object:
            with items_lock:
                return __original(self, *args, **kwargs)

        atomic.__name__ = name
        setattr(DynamoDBBackend, name, atomic)


def _cache_jsonpath() -> None:
    """EventBridge builds each delivered event from its input paths with jsonpath-ng, parsing every path again for
    every event and target (a PLY parser each time, ~0.8 ms, 8 paths per event). Parsed expressions are immutable
    and ``find`` does not change them, so one parse per distinct path text serves every event."""
    import jsonpath_ng.ext
    from jsonpath_ng.ext.parser import parse

    # moto's events/utils.py imports ``parse`` from jsonpath_ng.ext inside the function, at each call.
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=512)(parse)  # type: ignore[attr-defined]


def _cheap_sqs_retention_check() -> None:
    """moto checks each received message against the queue's MessageRetentionPeriod by computing every queue
    attribute (ApproximateNumberOfMessages scans all messages), so a receive cost grows with the queue's depth.
    The period is a plain attribute of the queue: read it alone. Same rule: kept while sent + period > now."""
    from moto.core import utils
    from moto.sqs.models import Message, SQSBackend

    def is_message_valid_based_on_retention_period(self: SQSBackend, queue_name: str, message: Message) -> bool:
        period = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
        return bool(period + message.sent_timestamp / 1000 > utils.unix_time())  # type: ignore[operator]

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]


def _memoise_dispatch() -> None:
    """moto's server finds the backend of each request by listing its own package folder (``os.listdir`` and ~190
    ``isdir``) and trying ~180 URL regexes, under one global lock, on every request. The answer depends only on the
    host name the request is for, so it is computed once per host."""
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterable[str]:
        return modules

    backends.list_of_moto_modules = list_of_moto_modules
    original = DomainDispatcherApplication.get_backend_for_host
    memo: dict[str | None, object] = {}

    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> object:
        if host in memo:
            return memo[host]
        backend = original(self, host)
        if len(memo) < 1024:  # host names are a handful per service and region; bounded all the same
            memo[host] = backend
        return backend

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


class TreeNode(Protocol):
    """What a node of moto's DynamoDB expression trees holds."""

    children: list[object] | None
    parent: TreeNode | None


def clone_tree(node: TreeNode, parent: TreeNode | None = None) -> TreeNode:
    """A copy of a parsed expression tree: every node copied, its children list rebuilt, its parent pointing into the
    copy. moto's nodes hold nothing else (``type``, ``children``, ``parent``), and leaf children are strings or
    numbers, so this is a deep copy at a fraction of ``copy.deepcopy``'s cost."""
    from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]

    twin = copy.copy(node)
    twin.parent = parent
    if isinstance(node.children, list):
        twin.children = [clone_tree(c, twin) if isinstance(c, Node) else c for c in node.children]
    return twin


def _cache_update_expressions() -> None:
    """moto parses each UpdateExpression twice per UpdateItem (its request check, then the update), ~1.6 ms each for
    the job store's terminal update. The tree depends only on the text, but moto's validator then rewrites it in
    place with the item's values, so each caller gets a copy of the cached tree: same tree, less work. The
    validation itself (~5 ms, ten passes that resolve names, values and functions against the item) depends on the
    item and stays as it is (docs/performance.md)."""
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    make = UpdateExpressionParser.make
    parsed: dict[str, TreeNode] = {}
    parsed_lock = threading.Lock()

    def cached_make(cls: type[UpdateExpressionParser], expression: str) -> TreeNode:
        with parsed_lock:
            tree = parsed.get(expression)
        if tree is None:
            tree = make(expression)  # a malformed expression raises here, every time: only good trees are kept
            with parsed_lock:
                if len(parsed) < 1024:  # a service uses a handful of expression texts; bounded all the same
                    parsed[expression] = tree
        return clone_tree(tree)

    UpdateExpressionParser.make = classmethod(cached_make)


# SageMaker's scalable dimension for a production variant (Application Auto Scaling's sagemaker namespace).
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def scaling_refusal(
    endpoint: str, current: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]], registered: set[str]
) -> str | None:
    """Why AWS refuses UpdateEndpoint from the ``current`` config's variants to the ``new`` config's, or None.

    AWS refuses an update that would change the instance type of, or remove, a variant registered as a scalable
    target (SageMaker developer guide, "Update endpoints that use auto scaling"); ``registered`` holds the
    registered ``endpoint/<name>/variant/<variant>`` resource ids. The wording is ours: AWS publishes none.
    """
    new_types = {v["VariantName"]: v.get("InstanceType") for v in new}
    for variant in current:
        name = variant["VariantName"]
        if f"endpoint/{endpoint}/variant/{name}" not in registered:
            continue
        if name not in new_types or new_types[name] != variant.get("InstanceType"):
            change = (
                "remove the variant"
                if name not in new_types
                else f"change the instance type of variant {name} from {variant.get('InstanceType')} to "
                f"{new_types[name]}"
            )
            return (
                f"The update would {change}, which is registered as a scalable target with Application Auto "
                "Scaling. Delete its scaling policies and deregister it (DeregisterScalableTarget) before updating "
                "the endpoint, then register it again."
            )
    return None


def _sagemaker_update_endpoint() -> None:
    """moto has no UpdateEndpoint. This one puts the endpoint ``Updating`` with the new config as its
    ``PendingDeploymentSummary`` (variants' desired counts reset to the new InitialInstanceCount unless
    RetainAllVariantProperties) until the endpoint emulator, having started the new model, says how it went
    (:func:`finish_endpoint_update`): then the endpoint takes the new config. It refuses what AWS refuses: an unknown
    endpoint or config, an update while one is in progress, and an instance-type change of a variant registered with
    Application Auto Scaling (:func:`scaling_refusal`). UNVERIFIED: whether AWS shows the new EndpointConfigName
    while Updating or only in PendingDeploymentSummary (this one does the latter; the emulator reads either)."""
    from moto.applicationautoscaling.models import applicationautoscaling_backends
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpointConfig, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    def update_endpoint(
        self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str, retain: bool = False
    ) -> str:
        self.describe_endpoint(endpoint_name)  # raises AWS's "Could not find endpoint"
        endpoint = self.endpoints[endpoint_name]
        if endpoint_config_name not in self.endpoint_configs:
            arn = FakeEndpointConfig.arn_formatter(endpoint_config_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint configuration '{arn}'.")
        new = self.endpoint_configs[endpoint_config_name].production_variants
        current_config = self.endpoint_configs.get(endpoint.endpoint_config_name)
        current = current_config.production_variants if current_config is not None else []
        scaling = applicationautoscaling_backends[self.account_id][self.region_name]
        registered = {
            target.resource_id
            for target in scaling.targets.get(VARIANT_DIMENSION, {}).values()
            if target.service_namespace == "sagemaker"
        }
        with _update_lock:  # the check and the change at once: moto's server is threaded
            if endpoint.endpoint_status != "InService":
                raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
            refusal = scaling_refusal(endpoint_name, current, new, registered)
            if refusal is not None:
                raise ValidationError(message=refusal)
            desired = {v["VariantName"]: v.get("DesiredInstanceCount") for v in endpoint.production_variants}
            variants = endpoint._process_production_variants(new)
            if retain:
                for variant in variants:
                    if desired.get(variant["VariantName"]) is not None:
                        count = desired[variant["VariantName"]]
                        variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"] = count
            vars(endpoint)["pending_deployment_summary"] = {  # DescribeEndpoint shows it
                "EndpointConfigName": endpoint_config_name,
                "ProductionVariants": [
                    {k: v[k] for k in ("VariantName", "DesiredInstanceCount", "InstanceType") if k in v}
                    for v in variants
                ],
                "StartTime": utcnow().isoformat(),
            }
            _pending[endpoint] = (endpoint_config_name, variants)
            endpoint.endpoint_status = "Updating"
            endpoint.failure_reason = None
            endpoint.last_modified_time = utcnow()
        return str(endpoint.arn)

    def update_endpoint_response(self: SageMakerResponse) -> ActionResult:
        arn = self.sagemaker_backend.update_endpoint(  # type: ignore[attr-defined]
            self._get_param("EndpointName"),
            self._get_param("EndpointConfigName"),
            bool(self._get_param("RetainAllVariantProperties", False)),
        )
        return ActionResult({"EndpointArn": arn})

    SageMakerModelBackend.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    SageMakerResponse.update_endpoint = update_endpoint_response  # type: ignore[attr-defined]


# Each Updating endpoint's new config and variants (moto's objects; weak, so deletion frees them).
_pending: weakref.WeakKeyDictionary[Any, tuple[str, list[dict[str, Any]]]] = weakref.WeakKeyDictionary()
_update_lock = threading.Lock()

# The private path the endpoint emulator (SageMaker's data plane) posts to when an update is over (moto_server.py).
ENDPOINT_UPDATE_PATH = "/_asyncinfer/sagemaker/endpoint-update"
# The private path the local stack's instances and autoscaling post to (record_emulated; moto_process.py's client).
EMULATED_PATH = "/_asyncinfer/emulated"


def finish_endpoint_update(
    account: str, region: str, endpoint_name: str, failure_reason: str | None = None
) -> dict[str, str]:
    """End an ``Updating`` endpoint's update as SageMaker does: ``InService`` on the new config, or, with a
    ``failure_reason``, ``InService`` on the config (and instance counts) it had, the reason in ``FailureReason``
    (CloudFormation then rolls the stack back; UNVERIFIED whether AWS shows the reason on an endpoint back in
    service). Returns the endpoint's status and config."""
    from moto.sagemaker.models import sagemaker_backends

    endpoint = sagemaker_backends[account][region].endpoints[endpoint_name]
    with _update_lock:
        pending = _pending.pop(endpoint, None)
        if endpoint.endpoint_status == "Updating":
            if failure_reason is not None:
                endpoint.failure_reason = failure_reason  # type: ignore[assignment]  # moto types it as always None
            elif pending is not None:
                endpoint.endpoint_config_name, endpoint.production_variants = pending
            vars(endpoint)["pending_deployment_summary"] = None
            endpoint.endpoint_status = "InService"
    return {"EndpointStatus": endpoint.endpoint_status, "EndpointConfigName": endpoint.endpoint_config_name}


def _variant_capacity() -> None:
    """Application Auto Scaling sets a variant's desired count with UpdateEndpointWeightsAndCapacities; SageMaker
    then starts or stops instances, and the endpoint is ``Updating`` until the current count reaches the desired
    one. moto sets both counts at once: this sets the desired count only. The local stack's instances report the
    current count as they start and stop (:func:`record_emulated`)."""
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend

    original = SageMakerModelBackend.update_endpoint_weights_and_capacities

    def update_endpoint_weights_and_capacities(
        self: SageMakerModelBackend, endpoint_name: str, desired_weights_and_capacities: list[dict[str, Any]]
    ) -> str:
        endpoint = self.endpoints.get(endpoint_name)
        # As AWS: no change while the endpoint is not InService, whether an UpdateEndpoint or an earlier capacity
        # change is in progress (AWS documents Updating as "UpdateEndpoint or UpdateEndpointWeightsAndCapacities is
        # executing" and refuses updates to an in-progress endpoint; UNVERIFIED that the refusal covers this call).
        # The check, the change and the new status at once: moto's server is threaded.
        with _update_lock:
            if endpoint is not None and endpoint.endpoint_status != "InService":
                raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
            variants = endpoint.production_variants if endpoint is not None else []
            before = {v["VariantName"]: v.get("CurrentInstanceCount") for v in variants}
            arn = original(self, endpoint_name, desired_weights_and_capacities)
            endpoint = self.endpoints[endpoint_name]
            for variant in endpoint.production_variants:
                if before.get(variant["VariantName"]) is not None:
                    variant["CurrentInstanceCount"] = before[variant["VariantName"]]
            _settle_status_locked(endpoint)
        return arn

    SageMakerModelBackend.update_endpoint_weights_and_capacities = update_endpoint_weights_and_capacities  # type: ignore[method-assign]


def _settle_status(endpoint: Any) -> None:  # moto's FakeEndpoint
    """``Updating`` while a variant's instances have not reached its desired count, else ``InService``; an
    UpdateEndpoint in progress owns the status until it is over (:func:`finish_endpoint_update`)."""
    with _update_lock:
        _settle_status_locked(endpoint)


def _settle_status_locked(endpoint: Any) -> None:
    if endpoint in _pending:
        return
    moving = any(v.get("CurrentInstanceCount") != v.get("DesiredInstanceCount") for v in endpoint.production_variants)
    endpoint.endpoint_status = "Updating" if moving else "InService"


def _scaling_activities() -> None:
    """moto has no DescribeScalingActivities. The local stack's autoscaling records its activities here
    (:func:`record_emulated`) and this answers for them, newest first, as AWS does."""
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

    def describe_scaling_activities(self: ApplicationAutoScalingResponse) -> str:
        backend = self.applicationautoscaling_backend
        activities = [
            a
            for a in reversed(getattr(backend, "activities", []))
            if a["ServiceNamespace"] == self._get_param("ServiceNamespace")
            and self._get_param("ResourceId") in (None, a["ResourceId"])
            and self._get_param("ScalableDimension") in (None, a["ScalableDimension"])
        ]
        return json.dumps({"ScalingActivities": activities[: self._get_int_param("MaxResults") or 50]})

    ApplicationAutoScalingResponse.describe_scaling_activities = describe_scaling_activities  # type: ignore[attr-defined]


def _alarms_start_insufficient() -> None:
    """CloudWatch creates an alarm in INSUFFICIENT_DATA until its first evaluation; moto in OK. An alarm whose
    TreatMissingData keeps its state while data is short (``missing``, ``ignore``) would stay OK instead. And an
    update (PutMetricAlarm again) keeps the state, where moto starts over."""
    from moto.cloudwatch.models import Alarm

    original = Alarm.__init__

    def __init__(self: Alarm, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.state_value = "INSUFFICIENT_DATA"

    Alarm.__init__ = __init__  # type: ignore[method-assign]

    # PutMetricAlarm on an existing alarm overwrites its configuration and leaves its state unchanged (CloudWatch
    # API reference); moto builds a new alarm, in the initial state.
    from moto.cloudwatch.models import CloudWatchBackend

    put = CloudWatchBackend.put_metric_alarm

    @functools.wraps(put)
    def put_metric_alarm(self: CloudWatchBackend, name: str, *args: Any, **kwargs: Any) -> Alarm:
        previous = self.alarms.get(name)
        alarm = put(self, name, *args, **kwargs)
        if previous is not None:
            for attribute in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp", "history"):
                setattr(alarm, attribute, getattr(previous, attribute))
        return alarm

    CloudWatchBackend.put_metric_alarm = put_metric_alarm  # type: ignore[method-assign]


def record_emulated(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What the local stack's endpoint and autoscaling tell moto, so that the AWS APIs answer as on AWS:
    ``{"kind": "instance_count", "region", "endpoint", "variant", "count"}`` (the variant's current instance count;
    the endpoint is InService once every variant has its desired count) and ``{"kind": "scaling_activity", "region",
    "activity": {...}}`` (a DescribeScalingActivities entry, replaced when its ActivityId is known)."""
    from moto.applicationautoscaling.models import applicationautoscaling_backends
    from moto.sagemaker.models import sagemaker_backends

    account = str(payload.get("account") or DEFAULT_ACCOUNT)
    region = str(payload["region"])
    if payload["kind"] == "instance_count":
        endpoint = sagemaker_backends[account][region].endpoints[payload["endpoint"]]
        for variant in endpoint.production_variants:
            if variant["VariantName"] == payload["variant"]:
                variant["CurrentInstanceCount"] = int(payload["count"])
        _settle_status(endpoint)
        return {"status": endpoint.endpoint_status}
    if payload["kind"] == "scaling_activity":
        backend = applicationautoscaling_backends[account][region]
        activities: list[dict[str, Any]] = backend.__dict__.setdefault("activities", [])
        activity = dict(payload["activity"])
        for index, known in enumerate(activities):
            if known["ActivityId"] == activity["ActivityId"]:
                activities[index] = activity
                break
        else:
            activities.append(activity)
            del activities[:-1000]  # bounded, like AWS's six weeks of history
        return {"activities": len(activities)}
    raise ValueError(f"unknown kind {payload['kind']!r}")


def apply() -> None:
    """Complete moto's S3 event records (versionId in versioned buckets, sequencer, the identity fields), make its
    DynamoDB item operations atomic, and remove four per-request costs (jsonpath parsing in EventBridge, the
    attribute scan of SQS receives, the backend lookup of the server's dispatcher, UpdateExpression parsing), and
    add SageMaker's UpdateEndpoint with AWS's refusal of an instance-type change under autoscaling, a desired
    instance count that the instances then reach, and DescribeScalingActivities."""
    global _applied  # noqa: PLW0603 - patching a library is process-wide by nature
    with _lock:
        if _applied:
            return
        _serialise_dynamodb()
        _cache_jsonpath()
        _cheap_sqs_retention_check()
        _memoise_dispatch()
        _cache_update_expressions()
        _sagemaker_update_endpoint()
        _variant_capacity()
        _scaling_activities()
        _alarms_start_insufficient()
        from moto.s3 import notifications

        original = notifications._get_s3_event

        def complete_s3_event(
            event_name: str, bucket: FakeBucket, key: FakeKey, notification_id: str
        ) -> dict[str, list[dict[str, Any]]]:  # moto's own return type
            event = original(event_name, bucket, key, notification_id)
            for record in event["Records"]:
                record.setdefault("userIdentity", {"principalId": "AWS:AIDALOCALSTACKEXAMPLE"})
                record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
                record.setdefault("responseElements", {"x-amz-request-id": "LOCAL", "x-amz-id-2": "LOCAL"})
                record["s3"]["bucket"].setdefault("ownerIdentity", {"principalId": "LOCAL"})
                obj = record["s3"]["object"]
                version_id = getattr(key, "version_id", None)
                if version_id and version_id != "null" and getattr(bucket, "is_versioned", False):
                    obj.setdefault("versionId", version_id)
                obj.setdefault("sequencer", _sequencer())
            return event

        notifications._get_s3_event = complete_s3_event
        _applied = True

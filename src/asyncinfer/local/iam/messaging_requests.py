"""SQS, SNS and EventBridge calls as AWS authorizes them (Service Authorization Reference pages for each).

SQS (JSON or query protocol): the queue named by ``QueueUrl`` (``…/ACCOUNT/NAME``) is
``arn:aws:sqs:REGION:ACCOUNT:NAME``; batch operations check their single-message action. SNS: the topic ARN given
(a subscription ARN is checked on its topic); PublishBatch checks sns:Publish. EventBridge: PutEvents checks
events:PutEvents on each entry's bus (a name, an ARN, or none: ``default``), with ``events:source`` and
``events:detail-type``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

from asyncinfer.local.iam.check_sets import unique
from asyncinfer.local.iam.checks import Check, ContextValue, UnmappedRequest
from asyncinfer.local.iam.protocol_bodies import members, text

SERVICES = frozenset({"sqs", "sns", "events"})

_SQS_QUEUE_OPERATIONS = {
    "SendMessage": "sqs:SendMessage",
    "SendMessageBatch": "sqs:SendMessage",
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessage": "sqs:DeleteMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
    "SetQueueAttributes": "sqs:SetQueueAttributes",
    "PurgeQueue": "sqs:PurgeQueue",
    "DeleteQueue": "sqs:DeleteQueue",
    "ListQueueTags": "sqs:ListQueueTags",
    "TagQueue": "sqs:TagQueue",
    "UntagQueue": "sqs:UntagQueue",
    "ListDeadLetterSourceQueues": "sqs:ListDeadLetterSourceQueues",
    "AddPermission": "sqs:AddPermission",
    "RemovePermission": "sqs:RemovePermission",
}
_SNS_TOPIC_OPERATIONS = frozenset(
    {
        "Publish", "PublishBatch", "Subscribe", "GetTopicAttributes", "SetTopicAttributes",
        "ListSubscriptionsByTopic", "DeleteTopic", "AddPermission", "RemovePermission", "GetDataProtectionPolicy",
        "PutDataProtectionPolicy",
    }
)  # fmt: skip
_SNS_SUBSCRIPTION_OPERATIONS = frozenset(
    {"Unsubscribe", "GetSubscriptionAttributes", "SetSubscriptionAttributes", "ConfirmSubscription"}
)
_SNS_ACCOUNT_OPERATIONS = frozenset({"ListTopics", "ListSubscriptions", "GetSMSAttributes", "ListPlatformApplications"})
_EVENTS_ACCOUNT_OPERATIONS = frozenset({"ListEventBuses", "ListRules", "ListRuleNamesByTarget"})
_EVENTS_RULE_OPERATIONS = frozenset(
    {"DescribeRule", "PutRule", "DeleteRule", "EnableRule", "DisableRule", "PutTargets", "RemoveTargets",
     "ListTargetsByRule"}
)  # fmt: skip


def checks(service: str, operation: str, params: Mapping[str, object], region: str, account: str) -> tuple[Check, ...]:
    """The checks of one SQS, SNS or EventBridge call; UnmappedRequest for an operation not mapped."""
    if service == "sqs":
        return _sqs_checks(operation, params, region, account)
    if service == "sns":
        return _sns_checks(operation, params, region, account)
    return _events_checks(operation, params, region, account)


def queue_arn(queue_url: str, region: str) -> str:
    """``arn:aws:sqs:REGION:ACCOUNT:NAME`` of a queue URL ``scheme://host/ACCOUNT/NAME``."""
    parts = [unquote(part) for part in urlsplit(queue_url).path.split("/") if part]
    if len(parts) != 2:
        raise UnmappedRequest(f"queue URL {queue_url!r} is not …/ACCOUNT/NAME")
    return f"arn:aws:sqs:{region}:{parts[0]}:{parts[1]}"


def _sqs_checks(operation: str, params: Mapping[str, object], region: str, account: str) -> tuple[Check, ...]:
    action = _SQS_QUEUE_OPERATIONS.get(operation)
    if action:
        return (Check(action, queue_arn(text(params, "QueueUrl", f"sqs:{operation}"), region)),)
    if operation in {"GetQueueUrl", "CreateQueue"}:
        name = text(params, "QueueName", f"sqs:{operation}")
        owner = params.get("QueueOwnerAWSAccountId")
        owner = owner if isinstance(owner, str) and owner else account
        return (Check(f"sqs:{operation}", f"arn:aws:sqs:{region}:{owner}:{name}"),)
    if operation == "ListQueues":
        return (Check("sqs:ListQueues", "*"),)
    raise UnmappedRequest(f"sqs:{operation} is not mapped to IAM checks")


def _sns_checks(operation: str, params: Mapping[str, object], region: str, account: str) -> tuple[Check, ...]:
    if operation in {"Publish", "PublishBatch"}:
        target = params.get("TopicArn") or params.get("TargetArn")
        if not isinstance(target, str) or not target:
            raise UnmappedRequest(f"sns:{operation} without a TopicArn or TargetArn (SMS is not mapped)")
        return (Check("sns:Publish", target),)
    if operation == "Subscribe":
        topic = text(params, "TopicArn", "sns:Subscribe")
        context: dict[str, ContextValue] = {"sns:Protocol": str(params.get("Protocol", ""))}
        if isinstance(params.get("Endpoint"), str):
            context["sns:Endpoint"] = str(params["Endpoint"])
        return (Check("sns:Subscribe", topic, context),)
    if operation in _SNS_TOPIC_OPERATIONS:
        return (Check(f"sns:{operation}", text(params, "TopicArn", f"sns:{operation}")),)
    if operation in _SNS_SUBSCRIPTION_OPERATIONS:
        if operation == "ConfirmSubscription":
            return (Check("sns:ConfirmSubscription", text(params, "TopicArn", "sns:ConfirmSubscription")),)
        subscription = text(params, "SubscriptionArn", f"sns:{operation}")
        return (Check(f"sns:{operation}", subscription.rpartition(":")[0]),)  # the subscription's topic
    if operation == "CreateTopic":
        return (Check("sns:CreateTopic", f"arn:aws:sns:{region}:{account}:{text(params, 'Name', 'sns:CreateTopic')}"),)
    if operation in _SNS_ACCOUNT_OPERATIONS:
        return (Check(f"sns:{operation}", "*"),)
    raise UnmappedRequest(f"sns:{operation} is not mapped to IAM checks")


def bus_arn(bus: object, region: str, account: str) -> str:
    """An event bus's ARN from an EventBusName that is a name, an ARN, or absent (the default bus)."""
    name = bus if isinstance(bus, str) and bus else "default"
    return name if name.startswith("arn:") else f"arn:aws:events:{region}:{account}:event-bus/{name}"


def _events_checks(operation: str, params: Mapping[str, object], region: str, account: str) -> tuple[Check, ...]:
    if operation == "PutEvents":
        entries = members(params, "Entries")
        if not entries:
            raise UnmappedRequest("events:PutEvents without Entries")
        return unique(_put_events_checks(entries, region, account))
    if operation in {"DescribeEventBus", "DeleteEventBus", "CreateEventBus"}:
        return (Check(f"events:{operation}", bus_arn(params.get("Name"), region, account)),)
    if operation in _EVENTS_RULE_OPERATIONS:
        rule_name = text(params, "Name" if "Name" in params else "Rule", f"events:{operation}")
        bus = params.get("EventBusName")
        bus_name = bus.rpartition("/")[2] if isinstance(bus, str) and bus else "default"
        path = rule_name if bus_name == "default" else f"{bus_name}/{rule_name}"
        return (Check(f"events:{operation}", f"arn:aws:events:{region}:{account}:rule/{path}"),)
    if operation in _EVENTS_ACCOUNT_OPERATIONS:
        return (Check(f"events:{operation}", "*"),)
    raise UnmappedRequest(f"events:{operation} is not mapped to IAM checks")


def _put_events_checks(entries: list[Mapping[str, object]], region: str, account: str) -> Iterable[Check]:
    for entry in entries:
        context: dict[str, ContextValue] = {}
        for field, key in (("Source", "events:source"), ("DetailType", "events:detail-type")):
            if isinstance(entry.get(field), str):
                context[key] = str(entry[field])
        yield Check("events:PutEvents", bus_arn(entry.get("EventBusName"), region, account), context)

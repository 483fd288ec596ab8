"""The one delivery moto makes inside its own process that IAM must see: an EventBridge rule sending to an SQS queue.

AWS sends to a queue target only if the queue's policy allows ``events.amazonaws.com`` from the rule
(``aws:SourceArn``); otherwise, after its retries, to the target's dead-letter queue, if that queue's policy allows
it; otherwise the event is lost. moto sends unconditionally (``Rule.send_to_targets``): this wraps it.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class TargetGate(Protocol):
    def may_deliver(self, rule_arn: str, queue_arn: str) -> bool:
        """Whether EventBridge may send the rule's events to the queue (the queue's resource policy)."""
        ...


_lock = threading.Lock()
_applied: list[TargetGate] = []


def apply(gate: TargetGate) -> None:
    """Wrap moto's rule delivery so that SQS targets are sent to only as ``gate`` allows (idempotent)."""
    from moto.events.models import Rule
    from moto.sqs.models import sqs_backends

    with _lock:
        if _applied:
            _applied[0] = gate
            return
        _applied.append(gate)
    original = Rule.send_to_targets

    def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):
            return
        current = _applied[0]
        allowed = []
        for target in list(self.targets):
            arn = str(target["Arn"])
            if ":sqs:" not in arn or current.may_deliver(self.arn, arn):
                allowed.append(target)
                continue
            dead_letter = str(target.get("DeadLetterConfig", {}).get("Arn", ""))
            if dead_letter and current.may_deliver(self.arn, dead_letter):
                logger.error("EventBridge may not send to %s (its policy): the event goes to %s", arn, dead_letter)
                sqs_backends[self.account_id][self.region_name].send_message(
                    queue_name=dead_letter.rsplit(":", 1)[1], message_body=json.dumps(original_event, default=str)
                )
            else:
                logger.error("EventBridge may not send to %s nor to a dead-letter queue: the event is lost", arn)
        if allowed:
            # A copy of the rule with the targets it may deliver to: the rule itself is never changed, so
            # concurrent deliveries and ListTargetsByRule see it whole.
            delivering = copy.copy(self)
            delivering.targets = allowed
            original(delivering, original_event, transform_input)

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]

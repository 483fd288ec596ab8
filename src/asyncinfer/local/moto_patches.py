"""Where moto's output differs from what AWS sends, and the pipeline's behaviour depends on it, fix it here.

Each patch names the moto function it wraps; tests/integration/test_local_stack.py asserts the resulting shapes,
so a moto upgrade that breaks a patch fails loudly rather than silently changing the events.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moto.s3.models import FakeBucket, FakeKey

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


def apply() -> None:
    """Complete moto's S3 event records (versionId in versioned buckets, sequencer, the identity fields) and make
    its DynamoDB item operations atomic."""
    global _applied  # noqa: PLW0603 - patching a library is process-wide by nature
    with _lock:
        if _applied:
            return
        _serialise_dynamodb()
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

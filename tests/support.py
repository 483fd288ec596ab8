"""Helpers shared by the integration and e2e suites: free ports, a local stack on them, a result collector."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from async_pipeline import result_events, s3_uris
from async_pipeline.result_events import ResultEvent

from asyncinfer import target
from asyncinfer.local.ports import StackPorts, free_ports
from asyncinfer.local.stack import LocalConfig, RunningStack
from asyncinfer.queue_drain import QueueDrain

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    return free_ports(1)[0]


def free_port_block() -> int:
    """PORT such that PORT..PORT+3 are free: what ``asyncinfer local up --port PORT`` listens on."""
    return free_ports(4, consecutive=True)[0]


@contextmanager
def local_stack(state_dir: Path, **overrides: Any) -> Iterator[RunningStack]:
    config = LocalConfig(
        root=ROOT,
        state_dir=state_dir,
        ports=StackPorts.free(),
        **overrides,
    )
    running = RunningStack(config)
    running.start()
    try:
        yield running
    finally:
        running.stop()


class ResultCollector:
    """Drains the results queue in the background and files every event under its input key."""

    def __init__(self, stack: target.Target) -> None:
        self._events: dict[str, list[ResultEvent]] = defaultdict(list)
        self._lock = threading.Condition()
        self._drain = QueueDrain(stack.client("sqs"), stack.outputs["ResultsQueueUrl"], self._take, "result-collector")

    def _take(self, body: str, received_at: float) -> None:
        event = result_events.from_envelope(json.loads(body))
        location = event.detail.get("inputLocation")
        key = s3_uris.key_of(str(location)) if location else ""
        with self._lock:
            self._events[key].append(event)
            self._lock.notify_all()

    def wait_for(self, keys: list[str], timeout: float) -> dict[str, list[ResultEvent]]:
        """Events of each key, once every key has at least one (or the timeout passed)."""
        deadline = time.time() + timeout
        with self._lock:
            self._lock.wait_for(lambda: all(self._events.get(k) for k in keys), max(0.0, deadline - time.time()))
            return {k: list(self._events.get(k, [])) for k in keys}

    def events_for(self, key: str) -> list[ResultEvent]:
        with self._lock:
            return list(self._events.get(key, []))

    def all_events(self) -> list[ResultEvent]:
        with self._lock:
            return [event for events in self._events.values() for event in events]

    def stop(self) -> None:
        self._drain.stop()

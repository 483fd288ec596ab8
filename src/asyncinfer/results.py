"""Following result events on the stack's results queue: receiving them, and following them to an end."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from async_pipeline import result_events, s3_uris
from async_pipeline.result_events import ResultEvent

from asyncinfer.result_summary import Summary
from asyncinfer.target import Target


@dataclass(frozen=True)
class Received:
    event: ResultEvent
    received_at: float

    @property
    def status(self) -> str:
        return str(self.event.detail["status"])

    @property
    def input_key(self) -> str:
        location = self.event.detail.get("inputLocation")
        try:
            return s3_uris.key_of(str(location)) if location else ""
        except ValueError:  # not an S3 URI: nothing this pipeline writes, but shown, not fatal
            return str(location)


class ResultSource(Protocol):
    def poll(self) -> list[Received]:
        """The result events that arrived since the last poll (waiting a little for some)."""
        ...


class ResultFollower:
    """Receives (and deletes) result events from the stack's results queue."""

    def __init__(self, target: Target) -> None:
        self._sqs = target.client("sqs")
        self._url = target.outputs["ResultsQueueUrl"]

    def poll(self, wait_seconds: int = 1) -> list[Received]:
        messages = self._sqs.receive_message(
            QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        received = []
        for message in messages:
            try:
                event = result_events.from_envelope(json.loads(message["Body"]))
            except ValueError:
                continue  # not ours (another rule may feed the queue): leave it to its consumer
            received.append(Received(event, time.time()))
            self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return received


def follow(
    source: ResultSource,
    expect: int | None,
    timeout: float,
    uploaded: Mapping[str, float] | None = None,
    on_result: Callable[[Received, Summary], None] | None = None,
) -> tuple[Summary, list[Received]]:
    """Receive result events until ``expect`` have arrived or ``timeout`` seconds pass without one.

    ``uploaded`` (input key → upload time) gives the latencies; ``on_result`` hears of each event as it is counted.
    """
    summary, received = Summary(), []
    last = time.time()
    while (expect is None or summary.total < expect) and time.time() - last < timeout:
        for item in source.poll():
            last = time.time()
            received.append(item)
            summary.add(item, (uploaded or {}).get(item.input_key))
            if on_result is not None:
                on_result(item, summary)
    return summary, received

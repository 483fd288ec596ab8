"""A background drain of one SQS queue: each message's body goes to a callback, then the message is deleted.

One drain for the soak, the tests and the benchmarks.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class QueueDrain:
    """Receives and deletes a queue's messages in a background thread, handing each body (and when it arrived) to
    ``take`` before the message is deleted."""

    def __init__(
        self, sqs: SQSClient, queue_url: str, take: Callable[[str, float], None], name: str = "queue-drain"
    ) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._take = take
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.drain(wait_seconds=1)

    def drain(self, wait_seconds: int = 0) -> int:
        """One receive: how many messages it brought."""
        try:
            messages = self._sqs.receive_message(
                QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            ).get("Messages", [])
        except Exception:  # the stack is stopping (or restarting): try again shortly
            time.sleep(0.5)
            return 0
        received_at = time.time()
        for message in messages:
            self._take(message["Body"], received_at)
        if messages:
            # A failed delete means a redelivery, which ``take`` must tolerate (SQS delivers at least once anyway).
            with contextlib.suppress(Exception):
                self._sqs.delete_message_batch(
                    QueueUrl=self._url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )
        return len(messages)

    def stop(self, *, drain_rest: bool = False) -> None:
        self._stop.set()
        self._thread.join(5)
        while drain_rest and self.drain(wait_seconds=0):
            pass

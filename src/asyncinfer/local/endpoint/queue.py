"""One endpoint's queue: accepted requests wait for one of ``instances x MaxConcurrentInvocationsPerInstance``
workers; a sweeper expires those whose RequestTTLSeconds passes first; scaling resizes the pool.

No AWS here: a worker hands each request to ``process`` (or, expired, to ``expire``), which the emulator supplies,
with the queue itself (to count on, or to put the request back with :meth:`EndpointQueue.hold`).
The counters behind ``stats()`` live here too, guarded by the same lock as the queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Literal

from asyncinfer.local.endpoint.requests import InvocationRequest

logger = logging.getLogger(__name__)

CounterName = Literal[
    "accepted",
    "completed",
    "failed",
    "expired",
    "timed_out",
    "cancelled",
    "dropped",
    "published",
    "publish_failed",
    "container_refused",
    "upload_retries",
    "upload_failed",
]


class EndpointQueue:
    """The queue, workers and TTL sweeper of one endpoint; everything below ``_cond`` is guarded by it.

    ``clock`` gives the seconds since the epoch that RequestTTLSeconds is judged by (a fake one in tests);
    ``sweep_interval`` bounds the sweeper's sleep, since such a clock may not move with real time.
    ``container_down_grace_seconds``: how long refused container calls put their request back (see :meth:`hold`).
    """

    def __init__(
        self,
        name: str,
        concurrency_per_instance: int,
        instances: int,
        *,
        process: Callable[[InvocationRequest, EndpointQueue], None],
        expire: Callable[[InvocationRequest, EndpointQueue], None],
        clock: Callable[[], float],
        sweep_interval: float,
        container_down_grace_seconds: float,
    ) -> None:
        self.name = name
        self._process = process
        self._expire = expire
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._container_down_grace = container_down_grace_seconds
        self._cond = threading.Condition()
        self._concurrency_per_instance = concurrency_per_instance
        self._instances = instances
        self._queue: deque[InvocationRequest] = deque()
        self._in_flight = 0  # being invoked (taken by a worker)
        self._settling = 0  # expired, being written/published by the sweeper
        self._running_workers = 0  # worker threads that have not retired yet
        self._threads: list[threading.Thread] = []
        self._counters: Counter[CounterName] = Counter()
        self._stopping = False
        self._sweeper: threading.Thread | None = None
        self._refused_since: float | None = None  # monotonic time the container started refusing connections

    # --- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the sweeper and the workers."""
        self._sweeper = threading.Thread(target=self._sweeper_loop, name=f"sagemaker-{self.name}-ttl", daemon=True)
        self._sweeper.start()
        with self._cond:
            self._resize_locked()

    def stop(self) -> list[InvocationRequest]:
        """Take no more requests; workers retire after their current one. Returns the queued requests, dropped."""
        with self._cond:
            self._stopping = True
            dropped = list(self._queue)
            self._queue.clear()
            self._counters["dropped"] += len(dropped)
            self._cond.notify_all()
        return dropped

    def threads(self) -> list[threading.Thread]:
        """The workers and the sweeper (but not the calling thread), for joining."""
        with self._cond:
            threads = list(self._threads)
        if self._sweeper is not None:
            threads.append(self._sweeper)
        return [t for t in threads if t is not threading.current_thread()]

    # --- requests -------------------------------------------------------------------------------------------------

    def put(self, request: InvocationRequest) -> bool:
        """Queue an accepted request (counted as accepted); False when the queue is stopping."""
        with self._cond:
            if self._stopping:
                return False
            self._queue.append(request)
            self._counters["accepted"] += 1
            self._cond.notify_all()
        return True

    def hold(self, request: InvocationRequest) -> bool:
        """Nothing listens at the container (it died, it restarts): SageMaker takes such an instance out of service
        and queued requests wait for a healthy one, so this one goes back to the head of the queue (its
        RequestTTLSeconds still running). After ``container_down_grace_seconds`` of refusals (a container that
        never comes up) requests fail with the reason instead. False: fail it now."""
        now = time.monotonic()
        with self._cond:
            if self._stopping:
                return False
            if self._refused_since is None:
                self._refused_since = now
            if now - self._refused_since > self._container_down_grace:
                return False
            self._queue.appendleft(request)
            self._counters["container_refused"] += 1
            self._cond.notify_all()
        return True

    def container_answered(self) -> None:
        """The container answered (anything): it is up, the grace period of :meth:`hold` starts afresh."""
        if self._refused_since is not None:
            with self._cond:
                self._refused_since = None

    def count(self, *counters: CounterName) -> None:
        with self._cond:
            for counter in counters:
                self._counters[counter] += 1

    # --- capacity -------------------------------------------------------------------------------------------------

    def configure(self, concurrency_per_instance: int, instances: int) -> None:
        """New settings (UpdateEndpoint): resize the pool to match."""
        with self._cond:
            self._concurrency_per_instance = concurrency_per_instance
            self._instances = instances
            self._resize_locked()

    def set_instances(self, count: int) -> None:
        with self._cond:
            self._instances = count
            self._resize_locked()

    @property
    def _desired_workers(self) -> int:
        return self._instances * self._concurrency_per_instance

    def _resize_locked(self) -> None:
        """Match the worker threads to instances x concurrency. Extra workers retire after their current request, so
        in-flight work is never cut by a scale-in (SageMaker drains instances too)."""
        self._threads = [t for t in self._threads if t.is_alive()]
        missing = self._desired_workers - self._running_workers
        for _ in range(max(0, missing)):
            self._running_workers += 1
            thread = threading.Thread(target=self._worker_loop, name=f"sagemaker-{self.name}-worker", daemon=True)
            self._threads.append(thread)
            thread.start()
        self._cond.notify_all()

    # --- observing ------------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """``backlog`` = queued + in flight (CloudWatch's ApproximateBacklogSize); ``failed`` counts every failure,
        ``expired`` included (like InvocationFailures)."""
        with self._cond:
            counters = self._counters
            return {
                "queued": len(self._queue),
                "in_flight": self._in_flight,
                "backlog": len(self._queue) + self._in_flight,
                "instances": self._instances,
                "max_concurrency_per_instance": self._concurrency_per_instance,
                "workers": self._desired_workers,
                "accepted": counters["accepted"],
                "completed": counters["completed"],
                "failed": counters["failed"],
                "expired": counters["expired"],
                "timed_out": counters["timed_out"],
                "cancelled": counters["cancelled"],
                "dropped": counters["dropped"],
                "notifications_published": counters["published"],
                "notification_failures": counters["publish_failed"],
                "container_refused": counters["container_refused"],
                "upload_retries": counters["upload_retries"],
                "upload_failures": counters["upload_failed"],
            }

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or in progress; False if that did not happen in time."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue and self._in_flight == 0 and self._settling == 0, timeout
            )

    # --- workers and expiry ---------------------------------------------------------------------------------------

    def _worker_loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping or self._running_workers > self._desired_workers:
                        self._running_workers -= 1
                        self._cond.notify_all()
                        return
                    if self._queue:
                        request = self._queue.popleft()
                        self._in_flight += 1
                        break
                    self._cond.wait()
            try:
                if request.expired(self._clock()):
                    self._expire(request, self)
                else:
                    self._process(request, self)
            except Exception:  # a bug there must not kill the worker and shrink the pool
                logger.exception("unexpected error processing %s", request.inference_id)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def sweep(self, ahead_seconds: float = 0.0) -> int:
        """Expire, now and on this thread, every queued request whose RequestTTLSeconds has passed (judged as if the
        clock were ``ahead_seconds`` later); return how many."""
        with self._cond:
            expired = self._pop_expired_locked(ahead_seconds)
        self._settle_expired(expired)
        return len(expired)

    def _sweeper_loop(self) -> None:
        """Expire queued requests even when no worker will take them (0 instances, or all busy)."""
        while True:
            with self._cond:
                if self._stopping:
                    return
                expired = self._pop_expired_locked()
                if not expired:
                    self._cond.wait(self._next_sweep_locked())
                    continue
            self._settle_expired(expired)

    def _pop_expired_locked(self, ahead_seconds: float = 0.0) -> list[InvocationRequest]:
        now = self._clock() + ahead_seconds
        expired = [r for r in self._queue if r.expired(now)]
        if expired:
            self._queue = deque(r for r in self._queue if not r.expired(now))
            self._settling += len(expired)
        return expired

    def _settle_expired(self, expired: list[InvocationRequest]) -> None:
        for request in expired:
            try:
                self._expire(request, self)
            except Exception:
                logger.exception("unexpected error expiring %s", request.inference_id)
            finally:
                with self._cond:
                    self._settling -= 1
                    self._cond.notify_all()

    def _next_sweep_locked(self) -> float | None:
        # Sleep until the earliest deadline, but never longer than sweep_interval: the clock may be a fake one
        # that does not move with real time. With nothing queued, sleep until notified.
        if not self._queue:
            return None
        earliest = min(r.received_at + r.request_ttl_seconds for r in self._queue)
        return min(max(earliest - self._clock(), 0.01), self._sweep_interval)

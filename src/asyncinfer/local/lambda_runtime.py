"""A local Lambda service for the template's functions: execution environments, async invocation, triggers.

* Each function runs in worker processes (one per concurrent execution, like Lambda's execution environments:
  lambda_environment.py) with its template environment, its code and layer on the path, and the AWS endpoints
  pointed at the local stack.
* Invocations follow Lambda's asynchronous semantics: on error, ``MaximumRetryAttempts`` retries after a delay
  (Lambda waits about 1 and 2 minutes; locally ``retry_delays``, short, except that a crashed or timed-out
  invocation is retried only after the function's Timeout + 3 s, once the leases it held have run out), then a
  record in Lambda's on-failure destination format to the destination.
* Triggers: the internal queues that provisioning wired (S3 notifications, SNS subscriptions) are polled and each
  message becomes the event Lambda would deliver (with fault injection, sometimes twice, or late).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias

from async_pipeline.sns_events import lambda_record_from_envelope
from botocore.exceptions import ClientError

from asyncinfer.faults import WORKER_ID_VAR, FaultInjector
from asyncinfer.local.lambda_environment import InvocationResult, Payload, Worker
from asyncinfer.local.lambda_wiring import EventSource, FunctionSpec

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef, MessageTypeDef

logger = logging.getLogger(__name__)

# After a crash or a timeout, the retry waits for the function's Timeout plus this (> the 2 s lease margin).
CRASH_RETRY_MARGIN_S = 3.0
#: A record in Lambda's on-failure destination format (requestContext, requestPayload, responsePayload...).
DeadLetterRecord: TypeAlias = dict[str, Payload]


class FunctionRunner:
    """Up to ``concurrency`` execution environments of one function, started on demand (cold starts)."""

    def __init__(
        self,
        spec: FunctionSpec,
        env: Mapping[str, str],
        concurrency: int,
        log_path: Path,
        on_injected: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self._on_injected = on_injected
        self._env = {
            **env,
            **spec.environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        }
        self._slots = threading.BoundedSemaphore(concurrency)
        self._idle: queue.LifoQueue[Worker] = queue.LifoQueue()
        self._all: list[Worker] = []
        self._started = 0  # execution environments started so far (cold starts)
        self._lock = threading.Lock()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("a", encoding="utf-8")
        self.concurrency = concurrency

    def invoke(self, event: Payload, request_id: str) -> InvocationResult:
        with self._slots:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                with self._lock:
                    self._started += 1
                    env = {**self._env, WORKER_ID_VAR: f"{self.spec.logical_id}:{self._started}"}
                worker = Worker(self.spec, env, self._log, on_injected=self._on_injected)
                with self._lock:
                    self._all.append(worker)
            result = worker.invoke(event, request_id, float(self.spec.timeout))
            if worker.alive:
                self._idle.put(worker)
            else:
                with self._lock:
                    self._all.remove(worker)
            return result

    def stop(self) -> None:
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.stop()
        self._log.close()


@dataclass
class FunctionStats:
    invocations: int = 0
    errors: int = 0
    retries: int = 0
    dead_lettered: int = 0


class DeliveryGate(Protocol):
    """Whether an AWS service may deliver a trigger's events to its function (IAM: the function's resource policy)."""

    def admits(self, source: EventSource) -> bool: ...


class AsyncInvoker:
    """Lambda's asynchronous invocation: run, retry on error, then send to the on-failure destination.

    ``destination_clients`` (by function logical id): the SQS client Lambda sends that function's on-failure records
    with, i.e. with the function's execution role, as on AWS (default: ``sqs``)."""

    def __init__(
        self,
        runners: Mapping[str, FunctionRunner],
        sqs: SQSClient,
        retry_delays: tuple[float, ...] = (1.0, 2.0),
        on_dead_letter: Callable[[str, DeadLetterRecord], None] | None = None,
        destination_clients: Mapping[str, SQSClient] | None = None,
    ) -> None:
        self._runners = runners
        self._sqs = sqs
        self._destination_clients = dict(destination_clients or {})
        self._retry_delays = retry_delays
        self._on_dead_letter = on_dead_letter
        capacity = sum(r.concurrency for r in runners.values())
        self._executor = ThreadPoolExecutor(max_workers=capacity, thread_name_prefix="lambda")
        self._pending = threading.Semaphore(capacity * 2)  # back-pressure on the pollers
        self._outstanding = 0
        self._idle = threading.Condition()
        self._timers: set[threading.Timer] = set()
        self._closed = False
        self._recent: deque[Payload] = deque(maxlen=1000)  # the last events accepted, for inspection and tests
        self.stats = {name: FunctionStats() for name in runners}

    def recent_events(self) -> list[Payload]:
        return list(self._recent)

    def submit(self, function: str, event: Payload) -> None:
        """Accept an event (blocks while the functions are saturated, as pollers must not run ahead)."""
        self._pending.acquire()
        self._recent.append(event)
        with self._idle:
            self._outstanding += 1
        self._executor.submit(self._attempt, function, event, str(uuid.uuid4()), 1, time.time())

    def _attempt(self, function: str, event: Payload, request_id: str, attempt: int, first_seen: float) -> None:
        runner = self._runners[function]
        stats = self.stats[function]
        stats.invocations += 1
        try:
            result = runner.invoke(event, request_id)
        except Exception as exc:  # the runtime itself failed (could not start a worker): same as a function error
            result = InvocationResult(False, error_type="Runtime.Error", error_message=str(exc))
        if result.ok:
            self._done()
            return
        stats.errors += 1
        age = time.time() - first_seen
        if attempt <= runner.spec.max_retry_attempts and age < runner.spec.max_event_age and not self._closed:
            stats.retries += 1
            delay = self._retry_delays[min(attempt, len(self._retry_delays)) - 1]
            if result.error_type in {"Sandbox.Timedout", "Runtime.ExitError"}:
                # A crashed or timed-out invocation holds its leases (claim, publish) until its deadline plus a
                # margin (wiring.LEASE_MARGIN_MS): a retry before that would find them live and skip the work.
                # Lambda's own retry comes a minute later, past any lease of a function with Timeout < 58 s.
                delay = max(delay, runner.spec.timeout + CRASH_RETRY_MARGIN_S)
            timer = threading.Timer(delay, self._retry, (function, event, request_id, attempt + 1, first_seen))
            timer.daemon = True
            with self._idle:
                self._timers.add(timer)
            timer.start()
            return
        condition = "EventAgeExceeded" if age >= runner.spec.max_event_age else "RetriesExhausted"
        self._dead_letter(runner.spec, event, request_id, attempt, condition, result)
        stats.dead_lettered += 1
        self._done()

    def _retry(self, function: str, event: Payload, request_id: str, attempt: int, first_seen: float) -> None:
        with self._idle:
            self._timers = {t for t in self._timers if t.is_alive() and t is not threading.current_thread()}
        self._executor.submit(self._attempt, function, event, request_id, attempt, first_seen)

    def _done(self) -> None:
        self._pending.release()
        with self._idle:
            self._outstanding -= 1
            self._idle.notify_all()

    def _dead_letter(
        self,
        spec: FunctionSpec,
        event: Payload,
        request_id: str,
        attempts: int,
        condition: str,
        result: InvocationResult,
    ) -> None:
        record: DeadLetterRecord = {
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "requestContext": {
                "requestId": request_id,
                "functionArn": f"{spec.arn}:$LATEST",
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {
                "errorMessage": result.error_message,
                "errorType": result.error_type,
                "requestId": request_id,
                "stackTrace": result.stack_trace,
            },
        }
        if spec.on_failure:
            queue_name = spec.on_failure.rsplit(":", 1)[1]
            url = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            sender = self._destination_clients.get(spec.logical_id, self._sqs)
            try:
                sender.send_message(QueueUrl=url, MessageBody=json.dumps(record))
            except ClientError as exc:  # e.g. AccessDenied: the role may not send there; Lambda drops the record
                logger.error("%s: the on-failure destination refused the record: %s", spec.logical_id, exc)
        if self._on_dead_letter is not None:
            self._on_dead_letter(spec.logical_id, record)

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is running or waiting for a retry."""
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout)

    def close(self) -> None:
        self._closed = True
        with self._idle:
            timers = list(self._timers)
        for timer in timers:
            timer.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)


def lambda_event(source: EventSource, body: str) -> Payload:
    """The event Lambda delivers for one message of an internal trigger queue."""
    if source.kind == "sns":
        return {"Records": [lambda_record_from_envelope(json.loads(body), source.source_arn)]}
    return json.loads(body)  # S3 → Lambda: the notification itself ({"Records": [...]} or the s3:TestEvent)


class EventSourcePoller(threading.Thread):
    """Moves one trigger's deliveries from its internal queue into asynchronous invocations.

    With a fault injector, deliveries may come twice (``dup-s3``, ``dup-sns``: at once, or a little later) or late
    (``late-delivery``: held back so that later ones overtake them), as S3 and SNS deliver at least once and in no
    particular order.
    """

    def __init__(
        self,
        source: EventSource,
        sqs: SQSClient,
        invoker: AsyncInvoker,
        faults: FaultInjector | None = None,
        gate: DeliveryGate | None = None,
    ) -> None:
        super().__init__(name=f"poll-{source.function}-{source.kind}", daemon=True)
        self._source = source
        self._gate = gate
        self._sqs = sqs
        self._invoker = invoker
        self._stop = threading.Event()
        self._faults = faults
        self._timers: set[threading.Timer] = set()
        self._timers_lock = threading.Lock()

    @property
    def delayed(self) -> int:
        """Deliveries held back (late or duplicate) and not yet handed to the invoker."""
        with self._timers_lock:
            return len(self._timers)

    def _deliver(self, event: Payload) -> None:
        function, faults = self._source.function, self._faults
        if faults is None:
            self._invoker.submit(function, event)
            return
        if faults.fire("late-delivery"):
            self._later(faults.uniform("late-delivery", 1.0, 6.0), event)
        else:
            self._invoker.submit(function, event)
        duplicate = "dup-s3" if self._source.kind == "s3" else "dup-sns"
        if faults.fire(duplicate):
            if faults.chance(duplicate, 0.5):
                self._invoker.submit(function, event)  # at once: the two run concurrently
            else:
                self._later(faults.uniform(duplicate, 0.2, 5.0), event)

    def _later(self, delay: float, event: Payload) -> None:
        def fire() -> None:
            try:
                if not self._stop.is_set():
                    self._invoker.submit(self._source.function, event)
            finally:
                with self._timers_lock:
                    self._timers.discard(timer)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self._timers_lock:
            self._timers.add(timer)
        timer.start()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._source.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
            except Exception:  # the AWS side is shutting down or restarting: try again shortly
                if self._stop.wait(0.5):
                    return
                continue
            if messages and self._gate is not None and not self._gate.admits(self._source):
                # The service may not invoke the function (the gate logged why): on AWS these deliveries fail.
                logger.error("%s: %d delivery(ies) refused and lost", self.name, len(messages))
                self._delete_delivered(messages)
                continue
            for message in messages:
                self._deliver(lambda_event(self._source, message["Body"]))
            if messages:
                self._delete_delivered(messages)

    def _delete_delivered(self, messages: list[MessageTypeDef]) -> None:
        """One DeleteMessageBatch for what one receive brought (each delivery is already with the invoker). A
        message not deleted comes back after its visibility timeout and is delivered again: at least once, as
        Lambda's own pollers deliver."""
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        try:
            failed = self._sqs.delete_message_batch(QueueUrl=self._source.queue_url, Entries=entries).get("Failed", [])
        except Exception as exc:  # the AWS side is shutting down or restarting
            logger.warning("could not delete %d delivered message(s) of %s: %s", len(entries), self.name, exc)
            return
        for failure in failed:
            logger.warning("could not delete a delivered message of %s: %s", self.name, failure.get("Message"))

    def stop(self) -> None:
        self._stop.set()
        with self._timers_lock:
            timers, self._timers = list(self._timers), set()
        for timer in timers:
            timer.cancel()


def worker_environment(aws_endpoint_url: str, sagemaker_runtime_url: str, region: str) -> dict[str, str]:
    """What every local execution environment gets besides the function's own variables."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": aws_endpoint_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": sagemaker_runtime_url,
        # No X-Ray daemon locally; everything else of Powertools runs as deployed.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }

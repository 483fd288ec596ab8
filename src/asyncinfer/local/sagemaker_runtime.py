"""A SageMaker asynchronous inference endpoint for the local stack: ``InvokeEndpointAsync`` over real HTTP.

moto provides the control plane (CreateModel/EndpointConfig/Endpoint) but no working async endpoint, so this
emulator serves the runtime API itself. Point boto3 at it with ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (or
``endpoint_url=``) and the unchanged ``invoke_endpoint_async`` works against it::

    emulator = AsyncEndpointEmulator(moto_url, "us-east-1", container_url="http://127.0.0.1:8080")
    runtime_url = emulator.start()
    emulator.register_endpoint("my-endpoint")      # optional: unknown endpoints are looked up on first use
    ...
    emulator.stop()

What it does, per endpoint (configuration read from moto's DescribeEndpoint → DescribeEndpointConfig):

* answers ``POST /endpoints/{name}/async-invocations`` with 202 and the output/failure locations, or with a
  ``ValidationError`` exactly where the service model's constraints say so (:mod:`.sagemaker_protocol`);
* queues the request and runs it on ``instances x MaxConcurrentInvocationsPerInstance`` workers against the model
  container (``POST {container}/invocations``), within ``InvocationTimeoutSeconds``;
* writes the response to the returned OutputLocation (or the failure to FailureLocation) and publishes the
  success or error notification, built with :mod:`async_pipeline.notifications`, to the configured topics;
* fails requests that waited longer than ``RequestTTLSeconds``; emulates scale-to-zero with
  :meth:`AsyncEndpointEmulator.set_instance_count` (requests queue while there are no instances);
* publishes a ``TestNotification`` to each configured topic when an endpoint is registered or updated.

Choices where the reference says UNVERIFIED (see also the module docstrings of the helpers):

* An expired request (TTL passed while queued) writes a failure object (the reason, as text) and sends an error
  notification, like any other failure: the pipeline must learn about it, and the ``ExpiredRequests`` metric is
  documented as counting failures. Same for an invocation that exceeds ``InvocationTimeoutSeconds``.
* Without ``ClientConfig.MaxConcurrentInvocationsPerInstance`` SageMaker "chooses an optimal value", which is not
  documented; the emulator uses 1, the documented default of the analogous batch-transform setting
  (``MaxConcurrentTransforms``), so that a container that cannot take parallel requests is never overrun. Override
  with ``default_max_concurrency``.
* Default object names: ``{S3OutputPath}/[{S3OutputPathExtension}/]{uuid4}.out`` and
  ``{S3FailurePath}/[{S3OutputPathExtension}/]{uuid4}-error.out``, with a uuid that is not the inference id (as
  observed). With ``Filename``, the output is named exactly that and the failure ``{stem}-error.out``.
* Inline ``Body`` requests carry ``inputLocation: null`` in their notifications (the payload has no S3 location).
* The error notification carries ``responseParameters.failureLocation`` (and ``contentType`` when the model
  answered); ``responseBody`` has ``content`` (base64), ``encoding: "BASE64"`` and the observed ``message``.
* An endpoint whose config has no AsyncInferenceConfig is answered with a ValidationError.
* :meth:`~AsyncEndpointEmulator.set_instance_count` emulates autoscaling and sends no TestNotification.
* A refused output or failure write (the bucket refuses it for a while) is retried after 0.5, 1 and 2 s
  (``upload_retry_delays``); then the request fails: the error notification says ``Failed to upload the response``
  with the S3 error. When the failure object cannot be written either, the notification carries no failureLocation
  and its failureReason ends with ``(The failure object could not be written to …)`` (SageMaker counts such cases
  as ``ResponseUploadFailures``; what it then notifies is not documented).
* A container that refuses connections (nothing listens: it died, it restarts) is an instance out of service: the
  request goes back to the head of the queue and waits, within its RequestTTLSeconds, as SageMaker routes only to
  healthy instances. After ``container_down_grace_seconds`` (60 s) of refusals requests fail with the reason, so
  that a container that never comes up is reported. A call cut while in flight fails at once.

Fault injection hooks (used by the local stack's fault plan, see asyncinfer/faults.py): ``before_accept(params)``
may raise an :class:`ApiError` to answer for the service (throttling, 503); ``before_write(location, kind)`` may
raise a botocore ``ClientError`` to refuse an S3 write; ``sweep_expired(name, ahead_seconds=…)`` expires what is
queued as if the clock were that far ahead (time passing, for the queue only: notifications report real times).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

import boto3
from async_pipeline import s3_uris
from async_pipeline.notifications import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    InferenceNotification,
    InferenceResponse,
    TestNotification,
    format_time,
)
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from asyncinfer.http_serving import KeepAliveHandler, LoopbackServer
from asyncinfer.local.failure_reasons import (
    download_failed_reason,
    error_reason,
    expired_reason,
    missing_content_length_reason,
    timeout_reason,
    upload_failed_reason,
    with_unwritten_failure,
)
from asyncinfer.local.sagemaker_container import (
    ContainerCall,
    ContainerRefused,
    ContainerTimeout,
    ContainerUnreachable,
)
from asyncinfer.local.sagemaker_protocol import (
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_TTL_SECONDS,
    H_ERROR_TYPE,
    H_FAILURE_LOCATION,
    H_OUTPUT_LOCATION,
    H_REQUEST_ID,
    MAX_INLINE_BODY,
    ApiError,
    InvokeParams,
    endpoint_name_from_path,
    join_location,
    parse_invoke_request,
    validation_error,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "AsyncEndpointEmulator",
    "EmulatorEvent",
    "EndpointNotFoundError",
    "EndpointSettings",
    "InvocationRequest",
]

logger = logging.getLogger(__name__)

SUCCESS_NOTIFICATION_TOPIC = "SUCCESS_NOTIFICATION_TOPIC"
ERROR_NOTIFICATION_TOPIC = "ERROR_NOTIFICATION_TOPIC"
MAX_RESPONSE_IN_NOTIFICATION = 128 * 1024  # "≤ 128 KB" (reference §2)
# The message observed next to an embedded response body (reference §3.2, UNVERIFIED beyond one observation).
RESPONSE_BODY_MESSAGE = "Check S3 path location(if configured) or Cloudwatch for additional details."
DEFAULT_ACCOUNT = "123456789012"  # moto's account, used when STS cannot say
TEXT_PLAIN = "text/plain; charset=utf-8"
# Bodies above this are refused without being read (the limit is 128,000 bytes; below this we read and validate, so
# the answer lists every violation, and the connection stays usable).
_READ_LIMIT = 8 * 1024 * 1024


class EndpointNotFoundError(LookupError):
    """moto does not know the endpoint (or it is not an asynchronous one); the message says which."""


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """An endpoint's configuration as read from the control plane (one snapshot per register/update)."""

    name: str
    account: str
    config_name: str
    variant_name: str
    output_path: str | None
    failure_path: str | None
    success_topic: str | None
    error_topic: str | None
    include_response_in: frozenset[str]
    max_concurrent_invocations_per_instance: int
    initial_instance_count: int
    arn: str | None = None


@dataclass(frozen=True, slots=True)
class InvocationRequest:
    """An accepted request, as queued (also what ``before_invoke`` receives). ``received_at`` is ``clock()``."""

    endpoint_name: str
    inference_id: str
    input_location: str | None
    content_type: str | None
    accept: str | None
    custom_attributes: str | None
    request_ttl_seconds: int
    invocation_timeout_seconds: int
    output_location: str | None
    failure_location: str | None
    received_at: float
    settings: EndpointSettings = field(repr=False)
    body: bytes | None = field(default=None, repr=False)

    def expired(self, now: float) -> bool:
        return now - self.received_at > self.request_ttl_seconds


@dataclass(frozen=True, slots=True)
class EmulatorEvent:
    """What happened, for observers (``on_event``): registered, updated, instances, accepted, started, held,
    completed, failed, expired, cancelled, dropped, published, publish_failed."""

    kind: str
    endpoint_name: str
    inference_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


class _Endpoint:
    """Mutable per-endpoint state; everything below ``cond`` is guarded by it."""

    def __init__(self, settings: EndpointSettings, instances: int) -> None:
        self.settings = settings
        self.instances = instances
        self.cond = threading.Condition()
        self.queue: deque[InvocationRequest] = deque()
        self.in_flight = 0  # being invoked (taken by a worker)
        self.settling = 0  # expired, being written/published by the sweeper
        self.running_workers = 0  # worker threads that have not retired yet
        self.threads: list[threading.Thread] = []
        self.calls: set[ContainerCall] = set()
        self.counters: Counter[str] = Counter()
        self.stopping = False
        self.sweeper: threading.Thread | None = None
        self.refused_since: float | None = None  # monotonic time the container started refusing connections

    @property
    def desired_workers(self) -> int:
        return self.instances * self.settings.max_concurrent_invocations_per_instance


class _HTTPServer(LoopbackServer):
    def __init__(self, address: tuple[str, int], emulator: AsyncEndpointEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)


class _Handler(KeepAliveHandler):
    server_version = "asyncinfer-sagemaker-runtime"
    timeout = 60  # idle keep-alive connections give up

    @property
    def _server(self) -> _HTTPServer:
        return cast(_HTTPServer, self.server)

    def _header(self, name: str) -> str | None:
        # http.server decodes header bytes as latin-1; botocore sends non-ASCII values as UTF-8.
        raw = self.headers.get(name)
        if raw is None:
            return None
        try:
            return raw.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return raw

    def _send(self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str | None] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header(H_REQUEST_ID, str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            if value is not None:
                # send_header encodes latin-1; sending the UTF-8 bytes keeps non-ASCII locations intact.
                self.send_header(name, value.encode("utf-8").decode("latin-1"))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, error: ApiError) -> None:
        self._send(error.status, {"message": error.message}, {H_ERROR_TYPE: error.code})

    def _read_body(self) -> bytes | None:
        """The request body; None after answering (too large, or malformed framing: the connection then closes)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    chunk_size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    self._send_error(ApiError(400, "SerializationException", "Malformed chunked body."))
                    return None
                if chunk_size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                size += chunk_size
                if size > _READ_LIMIT:
                    break
                chunks.append(self.rfile.read(chunk_size))
                self.rfile.readline(3)
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self.close_connection = True
                self._send_error(ApiError(400, "SerializationException", "Malformed Content-Length."))
                return None
            if length <= _READ_LIMIT:
                return self.rfile.read(length) if length > 0 else b""
        self.close_connection = True  # the rest of the body is not read, so the connection cannot be reused
        self._send_error(
            validation_error(
                "1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have length "
                f"less than or equal to {MAX_INLINE_BODY}"
            )
        )
        return None

    def _unknown_operation(self) -> None:
        error = ApiError(404, "UnknownOperationException", f"No operation matches {self.command} {self.path}.")
        self._send_error(error)

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        name = endpoint_name_from_path(self.path)
        if name is None:
            self._unknown_operation()
            return
        try:
            params = parse_invoke_request(name, self._header, body)
            request = self._server.emulator._accept(params)
        except ApiError as error:
            self._send_error(error)
            return
        self._send(
            202,
            {"InferenceId": request.inference_id},
            {H_OUTPUT_LOCATION: request.output_location, H_FAILURE_LOCATION: request.failure_location},
        )

    def _other_method(self) -> None:
        if self._read_body() is not None:
            self._unknown_operation()

    do_GET = do_PUT = do_DELETE = do_PATCH = _other_method


class AsyncEndpointEmulator:
    """The runtime side of SageMaker asynchronous endpoints, backed by moto (control plane, S3, SNS).

    ``container_url`` is the model container's base URL (``GET /ping``, ``POST /invocations``), or a function of
    the endpoint name returning it (called for each invocation, so a restarted container may move). ``clock`` gives
    the seconds since the epoch used for RequestTTLSeconds and notification times (tests inject a fake one; the
    invocation timeout always uses real time, since it bounds real sockets). ``before_invoke(request)`` runs before
    each container call: raising fails the invocation with ``str(exception)`` as failureReason (a hook for fault
    injection). ``on_event(event)`` observes everything that happens; both hooks run on emulator threads and their
    own failures are logged, never propagated. ``session`` (optional) is the boto3 session the moto clients are made
    from; sharing one between emulators saves re-reading the service models.
    """

    def __init__(
        self,
        aws_endpoint_url: str,
        region: str,
        container_url: str | Callable[[str], str],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        account_id: str | None = None,
        clock: Callable[[], float] = time.time,
        before_invoke: Callable[[InvocationRequest], None] | None = None,
        on_event: Callable[[EmulatorEvent], None] | None = None,
        default_max_concurrency: int = 1,
        sweep_interval: float = 1.0,
        require_content_length: bool = True,
        session: boto3.session.Session | None = None,
        before_accept: Callable[[InvokeParams], None] | None = None,
        before_write: Callable[[str, str], None] | None = None,
        upload_retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0),
        container_down_grace_seconds: float = 60.0,
    ) -> None:
        self.region = region
        self._container_url = container_url
        self._address = (host, port)
        self._account_id = account_id
        self._clock = clock
        self.before_invoke = before_invoke
        self.on_event = on_event
        self.before_accept = before_accept
        self.before_write = before_write
        self._upload_retry_delays = upload_retry_delays
        self._container_down_grace = container_down_grace_seconds
        self._default_max_concurrency = default_max_concurrency
        self._sweep_interval = sweep_interval
        self._require_content_length = require_content_length
        if session is None:
            # moto accepts any credentials; explicit dummy ones keep a developer's real profile out of it.
            session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
        config = Config(max_pool_connections=64, retries={"mode": "standard", "max_attempts": 3})
        options: dict[str, Any] = {"endpoint_url": aws_endpoint_url, "region_name": region, "config": config}
        self._s3: S3Client = session.client("s3", **options)
        self._sns: Any = session.client("sns", **options)
        self._sagemaker: Any = session.client("sagemaker", **options)
        self._sts: Any = session.client("sts", **options)
        self._lock = threading.RLock()  # registry, lifecycle
        self._endpoints: dict[str, _Endpoint] = {}
        self._httpd: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._url: str | None = None
        self._bound: tuple[str, int] = (host, port)
        self._stopping = False
        self._cut = False

    # --- lifecycle ------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the emulator is not started")
        return self._url

    def start(self) -> str:
        """Serve the runtime API on a daemon thread; return its base URL (for AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME)."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("a stopped emulator cannot be restarted")
            if self._httpd is not None:
                return self.url
            httpd = _HTTPServer(self._address, self)
            raw_host, port = httpd.server_address[:2]
            host = raw_host.decode() if isinstance(raw_host, bytes) else str(raw_host)
            shown = f"[{host}]" if ":" in host else host
            self._url = f"http://{shown}:{port}"
            self._bound = (host, int(port))
            self._httpd = httpd
            self._serve_thread = threading.Thread(
                target=httpd.serve_forever, kwargs={"poll_interval": 0.5}, name="sagemaker-runtime-http", daemon=True
            )
            self._serve_thread.start()
            logger.info("SageMaker runtime emulator listening on %s", self._url)
            return self._url

    def stop(self, grace_seconds: float = 3.0) -> None:
        """Stop accepting requests, drop the queued ones, let in-flight ones finish within ``grace_seconds`` and cut
        the rest (they publish nothing, as when an instance dies). Idempotent."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            httpd, self._httpd = self._httpd, None
            endpoints = list(self._endpoints.values())
        if httpd is not None:
            self._shutdown_server(httpd)
            httpd.cut_connections()
            httpd.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(5)
        for endpoint in endpoints:
            with endpoint.cond:
                endpoint.stopping = True
                dropped = list(endpoint.queue)
                endpoint.queue.clear()
                endpoint.counters["dropped"] += len(dropped)
                endpoint.cond.notify_all()
            for request in dropped:
                self._emit("dropped", request.endpoint_name, request.inference_id)
        deadline = time.monotonic() + grace_seconds
        for endpoint in endpoints:
            for thread in self._threads_of(endpoint):
                thread.join(max(0.0, deadline - time.monotonic()))
        self._cut = True  # from now on a container call is cut as soon as it is registered (see _process)
        for endpoint in endpoints:
            with endpoint.cond:
                calls = list(endpoint.calls)
            for call in calls:
                call.cancel()
        for endpoint in endpoints:
            for thread in self._threads_of(endpoint):
                thread.join(2.0)
                if thread.is_alive():
                    logger.warning("thread %s did not stop", thread.name)

    def _shutdown_server(self, httpd: _HTTPServer) -> None:
        # serve_forever() notices shutdown() only when its select() returns: a connection wakes it at once instead of
        # after poll_interval (the woken handler just reads EOF).
        stopper = threading.Thread(target=httpd.shutdown, name="sagemaker-runtime-shutdown", daemon=True)
        stopper.start()
        while stopper.is_alive():
            with contextlib.suppress(OSError):
                socket.create_connection(self._bound, timeout=0.2).close()
            stopper.join(0.05)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @staticmethod
    def _threads_of(endpoint: _Endpoint) -> list[threading.Thread]:
        with endpoint.cond:
            threads = list(endpoint.threads)
        if endpoint.sweeper is not None:
            threads.append(endpoint.sweeper)
        return [t for t in threads if t is not threading.current_thread()]

    # --- endpoints ------------------------------------------------------------------------------------------------

    def register_endpoint(self, name: str) -> EndpointSettings:
        """Read the endpoint's configuration from moto, start its workers and publish a TestNotification to each
        configured topic (as CreateEndpoint does). Already registered: returns its settings and does nothing."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("the emulator is stopped")
            existing = self._endpoints.get(name)
            if existing is not None:
                return existing.settings
            settings = self._describe(name)
            endpoint = _Endpoint(settings, settings.initial_instance_count)
            self._endpoints[name] = endpoint
            endpoint.sweeper = threading.Thread(
                target=self._sweeper_loop, args=(endpoint,), name=f"sagemaker-{name}-ttl", daemon=True
            )
            endpoint.sweeper.start()
            with endpoint.cond:
                self._resize_locked(endpoint)
        self._emit("registered", name, detail={"settings": settings})
        self._publish_test_notifications(settings)
        return settings

    def update_endpoint(self, name: str) -> EndpointSettings:
        """Re-read the configuration (after UpdateEndpoint), reset the instance count to the config's initial one and
        publish a TestNotification again. Requests already accepted keep the locations and topics they were given."""
        with self._lock:
            endpoint = self._endpoints.get(name)
            if endpoint is None:
                return self.register_endpoint(name)
            settings = self._describe(name)
            with endpoint.cond:
                endpoint.settings = settings
                endpoint.instances = settings.initial_instance_count
                self._resize_locked(endpoint)
        self._emit("updated", name, detail={"settings": settings})
        self._publish_test_notifications(settings)
        return settings

    def set_instance_count(self, name: str, count: int) -> None:
        """Scale the endpoint's variant (0 allowed: requests then queue until it scales out again)."""
        if count < 0:
            raise ValueError("the instance count cannot be negative")
        endpoint = self._endpoint(name)
        with endpoint.cond:
            endpoint.instances = count
            self._resize_locked(endpoint)
        self._emit("instances", name, detail={"instances": count})

    def stats(self, name: str) -> dict[str, int]:
        """Counters of one endpoint. ``backlog`` = queued + in flight (CloudWatch's ApproximateBacklogSize);
        ``failed`` counts every failure, ``expired`` included (like InvocationFailures)."""
        endpoint = self._endpoint(name)
        with endpoint.cond:
            counters = endpoint.counters
            return {
                "queued": len(endpoint.queue),
                "in_flight": endpoint.in_flight,
                "backlog": len(endpoint.queue) + endpoint.in_flight,
                "instances": endpoint.instances,
                "max_concurrency_per_instance": endpoint.settings.max_concurrent_invocations_per_instance,
                "workers": endpoint.desired_workers,
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

    def wait_until_idle(self, name: str, timeout: float) -> bool:
        """Wait until nothing is queued or in progress on the endpoint; False if that did not happen in time."""
        endpoint = self._endpoint(name)
        with endpoint.cond:
            return endpoint.cond.wait_for(
                lambda: not endpoint.queue and endpoint.in_flight == 0 and endpoint.settling == 0, timeout
            )

    def sweep_expired(self, name: str | None = None, *, ahead_seconds: float = 0.0) -> int:
        """Fail, now and on this thread, every queued request whose RequestTTLSeconds has passed (the background
        sweeper does the same within ``sweep_interval``); return how many. Useful after advancing a fake clock.
        ``ahead_seconds``: judge expiry as if the clock were that much later (fault injection: the requests queued
        now have waited out their TTL; requests that arrive meanwhile are not affected)."""
        with self._lock:
            endpoints = [self._endpoint(name)] if name is not None else list(self._endpoints.values())
        total = 0
        for endpoint in endpoints:
            with endpoint.cond:
                expired = self._pop_expired_locked(endpoint, ahead_seconds)
            self._settle_expired(endpoint, expired)
            total += len(expired)
        return total

    def _endpoint(self, name: str) -> _Endpoint:
        with self._lock:
            endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise KeyError(f"endpoint {name!r} is not registered")
        return endpoint

    def _account(self) -> str:
        if self._account_id is None:
            try:
                self._account_id = str(self._sts.get_caller_identity()["Account"])
            except (BotoCoreError, ClientError):
                self._account_id = DEFAULT_ACCOUNT
        return self._account_id

    def _describe(self, name: str) -> EndpointSettings:
        try:
            endpoint = self._sagemaker.describe_endpoint(EndpointName=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ValidationError"):
                raise EndpointNotFoundError(f"Endpoint {name} of account {self._account()} not found.") from exc
            raise
        arn = endpoint.get("EndpointArn")
        account = arn.split(":")[4] if isinstance(arn, str) and arn.count(":") >= 5 else self._account()
        config = self._sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        async_config = config.get("AsyncInferenceConfig")
        if not async_config:
            raise EndpointNotFoundError(
                f"Endpoint {name} of account {account} is not configured for asynchronous inference."
            )
        output = async_config.get("OutputConfig") or {}
        notification = output.get("NotificationConfig") or {}
        client = async_config.get("ClientConfig") or {}
        variants = config.get("ProductionVariants") or [{}]
        return EndpointSettings(
            name=name,
            account=account,
            config_name=endpoint["EndpointConfigName"],
            variant_name=variants[0].get("VariantName", "AllTraffic"),
            output_path=output.get("S3OutputPath") or None,
            failure_path=output.get("S3FailurePath") or None,
            success_topic=notification.get("SuccessTopic") or None,
            error_topic=notification.get("ErrorTopic") or None,
            include_response_in=frozenset(notification.get("IncludeInferenceResponseIn") or ()),
            max_concurrent_invocations_per_instance=int(
                client.get("MaxConcurrentInvocationsPerInstance") or self._default_max_concurrency
            ),
            initial_instance_count=int(variants[0].get("InitialInstanceCount", 1)),
            arn=arn,
        )

    def _lookup(self, name: str) -> _Endpoint:
        """The endpoint a request names: registered, or looked up in moto now (created after start())."""
        endpoint = self._endpoints.get(name)  # lock-free fast path: registered endpoints are never removed
        if endpoint is not None:
            return endpoint
        with self._lock:
            if self._stopping:
                raise ApiError(503, "ServiceUnavailable", "The endpoint emulator is shutting down.")
            try:
                self.register_endpoint(name)
            except EndpointNotFoundError as exc:
                raise validation_error(str(exc)) from exc
            except (BotoCoreError, ClientError) as exc:
                raise ApiError(500, "InternalFailure", f"Could not read the endpoint configuration: {exc}") from exc
            return self._endpoints[name]

    def _publish_test_notifications(self, settings: EndpointSettings) -> None:
        message = TestNotification().to_message()
        for topic in dict.fromkeys(t for t in (settings.success_topic, settings.error_topic) if t):
            self._publish(settings.name, None, topic, message)

    # --- accepting ------------------------------------------------------------------------------------------------

    def _accept(self, params: InvokeParams) -> InvocationRequest:
        """Queue a validated request (HTTP handler thread); the locations returned are where results will go."""
        if self._stopping:
            raise ApiError(503, "ServiceUnavailable", "The endpoint emulator is shutting down.")
        if self.before_accept is not None:
            try:
                self.before_accept(params)  # may answer for the service (throttling, 503) instead
            except ApiError:
                raise
            except Exception:
                logger.exception("before_accept hook failed")
        endpoint = self._lookup(params.endpoint_name)
        settings = endpoint.settings
        object_id = str(uuid.uuid4())  # not the inference id: real output names are unrelated uuids
        if params.filename:
            output_name, failure_stem = params.filename, params.filename.split(".", 1)[0]
        else:
            output_name, failure_stem = f"{object_id}.out", object_id
        extension = params.s3_output_path_extension
        request = InvocationRequest(
            endpoint_name=settings.name,
            inference_id=params.inference_id or str(uuid.uuid4()),
            input_location=params.input_location,
            content_type=params.content_type,
            accept=params.accept,
            custom_attributes=params.custom_attributes,
            request_ttl_seconds=params.request_ttl_seconds or DEFAULT_TTL_SECONDS,
            invocation_timeout_seconds=params.invocation_timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
            output_location=(
                join_location(settings.output_path, extension, output_name) if settings.output_path else None
            ),
            failure_location=(
                join_location(settings.failure_path, extension, f"{failure_stem}-error.out")
                if settings.failure_path
                else None
            ),
            received_at=self._clock(),
            settings=settings,
            body=params.body,
        )
        with endpoint.cond:
            if endpoint.stopping:
                raise ApiError(503, "ServiceUnavailable", "The endpoint emulator is shutting down.")
            endpoint.queue.append(request)
            endpoint.counters["accepted"] += 1
            endpoint.cond.notify_all()
        self._emit("accepted", request.endpoint_name, request.inference_id, {"request": request})
        return request

    # --- workers --------------------------------------------------------------------------------------------------

    def _resize_locked(self, endpoint: _Endpoint) -> None:
        """Match the worker threads to instances x concurrency. Extra workers retire after their current request, so
        in-flight work is never cut by a scale-in (SageMaker drains instances too)."""
        endpoint.threads = [t for t in endpoint.threads if t.is_alive()]
        missing = endpoint.desired_workers - endpoint.running_workers
        for _ in range(max(0, missing)):
            endpoint.running_workers += 1
            thread = threading.Thread(
                target=self._worker_loop,
                args=(endpoint,),
                name=f"sagemaker-{endpoint.settings.name}-worker",
                daemon=True,
            )
            endpoint.threads.append(thread)
            thread.start()
        endpoint.cond.notify_all()

    def _worker_loop(self, endpoint: _Endpoint) -> None:
        while True:
            with endpoint.cond:
                while True:
                    if endpoint.stopping or endpoint.running_workers > endpoint.desired_workers:
                        endpoint.running_workers -= 1
                        endpoint.cond.notify_all()
                        return
                    if endpoint.queue:
                        request = endpoint.queue.popleft()
                        endpoint.in_flight += 1
                        break
                    endpoint.cond.wait()
            try:
                if request.expired(self._clock()):
                    self._expire(endpoint, request)
                else:
                    self._process(endpoint, request)
            except Exception:  # a bug here must not kill the worker and shrink the pool
                logger.exception("unexpected error processing %s", request.inference_id)
            finally:
                with endpoint.cond:
                    endpoint.in_flight -= 1
                    endpoint.cond.notify_all()

    def _sweeper_loop(self, endpoint: _Endpoint) -> None:
        """Expire queued requests even when no worker will take them (0 instances, or all busy)."""
        while True:
            with endpoint.cond:
                if endpoint.stopping:
                    return
                expired = self._pop_expired_locked(endpoint)
                if not expired:
                    endpoint.cond.wait(self._next_sweep_locked(endpoint))
                    continue
            self._settle_expired(endpoint, expired)

    def _pop_expired_locked(self, endpoint: _Endpoint, ahead_seconds: float = 0.0) -> list[InvocationRequest]:
        now = self._clock() + ahead_seconds
        expired = [r for r in endpoint.queue if r.expired(now)]
        if expired:
            endpoint.queue = deque(r for r in endpoint.queue if not r.expired(now))
            endpoint.settling += len(expired)
        return expired

    def _settle_expired(self, endpoint: _Endpoint, expired: list[InvocationRequest]) -> None:
        for request in expired:
            try:
                self._expire(endpoint, request)
            except Exception:
                logger.exception("unexpected error expiring %s", request.inference_id)
            finally:
                with endpoint.cond:
                    endpoint.settling -= 1
                    endpoint.cond.notify_all()

    def _next_sweep_locked(self, endpoint: _Endpoint) -> float | None:
        # Sleep until the earliest deadline, but never longer than sweep_interval: the clock may be a fake one
        # that does not move with real time. With nothing queued, sleep until notified.
        if not endpoint.queue:
            return None
        earliest = min(r.received_at + r.request_ttl_seconds for r in endpoint.queue)
        return min(max(earliest - self._clock(), 0.01), self._sweep_interval)

    # --- one request ----------------------------------------------------------------------------------------------

    def _process(self, endpoint: _Endpoint, request: InvocationRequest) -> None:
        self._emit("started", request.endpoint_name, request.inference_id, {"request": request})
        try:
            payload = request.body if request.body is not None else self._download(request.input_location or "")
        except (BotoCoreError, ClientError, ValueError) as exc:
            self._fail(endpoint, request, download_failed_reason(request.input_location, exc))
            return
        if self.before_invoke is not None:
            try:
                self.before_invoke(request)
            except Exception as exc:
                self._fail(endpoint, request, str(exc) or type(exc).__name__)
                return
        headers: dict[str, str] = {}
        for name, value in (
            ("Content-Type", request.content_type),
            ("Accept", request.accept),
            ("X-Amzn-SageMaker-Custom-Attributes", request.custom_attributes),
        ):
            if value is not None:
                headers[name] = value
        try:
            target = self._container_url
            call = ContainerCall(target(request.endpoint_name) if callable(target) else target)
        except Exception as exc:
            self._fail(endpoint, request, f"ClientError: no model container for {request.endpoint_name}: {exc}")
            return
        with endpoint.cond:
            endpoint.calls.add(call)
        if self._cut:  # stop() gave up waiting before this call was registered
            call.cancel()
        try:
            reply = call.invoke(payload, headers, request.invocation_timeout_seconds)
        except ContainerTimeout:
            self._container_answered(endpoint)
            if not self._cancelled(endpoint, request, call):
                self._fail(endpoint, request, timeout_reason(request.invocation_timeout_seconds), timed_out=True)
            return
        except ContainerRefused as exc:
            if not self._cancelled(endpoint, request, call) and not self._hold_for_container(endpoint, request):
                self._fail(endpoint, request, str(exc))
            return
        except ContainerUnreachable as exc:
            self._container_answered(endpoint)
            if not self._cancelled(endpoint, request, call):
                self._fail(endpoint, request, str(exc))
            return
        finally:
            with endpoint.cond:
                endpoint.calls.discard(call)
        self._container_answered(endpoint)
        if not 200 <= reply.status < 300:
            reason = error_reason(reply.status, reply.body)
            self._fail(endpoint, request, reason, reply.body, reply.content_type, model_answered=True)
        elif self._require_content_length and not reply.has_content_length and reply.status != 204:
            self._fail(endpoint, request, missing_content_length_reason())
        else:
            self._succeed(endpoint, request, reply.body, reply.content_type)

    def _hold_for_container(self, endpoint: _Endpoint, request: InvocationRequest) -> bool:
        """Nothing listens at the container (it died, it restarts): SageMaker takes such an instance out of service
        and queued requests wait for a healthy one, so this one goes back to the head of the queue (its
        RequestTTLSeconds still running). After ``container_down_grace_seconds`` of refusals (a container that
        never comes up) requests fail with the reason instead. False: fail it now."""
        now = time.monotonic()
        with endpoint.cond:
            if endpoint.stopping:
                return False
            if endpoint.refused_since is None:
                endpoint.refused_since = now
            if now - endpoint.refused_since > self._container_down_grace:
                return False
            endpoint.queue.appendleft(request)
            endpoint.counters["container_refused"] += 1
            endpoint.cond.notify_all()
        self._emit("held", request.endpoint_name, request.inference_id, {"reason": "container refused the call"})
        time.sleep(0.25)  # this worker's instance is out of service for a moment
        return True

    def _container_answered(self, endpoint: _Endpoint) -> None:
        if endpoint.refused_since is not None:
            with endpoint.cond:
                endpoint.refused_since = None

    def _cancelled(self, endpoint: _Endpoint, request: InvocationRequest, call: ContainerCall) -> bool:
        if not call.cancelled:
            return False
        with endpoint.cond:
            endpoint.counters["cancelled"] += 1
        self._emit("cancelled", request.endpoint_name, request.inference_id)
        return True

    def _download(self, location: str) -> bytes:
        bucket, key = s3_uris.parse_uri(location)
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def _put(self, location: str, body: bytes, content_type: str | None) -> None:
        bucket, key = s3_uris.parse_uri(location)
        if content_type:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        else:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body)

    def _write(self, endpoint: _Endpoint, location: str, body: bytes, content_type: str | None, kind: str) -> None:
        """Write an output or failure object, retrying a refused write (``upload_retry_delays``) before giving up
        with the last error. ``before_write(location, kind)`` may refuse a write by raising (fault injection)."""
        delays = iter(self._upload_retry_delays)
        while True:
            try:
                if self.before_write is not None:
                    self.before_write(location, kind)
                self._put(location, body, content_type)
                return
            except (BotoCoreError, ClientError) as exc:
                delay = next(delays, None)
                if delay is None or self._stopping:
                    with endpoint.cond:
                        endpoint.counters["upload_failed"] += 1  # SageMaker's ResponseUploadFailures (UNVERIFIED)
                    raise
                logger.info("writing %s failed (%s); retrying in %.1f s", location, exc, delay)
                with endpoint.cond:
                    endpoint.counters["upload_retries"] += 1
                time.sleep(delay)

    def _embedded(self, request: InvocationRequest, kind: str, body: bytes) -> InferenceResponse | None:
        if kind not in request.settings.include_response_in or len(body) > MAX_RESPONSE_IN_NOTIFICATION:
            return None
        return InferenceResponse(
            content=base64.b64encode(body).decode("ascii"), encoding="BASE64", message=RESPONSE_BODY_MESSAGE
        )

    def _timestamp(self, seconds: float) -> str:
        return format_time(datetime.fromtimestamp(seconds, UTC))

    def _succeed(self, endpoint: _Endpoint, request: InvocationRequest, body: bytes, content_type: str | None) -> None:
        if request.output_location is not None:
            try:
                self._write(endpoint, request.output_location, body, content_type, "output")
            except (BotoCoreError, ClientError, ValueError) as exc:
                attempts = len(self._upload_retry_delays) + 1
                self._fail(endpoint, request, upload_failed_reason(request.output_location, attempts, exc))
                return
        notification = InferenceNotification(
            inference_id=request.inference_id,
            invocation_status=STATUS_COMPLETED,
            endpoint_name=request.endpoint_name,
            input_location=request.input_location,
            output_location=request.output_location,
            received_time=self._timestamp(request.received_at),
            event_time=self._timestamp(self._clock()),
            aws_region=self.region,
            request_content_type=request.content_type,
            accept=request.accept,
            response_content_type=content_type,
            custom_attributes=request.custom_attributes,
            response=self._embedded(request, SUCCESS_NOTIFICATION_TOPIC, body),
        )
        with endpoint.cond:
            endpoint.counters["completed"] += 1
        self._emit("completed", request.endpoint_name, request.inference_id, {"notification": notification})
        if request.settings.success_topic:
            self._publish(
                request.endpoint_name, request.inference_id, request.settings.success_topic, notification.to_message()
            )

    def _expire(self, endpoint: _Endpoint, request: InvocationRequest) -> None:
        # UNVERIFIED whether SageMaker notifies expiries: the emulator does (failure object + error notification),
        # so the pipeline never loses a request.
        self._fail(endpoint, request, expired_reason(request.request_ttl_seconds), expired=True)

    def _fail(
        self,
        endpoint: _Endpoint,
        request: InvocationRequest,
        reason: str,
        body: bytes | None = None,
        content_type: str | None = None,
        *,
        model_answered: bool = False,
        expired: bool = False,
        timed_out: bool = False,
    ) -> None:
        """Write the failure object (the model's error body, or the reason as text) and send the error notification."""
        failure_location = request.failure_location
        if failure_location is not None:
            if model_answered and body is not None:
                data, data_type = body, content_type or "application/octet-stream"
            else:
                data, data_type = reason.encode(), TEXT_PLAIN
            try:
                self._write(endpoint, failure_location, data, data_type, "failure")
            except (BotoCoreError, ClientError, ValueError) as exc:
                logger.warning("could not write the failure object %s: %s", failure_location, exc)
                # Never point consumers at an object that does not exist, and say why there is none (a consumer
                # that fell back to the FailureLocation of the endpoint call's answer learns it from the reason).
                reason = with_unwritten_failure(reason, failure_location, exc)
                failure_location = None
        notification = InferenceNotification(
            inference_id=request.inference_id,
            invocation_status=STATUS_FAILED,
            endpoint_name=request.endpoint_name,
            input_location=request.input_location,
            failure_location=failure_location,
            failure_reason=reason,
            received_time=self._timestamp(request.received_at),
            event_time=self._timestamp(self._clock()),
            aws_region=self.region,
            request_content_type=request.content_type,
            accept=request.accept,
            response_content_type=content_type if model_answered else None,
            custom_attributes=request.custom_attributes,
            response=(
                self._embedded(request, ERROR_NOTIFICATION_TOPIC, body) if model_answered and body is not None else None
            ),
        )
        with endpoint.cond:
            endpoint.counters["failed"] += 1
            if expired:
                endpoint.counters["expired"] += 1
            if timed_out:
                endpoint.counters["timed_out"] += 1
        kind = "expired" if expired else "failed"
        self._emit(kind, request.endpoint_name, request.inference_id, {"notification": notification})
        if request.settings.error_topic:
            self._publish(
                request.endpoint_name, request.inference_id, request.settings.error_topic, notification.to_message()
            )

    # --- outputs --------------------------------------------------------------------------------------------------

    def _publish(self, endpoint_name: str, inference_id: str | None, topic: str, message: Mapping[str, Any]) -> None:
        try:
            self._sns.publish(TopicArn=topic, Message=json.dumps(message))
        except (BotoCoreError, ClientError) as exc:
            # SageMaker counts these (NotificationFailures) and moves on; so does the emulator.
            logger.warning("could not publish to %s: %s", topic, exc)
            self._count(endpoint_name, "publish_failed")
            self._emit("publish_failed", endpoint_name, inference_id, {"topic": topic, "error": str(exc)})
            return
        self._count(endpoint_name, "published")
        self._emit("published", endpoint_name, inference_id, {"topic": topic, "message": message})

    def _count(self, endpoint_name: str, counter: str) -> None:
        with self._lock:
            endpoint = self._endpoints.get(endpoint_name)
        if endpoint is not None:
            with endpoint.cond:
                endpoint.counters[counter] += 1

    def _emit(
        self, kind: str, endpoint_name: str, inference_id: str | None = None, detail: Mapping[str, Any] | None = None
    ) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(EmulatorEvent(kind, endpoint_name, inference_id, detail or {}))
        except Exception:
            logger.exception("on_event hook failed for %s", kind)

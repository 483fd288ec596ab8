"""The SageMaker asynchronous endpoint of the local stack: the parts of this package, composed and served.

moto provides the control plane (CreateModel/EndpointConfig/Endpoint) but no working async endpoint, so this
emulator serves the runtime API itself. Point boto3 at it with ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (or
``endpoint_url=``) and the unchanged ``invoke_endpoint_async`` works against it::

    emulator = AsyncEndpointEmulator(moto_url, "us-east-1", container_url="http://127.0.0.1:8080")
    runtime_url = emulator.start()
    emulator.register_endpoint("my-endpoint")      # optional: unknown endpoints are looked up on first use
    ...
    emulator.stop()

What it does and the choices it makes where the reference is silent: docs/local-stack.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from asyncinfer.http_serving import RequestGate
from asyncinfer.local.endpoint.events import EmulatorEvent, EventKind, InstanceCount
from asyncinfer.local.endpoint.failure_reasons import expired_reason
from asyncinfer.local.endpoint.hooks import EndpointHooks, HookList
from asyncinfer.local.endpoint.http_api import RuntimeApiServer
from asyncinfer.local.endpoint.invocation import ContainerUrl, Failure, Invoker
from asyncinfer.local.endpoint.protocol import ApiError, InvokeParams, validation_error
from asyncinfer.local.endpoint.queue import EndpointQueue
from asyncinfer.local.endpoint.requests import InvocationRequest, new_request
from asyncinfer.local.endpoint.results import ResultWriter
from asyncinfer.local.endpoint.settings import ControlPlane, EndpointNotFoundError, EndpointSettings
from asyncinfer.local.endpoint.updates import ModelHosting, UpdateWatcher, report_to_moto

if TYPE_CHECKING:
    from asyncinfer.local.endpoint.events import EventDetail

__all__ = ["AsyncEndpointEmulator", "EmulatorOptions"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EmulatorOptions:
    """How the emulator behaves where SageMaker leaves a choice or a test wants a shortcut (docs/local-stack.md).

    ``default_max_concurrency``: invocations per instance without ``ClientConfig.MaxConcurrentInvocationsPerInstance``.
    ``sweep_interval``: the longest the TTL sweeper sleeps (a fake clock may not move with real time).
    ``require_content_length``: fail a container answer without Content-Length, as SageMaker does.
    ``upload_retry_delays``: the pauses before retrying a refused output or failure write.
    ``container_down_grace_seconds``: how long a container that refuses connections keeps requests waiting.
    ``account_id``: the account in error messages when the endpoint's ARN does not say (default: STS's, or moto's).
    """

    default_max_concurrency: int = 1
    sweep_interval: float = 1.0
    require_content_length: bool = True
    upload_retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0)
    container_down_grace_seconds: float = 60.0
    account_id: str | None = None


@dataclass
class _Endpoint:
    settings: EndpointSettings  # replaced by update_endpoint; accepted requests keep the snapshot they were given
    queue: EndpointQueue


class AsyncEndpointEmulator:
    """The runtime side of SageMaker asynchronous endpoints, backed by moto (control plane, S3, SNS).

    ``container_url`` is the model container's base URL (``GET /ping``, ``POST /invocations``), or a function of
    the endpoint name returning it (called for each invocation, so a restarted container may move). ``clock`` gives
    the seconds since the epoch used for RequestTTLSeconds and notification times (tests inject a fake one; the
    invocation timeout always uses real time, since it bounds real sockets). ``hooks`` (and :meth:`add_hooks`):
    objects implementing :class:`~asyncinfer.local.endpoint.hooks.EndpointHooks`, all called in order; their own
    failures are logged, never propagated, except where the protocol says. ``session`` (optional) is the boto3
    session the moto clients are made from; sharing one between emulators saves re-reading the service models.
    ``data_session`` (optional, default ``session``) carries the execution role's credentials for what SageMaker
    does as that role (read inputs, write outputs and failures, publish notifications); ``gate`` (optional) decides
    whether a caller may invoke the endpoint (IAM, :class:`~asyncinfer.http_serving.RequestGate`).
    """

    def __init__(
        self,
        aws_endpoint_url: str,
        region: str,
        container_url: ContainerUrl,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        options: EmulatorOptions | None = None,
        clock: Callable[[], float] = time.time,
        hooks: Iterable[EndpointHooks] = (),
        session: boto3.session.Session | None = None,
        data_session: boto3.session.Session | None = None,
        gate: RequestGate | None = None,
    ) -> None:
        options = options or EmulatorOptions()
        self.region = region
        self._options = options
        self._clock = clock
        self._hooks = HookList(hooks)
        if session is None:
            # moto accepts any credentials; explicit dummy ones keep a developer's real profile out of it.
            session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
        config = Config(max_pool_connections=64, retries={"mode": "standard", "max_attempts": 3})
        # Inputs, outputs, failures and notifications go through the execution role (``data_session``); reading the
        # endpoint's configuration is SageMaker's own business (``session``).
        data = data_session or session
        s3 = data.client("s3", endpoint_url=aws_endpoint_url, region_name=region, config=config)
        sns = data.client("sns", endpoint_url=aws_endpoint_url, region_name=region, config=config)
        sagemaker = session.client("sagemaker", endpoint_url=aws_endpoint_url, region_name=region, config=config)
        sts = session.client("sts", endpoint_url=aws_endpoint_url, region_name=region, config=config)
        self._control_plane = ControlPlane(
            sagemaker, sts, account_id=options.account_id, default_max_concurrency=options.default_max_concurrency
        )
        self._invoker = Invoker(s3, container_url, self._hooks, require_content_length=options.require_content_length)
        self._writer = ResultWriter(s3, sns, region, self._hooks, clock=clock, retry_delays=options.upload_retry_delays)
        self._http = RuntimeApiServer(self, host, port, gate)
        self._lock = threading.RLock()  # registry, lifecycle
        self._endpoints: dict[str, _Endpoint] = {}
        self._started = False
        self._stopping = False
        self._aws_endpoint_url = aws_endpoint_url
        self._updates: UpdateWatcher | None = None

    def add_hooks(self, *hooks: EndpointHooks) -> None:
        """Register more hooks (after those already registered; none is replaced)."""
        self._hooks.add(*hooks)

    # --- lifecycle ------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        url = self._http.url
        if url is None:
            raise RuntimeError("the emulator is not started")
        return url

    def start(self) -> str:
        """Serve the runtime API on a daemon thread; return its base URL (for AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME)."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("a stopped emulator cannot be restarted")
            if not self._started:
                self._http.start()
                self._started = True
            return self.url

    def stop(self, grace_seconds: float = 3.0) -> None:
        """Stop accepting requests, drop the queued ones, let in-flight ones finish within ``grace_seconds`` and cut
        the rest (they publish nothing, as when an instance dies). Idempotent."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            endpoints = list(self._endpoints.values())
            updates, self._updates = self._updates, None
        if updates is not None:
            updates.stop()
        self._writer.stop()
        self._http.stop()
        for endpoint in endpoints:
            for request in endpoint.queue.stop():
                self._emit(EventKind.DROPPED, request.endpoint_name, request.inference_id)
        deadline = time.monotonic() + grace_seconds
        for endpoint in endpoints:
            for thread in endpoint.queue.threads():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._invoker.calls.cut_all()
        for endpoint in endpoints:
            for thread in endpoint.queue.threads():
                thread.join(2.0)
                if thread.is_alive():
                    logger.warning("thread %s did not stop", thread.name)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

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
            settings = self._control_plane.describe(name)
            queue = EndpointQueue(
                name,
                settings.max_concurrent_invocations_per_instance,
                settings.initial_instance_count,
                process=self._process,
                expire=self._expire,
                clock=self._clock,
                sweep_interval=self._options.sweep_interval,
                container_down_grace_seconds=self._options.container_down_grace_seconds,
            )
            self._endpoints[name] = _Endpoint(settings, queue)
            queue.start()
        self._emit(EventKind.REGISTERED, name, detail=settings)
        self._writer.publish_test_notifications(settings, queue)
        return settings

    def update_endpoint(self, name: str, settings: EndpointSettings | None = None) -> EndpointSettings:
        """Take the configuration UpdateEndpoint switched to (``settings``, else read now): its concurrency, the
        instance count the control plane says (kept or reset, per RetainAllVariantProperties), and a TestNotification
        again. Requests already accepted keep the locations and topics they were given; queued ones stay queued."""
        with self._lock:
            endpoint = self._endpoints.get(name)
            if endpoint is None:
                return self.register_endpoint(name)
            settings = settings or self._control_plane.describe(name)
            endpoint.settings = settings
            instances = settings.desired_instance_count
            endpoint.queue.configure(
                settings.max_concurrent_invocations_per_instance,
                settings.initial_instance_count if instances is None else instances,
            )
        self._emit(EventKind.UPDATED, name, detail=settings)
        self._writer.publish_test_notifications(settings, endpoint.queue)
        return settings

    def capacity_changed(self, name: str) -> None:
        """An UpdateEndpointWeightsAndCapacities was applied: SageMaker sends a TestNotification to the configured
        topics again (reference §3.4), as after CreateEndpoint and UpdateEndpoint."""
        endpoint = self._endpoint(name)
        self._writer.publish_test_notifications(endpoint.settings, endpoint.queue)

    def endpoint_names(self) -> list[str]:
        with self._lock:
            return list(self._endpoints)

    def watch_updates(self, hosting: ModelHosting, interval: float = 1.0) -> None:
        """Carry out UpdateEndpoint calls made on the control plane (updates.py): new model containers from
        ``hosting``, the switch, and the outcome reported to moto. Stopped with the emulator."""
        with self._lock:
            if self._updates is not None:
                return
            finish = report_to_moto(self._aws_endpoint_url, self._control_plane.account(), self.region)
            self._updates = UpdateWatcher(self, self._control_plane, hosting, finish, interval)
            self._updates.start()

    def set_instance_count(self, name: str, count: int) -> None:
        """Scale the endpoint's variant (0 allowed: requests then queue until it scales out again)."""
        if count < 0:
            raise ValueError("the instance count cannot be negative")
        self._endpoint(name).queue.set_instances(count)
        self._emit(EventKind.INSTANCES, name, detail=InstanceCount(count))

    def stats(self, name: str) -> dict[str, int]:
        """Counters of one endpoint. ``backlog`` = queued + in flight (CloudWatch's ApproximateBacklogSize);
        ``failed`` counts every failure, ``expired`` included (like InvocationFailures)."""
        return self._endpoint(name).queue.stats()

    def wait_until_idle(self, name: str, timeout: float) -> bool:
        """Wait until nothing is queued or in progress on the endpoint; False if that did not happen in time."""
        return self._endpoint(name).queue.wait_until_idle(timeout)

    def sweep_expired(self, name: str | None = None, *, ahead_seconds: float = 0.0) -> int:
        """Fail, now and on this thread, every queued request whose RequestTTLSeconds has passed (the background
        sweeper does the same within ``sweep_interval``); return how many. Useful after advancing a fake clock.
        ``ahead_seconds``: judge expiry as if the clock were that much later (fault injection: the requests queued
        now have waited out their TTL; requests that arrive meanwhile are not affected)."""
        with self._lock:
            endpoints = [self._endpoint(name)] if name is not None else list(self._endpoints.values())
        return sum(endpoint.queue.sweep(ahead_seconds) for endpoint in endpoints)

    def _endpoint(self, name: str) -> _Endpoint:
        with self._lock:
            endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise KeyError(f"endpoint {name!r} is not registered")
        return endpoint

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

    # --- requests -------------------------------------------------------------------------------------------------

    def accept(self, params: InvokeParams) -> InvocationRequest:
        """Queue a validated request (HTTP handler thread); the locations returned are where results will go.
        Raises :class:`ApiError` for the answer otherwise (shutting down, unknown endpoint, a hook's answer)."""
        if self._stopping:
            raise ApiError(503, "ServiceUnavailable", "The endpoint emulator is shutting down.")
        self._hooks.before_accept(params)  # may answer for the service (throttling, 503) instead
        endpoint = self._lookup(params.endpoint_name)
        request = new_request(params, endpoint.settings, self._clock())
        if not endpoint.queue.put(request):
            raise ApiError(503, "ServiceUnavailable", "The endpoint emulator is shutting down.")
        self._emit(EventKind.ACCEPTED, request.endpoint_name, request.inference_id, request)
        return request

    def _process(self, request: InvocationRequest, queue: EndpointQueue) -> None:
        outcome = self._invoker.run(request, queue)
        if outcome is not None:
            self._writer.settle(request, outcome, queue)

    def _expire(self, request: InvocationRequest, queue: EndpointQueue) -> None:
        # UNVERIFIED whether SageMaker notifies expiries: the emulator does (failure object + error notification),
        # so the pipeline never loses a request.
        self._writer.settle(request, Failure(expired_reason(request.request_ttl_seconds), cause="expired"), queue)

    def _emit(
        self, kind: EventKind, endpoint_name: str, inference_id: str | None = None, detail: EventDetail = None
    ) -> None:
        self._hooks.on_event(EmulatorEvent(kind, endpoint_name, inference_id, detail))

"""The endpoint emulator's faults (``throttle``, ``endpoint-outage``, ``output-write-refused``, ``ttl-expiry``,
``input-changed``), as its hooks (:class:`~asyncinfer.local.endpoint.hooks.EndpointHooks`).

Standard library only at import time (the endpoint package's ``hooks``, ``events`` and ``protocol`` are): the
package ``asyncinfer.faults`` re-exports this, and the Lambda worker processes import that package.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from asyncinfer.faults.catalogue import ENDPOINT_FAULTS
from asyncinfer.faults.injector import FaultInjector
from asyncinfer.local.endpoint.events import EmulatorEvent, EventKind
from asyncinfer.local.endpoint.hooks import BaseEndpointHooks
from asyncinfer.local.endpoint.protocol import ApiError, InvokeParams

if TYPE_CHECKING:
    from asyncinfer.faults.inputs import InputChanges
    from asyncinfer.local.endpoint.emulator import AsyncEndpointEmulator
    from asyncinfer.local.endpoint.requests import WriteTarget

_UNAVAILABLE = "The service is unavailable. Please try again later."
logger = logging.getLogger(__name__)


class EndpointFaults(BaseEndpointHooks):
    """The fault plan's hooks on one emulator; :meth:`install` registers them (when the plan has endpoint faults)."""

    # Larger than any RequestTTLSeconds InvokeEndpointAsync accepts (21600): every queued request expires.
    TTL_JUMP_SECONDS = 21_601.0

    def __init__(
        self, injector: FaultInjector, emulator: AsyncEndpointEmulator, inputs: InputChanges | None = None
    ) -> None:
        self._faults = injector
        self._emulator = emulator
        self._inputs = inputs  # input-changed: needs the stack's S3 and jobs table
        self._stopping = threading.Event()
        self._episode: threading.Thread | None = None
        self._lock = threading.Lock()

    def install(self) -> None:
        if any(self._faults.on(name) for name in ENDPOINT_FAULTS):
            self._emulator.add_hooks(self)

    def before_accept(self, params: InvokeParams) -> None:
        """InvokeEndpointAsync's answer before the request is looked at: ThrottlingException, or 503 in a burst."""
        faults, name = self._faults, "endpoint-outage"
        if not faults.window_open(name) and faults.fire(name, counted=False):
            faults.open_window(name, faults.uniform(name, 30.0, 45.0))
        if faults.window_open(name):
            faults.count(name)
            raise ApiError(503, "ServiceUnavailable", _UNAVAILABLE)
        name = "throttle"
        if not faults.window_open(name) and faults.fire(name, counted=False):
            if not faults.chance(name, 0.2):
                faults.count(name)
                raise ApiError(400, "ThrottlingException", "Rate exceeded")
            faults.open_window(name, faults.uniform(name, 1.0, 3.0))
        if faults.window_open(name):
            faults.count(name)
            raise ApiError(503, "ServiceUnavailable", _UNAVAILABLE)
        # The request will be queued: change its input now, so that the change always precedes the request's run.
        if self._inputs is not None:
            try:
                self._inputs.maybe_change(params.inference_id)
            except Exception:
                logger.exception("input-changed: could not change the input of %s", params.inference_id)

    def before_write(self, location: str, target: WriteTarget) -> None:
        """The output bucket refuses every write for a while (outputs and failure objects alike)."""
        from botocore.exceptions import ClientError  # not at import time: see the module docstring

        faults, name = self._faults, "output-write-refused"
        if target == "output" and not faults.window_open(name) and faults.fire(name, counted=False):
            faults.open_window(name, faults.uniform(name, 2.0, 5.0))
        if faults.window_open(name):
            faults.count(name)
            error = {"Error": {"Code": "AccessDenied", "Message": f"Access Denied (injected fault) writing {location}"}}
            raise ClientError(error, "PutObject")  # type: ignore[arg-type]

    def on_event(self, event: EmulatorEvent) -> None:
        if event.kind is not EventKind.ACCEPTED:
            return
        with self._lock:  # stop() sets _stopping then joins under this lock: no episode may start after it
            if self._stopping.is_set():
                return
            busy = self._episode is not None and self._episode.is_alive()
            if busy or not self._faults.fire("ttl-expiry", counted=False):
                return
            self._episode = threading.Thread(
                target=self._ttl_episode, args=(event.endpoint_name,), name="fault-ttl-expiry", daemon=True
            )
            self._episode.start()

    def _ttl_episode(self, endpoint_name: str) -> None:
        """No instance for 2-4 s; then what is queued expires, as if its RequestTTLSeconds had passed; scale back."""
        faults, name, emulator = self._faults, "ttl-expiry", self._emulator
        faults.open_window(name, 0.0)  # counts the episode
        instances = emulator.stats(endpoint_name)["instances"]
        emulator.set_instance_count(endpoint_name, 0)
        try:
            self._stopping.wait(faults.uniform(name, 2.0, 4.0))
            expired = emulator.sweep_expired(endpoint_name, ahead_seconds=self.TTL_JUMP_SECONDS)
            faults.count(name, expired)
        finally:
            if not self._stopping.is_set():
                emulator.set_instance_count(endpoint_name, instances)

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            episode = self._episode
        if episode is not None:
            episode.join(5)

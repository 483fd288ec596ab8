"""SageMaker's side of ``UpdateEndpoint``: start the new config's model, switch to it, say how it went.

On AWS, ``UpdateEndpoint`` leaves the endpoint ``Updating`` while SageMaker starts instances of the new config; once
they pass their health check, traffic moves to them (requests still queued are served by the new model, those in
flight finish on the old one), a TestNotification is published, and the endpoint is ``InService``. If the new model
does not start, the endpoint returns to its previous config, ``InService``, with a ``FailureReason``, and
CloudFormation rolls the stack back. The watcher here does the same for the local stack: it polls the control plane
(moto) for endpoints ``Updating``, asks a :class:`ModelHosting` for a container of the new model, and reports the
outcome to moto (moto_patches.finish_endpoint_update), which is all ``DescribeEndpoint`` callers, CloudFormation's
stand-in included, look at.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from asyncinfer.local.endpoint.settings import ControlPlane, EndpointSettings

logger = logging.getLogger(__name__)


class ModelDeployError(Exception):
    """The new config's model cannot be served; the message becomes the endpoint's FailureReason."""


class ModelHosting(Protocol):
    """Where the endpoint's model containers come from (the local stack's model servers)."""

    def prepare(self, endpoint: str, model_data_url: str | None) -> None:
        """Start a container serving ``model_data_url`` and wait until it answers ``/ping``, without sending it any
        invocation yet; raise :class:`ModelDeployError` if it cannot."""

    def activate(self, endpoint: str) -> None:
        """Send the endpoint's new invocations to the prepared container; retire the previous one once its
        invocations in flight are done."""

    def discard(self, endpoint: str) -> None:
        """Drop a prepared container (the update failed)."""


class UpdatableEndpoints(Protocol):
    """What the watcher needs of the emulator."""

    def endpoint_names(self) -> list[str]: ...

    def update_endpoint(self, name: str, settings: EndpointSettings | None = None) -> EndpointSettings: ...


def report_to_moto(aws_endpoint_url: str, account: str, region: str) -> Callable[[str, str | None], None]:
    """How the watcher ends an update in the local stack's moto (moto_server's private path)."""
    from asyncinfer.local.moto_patches import ENDPOINT_UPDATE_PATH

    def finish(endpoint: str, failure_reason: str | None) -> None:
        body = {"Account": account, "Region": region, "EndpointName": endpoint, "FailureReason": failure_reason}
        request = urllib.request.Request(
            aws_endpoint_url + ENDPOINT_UPDATE_PATH,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    return finish


class UpdateWatcher:
    """Polls the endpoints every ``interval`` seconds and carries out the updates it finds (one at a time)."""

    def __init__(
        self,
        endpoints: UpdatableEndpoints,
        control_plane: ControlPlane,
        hosting: ModelHosting,
        finish: Callable[[str, str | None], None],
        interval: float = 1.0,
    ) -> None:
        self._endpoints = endpoints
        self._control_plane = control_plane
        self._hosting = hosting
        self._finish = finish
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="endpoint-updates", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            for name in self._endpoints.endpoint_names():
                try:
                    self.check(name)
                except Exception:  # the control plane may be going away; try again next round
                    logger.warning("could not check endpoint %s for updates", name, exc_info=True)

    def check(self, name: str) -> bool:
        """Carry out the endpoint's update if it is ``Updating``; True if there was one."""
        status, config = self._control_plane.status(name)
        if status != "Updating" or not self._control_plane.update_in_progress(name):
            return False  # in service, or Updating for autoscaling's capacity change: no new model to start
        try:
            settings = self._control_plane.describe(name, pending=True)  # the new config's
        except Exception as exc:  # e.g. the config was deleted meanwhile: the update cannot succeed
            logger.warning("endpoint %s: cannot read the config of its update %s: %s", name, config, exc)
            self._finish(name, f"The endpoint config of the update could not be read: {exc}")
            return True
        config = settings.config_name
        logger.info("endpoint %s: updating to %s (model %s)", name, config, settings.model_data_url)
        try:
            self._hosting.prepare(name, settings.model_data_url)
        except ModelDeployError as exc:
            self._hosting.discard(name)
            logger.warning("endpoint %s: update to %s failed: %s", name, config, exc)
            self._finish(name, f"The model of endpoint config {config} could not be started: {exc}")
            return True
        self._hosting.activate(name)
        self._endpoints.update_endpoint(name, settings)  # the new settings and instance count; a TestNotification
        self._finish(name, None)
        return True

"""The local stack's model containers, one per endpoint at a time, replaced when an update brings a new model.

Implements the endpoint emulator's :class:`~asyncinfer.local.endpoint.updates.ModelHosting`: the first container
listens on the stack's model port; a container for a new ``ModelDataUrl`` starts on a free port and must load its
model before any invocation goes to it (SageMaker's health check); the one it replaces keeps serving the
invocations already sent to it and stops once they are answered (within ``retire_after`` seconds), as an old
instance stops once traffic has moved. A container the user runs (``--container-url``) cannot be given another
model from here: an update to a new model is then refused, loudly, rather than served by the old model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from asyncinfer.local.endpoint.updates import ModelDeployError
from asyncinfer.model.artifact import ModelLoadError
from asyncinfer.model.framework_limits import FrameworkLimits
from asyncinfer.model.server import Container, ModelServer, ModelServerError, start_model_server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

RETIRE_GRACE_SECONDS = 2.0


@dataclass
class _Containers:
    active: ModelServer
    prepared: ModelServer | None = None
    retiring: list[ModelServer] = field(default_factory=list)


class ModelFleet:
    """Model servers keyed by endpoint; :meth:`url` is the emulator's (and chaos proxy's) container address."""

    def __init__(
        self,
        s3: S3Client,
        host: str = "127.0.0.1",
        *,
        latency_seconds: float = 0.0,
        load_timeout: float = 120.0,
        retire_after: float = 3600.0,  # InvocationTimeoutSeconds' maximum
        on_switch: Callable[[str, str], None] | None = None,
        framework_limits: FrameworkLimits | None = None,  # the Model's TorchServe/MMS limits, as provisioned
        container: Container = "xgboost",  # which stand-in serves the artifacts (container_images.py)
        program: str | None = None,  # a script-mode container's entry script (the Model's SAGEMAKER_PROGRAM)
    ) -> None:
        self._container: Container = container
        self._program = program
        self._s3 = s3
        self._host = host
        self._latency = latency_seconds
        self._load_timeout = load_timeout
        self._retire_after = retire_after
        self._on_switch = on_switch  # (endpoint, new URL): e.g. the stack's state file
        self._framework_limits = framework_limits
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._endpoints: dict[str, _Containers] = {}

    def start(self, endpoint: str, model_data_url: str, port: int) -> str:
        """The endpoint's first container, on ``port`` (raises the server's own errors: the stack cannot start)."""
        server = self._server(model_data_url, port)
        with self._lock:
            self._endpoints[endpoint] = _Containers(server)
        return server.url

    def url(self, endpoint: str) -> str:
        with self._lock:
            return self._endpoints[endpoint].active.url

    def model_data_url(self, endpoint: str) -> str:
        with self._lock:
            return self._endpoints[endpoint].active.model_uri

    def prepare(self, endpoint: str, model_data_url: str | None) -> None:
        with self._lock:
            containers = self._endpoints[endpoint]
        if not model_data_url:
            raise ModelDeployError("the model has no ModelDataUrl (the local stack serves model artifacts only)")
        if model_data_url == containers.active.model_uri:
            return  # the same artifact: the running container serves the new config as it is
        try:
            server = self._server(model_data_url, 0)
        except (ModelLoadError, ModelServerError, TimeoutError, OSError) as exc:
            raise ModelDeployError(str(exc) or type(exc).__name__) from exc
        with self._lock:
            containers.prepared = server

    def activate(self, endpoint: str) -> None:
        with self._lock:
            containers = self._endpoints[endpoint]
            new, containers.prepared = containers.prepared, None
            if new is None:
                return
            old, containers.active = containers.active, new
            containers.retiring.append(old)
        logger.info("endpoint %s: now served by %s (%s); %s retires", endpoint, new.url, new.model_uri, old.url)
        if self._on_switch is not None:
            self._on_switch(endpoint, new.url)
        threading.Thread(target=self._retire, args=(containers, old), name="model-retire", daemon=True).start()

    def discard(self, endpoint: str) -> None:
        with self._lock:
            containers = self._endpoints[endpoint]
            prepared, containers.prepared = containers.prepared, None
        if prepared is not None:
            prepared.stop()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            servers = [
                server
                for containers in self._endpoints.values()
                for server in (containers.active, containers.prepared, *containers.retiring)
                if server is not None
            ]
        for server in servers:
            server.stop()

    def _retire(self, containers: _Containers, server: ModelServer) -> None:
        # A request the emulator routed just before the switch may not have arrived yet: a short grace, then wait
        # for what the old container is answering.
        deadline = time.monotonic() + self._retire_after
        self._stopping.wait(RETIRE_GRACE_SECONDS)
        while server.in_flight and time.monotonic() < deadline and not self._stopping.wait(0.2):
            pass
        with self._lock:
            if server in containers.retiring:
                containers.retiring.remove(server)
        server.stop()

    def _server(self, model_data_url: str, port: int) -> ModelServer:
        return start_model_server(
            model_data_url,
            host=self._host,
            port=port,
            s3_client=self._s3,
            latency_seconds=self._latency,
            framework_limits=self._framework_limits,
            timeout=self._load_timeout,
            container=self._container,
            program=self._program,
        )


def demo_artifact(model: str, path: Path) -> Path:
    """Build the demo artifact the stack puts at an empty ModelDataUrl: ``xgboost`` (the default demo model, for
    the XGBoost stand-in) or ``digits`` (the image demo, for the script-mode stand-in)."""
    if model == "digits":
        from asyncinfer.model import digits

        return digits.build_artifact(path)
    from asyncinfer.model.demo import build_model_artifact

    return build_model_artifact(path)


class ExternalContainer:
    """A container the user runs at a fixed URL: it serves the model it was started with, and no other."""

    def __init__(self, url: str, model_data_url: str | None) -> None:
        self.url = url
        self._model_data_url = model_data_url

    def prepare(self, endpoint: str, model_data_url: str | None) -> None:
        if model_data_url != self._model_data_url:  # the model it serves; a config change keeping it is fine
            raise ModelDeployError(
                f"the local stack sends invocations to your container at {self.url}, which it cannot give another "
                f"model; start your container with {model_data_url} and the local stack again (asyncinfer local up "
                "--container-url)"
            )

    def activate(self, endpoint: str) -> None:
        pass

    def discard(self, endpoint: str) -> None:
        pass

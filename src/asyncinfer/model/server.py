"""The model container stand-ins: a server that loads the model and serves the container's HTTP contract
(container_http.py), in-process or from the command line. ``container="xgboost"`` is the SageMaker XGBoost 1.7-1
container (inference.py); ``container="script"`` a framework container's inference script (script_mode.py), run in
a worker process of its own.

Requests are served on threads, so ``/ping`` keeps answering while long invocations run and the emulator can send
``MaxConcurrentInvocationsPerInstance`` requests at once.

In-process use::

    server = start_model_server("s3://bucket/model.tar.gz", port=0)   # returns once /ping would answer 200
    server.url                                                          # "http://127.0.0.1:41234"
    server.stop()

Command line::

    python -m asyncinfer.model.server --model-uri s3://bucket/model.tar.gz --port 8080
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Final, Literal, Self, get_args

from asyncinfer.model.artifact import LoadedModel, ModelLoadError, load_model_dir, materialize_model_dir
from asyncinfer.model.container_http import ContainerHTTPServer, State
from asyncinfer.model.framework_limits import FrameworkLimits
from asyncinfer.model.inference import InvocationResult, invoke, resolve_default_accept
from asyncinfer.model.script_mode import ScriptLoadError, ScriptWorker, program_name

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

#: The container's request-size limit: env MAX_CONTENT_LENGTH, default 6 MiB, never above 20 MiB (413 beyond).
DEFAULT_MAX_CONTENT_LENGTH = 6 * 1024 * 1024
MAX_CONTENT_LENGTH_CAP = 20 * 1024 * 1024
#: How long an invocation that arrives while the model is still loading waits for it before answering 500.
LOAD_WAIT_SECONDS = 120.0

Container = Literal["xgboost", "script"]
CONTAINERS: Final[tuple[str, ...]] = get_args(Container)


class ModelServerError(Exception):
    """The server cannot start (its message is one line, fit for a CLI)."""


class PortInUseError(ModelServerError):
    """The requested host:port is already bound by another process."""


def max_content_length_from_env() -> int:
    """The container's ``_get_max_content_length``: ``MAX_CONTENT_LENGTH`` (bytes), capped at 20 MiB."""
    value = int(os.environ.get("MAX_CONTENT_LENGTH", str(DEFAULT_MAX_CONTENT_LENGTH)))
    return min(value, MAX_CONTENT_LENGTH_CAP)


class ModelServer:
    """The model container: an HTTP server on ``host:port`` serving the model at ``model_uri``.

    ``model_uri``: ``s3://bucket/key`` of a ``model.tar.gz`` (fetched with boto3, so ``AWS_ENDPOINT_URL`` points it
    at a local S3), or a local ``.tar.gz``, directory, or model file. ``port=0`` binds an ephemeral port.
    ``default_accept`` defaults to env ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` or ``text/csv``.
    ``latency_seconds`` delays every successful invocation, to exercise timeouts and backlogs with a fast model.
    ``framework_limits``: the TorchServe/MMS request, response and timeout limits to enforce (framework_limits.py).
    ``container``: which container the server stands in for (see the module docstring).
    ``program``: a script-mode container's entry script (the Model's ``SAGEMAKER_PROGRAM``; default: this process's
    environment, else ``inference.py``).
    """

    def __init__(
        self,
        model_uri: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        default_accept: str | None = None,
        latency_seconds: float = 0.0,
        max_content_length: int | None = None,
        framework_limits: FrameworkLimits | None = None,
        s3_client: S3Client | None = None,
        container: Container = "xgboost",
        program: str | None = None,
    ) -> None:
        self.model_uri = os.fspath(model_uri)
        self.program = program
        self.host = host
        self._requested_port = port
        self.container: Container = container
        # A script's output_fn decides which Accepts it serves; the XGBoost container's list is checked up front.
        self.default_accept = (
            resolve_default_accept(default_accept) if container == "xgboost" else (default_accept or "")
        )
        self.latency_seconds = latency_seconds
        self.max_content_length = (
            max_content_length if max_content_length is not None else max_content_length_from_env()
        )
        self.framework_limits = framework_limits
        self._s3_client = s3_client
        self._state: State = "not-loaded"
        self._load_error: str | None = None
        self._model: LoadedModel | None = None
        self._worker: ScriptWorker | None = None
        self._load_done = threading.Event()
        self._state_lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ContainerHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._load_thread: threading.Thread | None = None
        self._workdir: Path | None = None

    # --- state -------------------------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def in_flight(self) -> int:
        """Invocations being answered now."""
        httpd = self._httpd
        return httpd.in_flight if httpd is not None else 0

    @property
    def load_error(self) -> str | None:
        """Why loading failed (the text /ping and /invocations report), or None."""
        return self._load_error

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one when constructed with ``port=0``)."""
        if self._httpd is None:
            return self._requested_port
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self, *, load: bool = True, wait: bool = True, timeout: float = 60.0) -> str:
        """Bind, serve in a background thread, and (``load=True``) load the model in another one.

        The socket answers at once (``/ping`` says 503 until the model is ready), as a container does while it
        starts. ``wait=True`` returns only when loading has finished and raises ``ModelLoadError`` if it failed.
        Returns :attr:`url`. Raises :class:`PortInUseError` / :class:`ModelServerError` if it cannot bind.
        """
        if self._httpd is not None:
            raise ModelServerError("server already started")
        try:
            self._httpd = ContainerHTTPServer((self.host, self._requested_port), self)
        except OSError as exc:
            where = f"{self.host}:{self._requested_port}"
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(f"cannot listen on {where}: the port is already in use") from exc
            raise ModelServerError(f"cannot listen on {where}: {exc.strerror or exc}") from exc
        self._workdir = Path(tempfile.mkdtemp(prefix="asyncinfer-model-"))
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"model-server-{self.port}",
            daemon=True,
        )
        self._serve_thread.start()
        logger.info("model server listening on %s", self.url)
        if load:
            self._load_thread = threading.Thread(target=self.load_model, name="model-loader", daemon=True)
            self._load_thread.start()
            if wait:
                self.wait_until_ready(timeout)
        return self.url

    def load_model(self) -> None:
        """Fetch and load the model now (blocking). Failures are recorded, not raised: /ping reports them."""
        with self._state_lock:
            if self._state in ("loading", "ready"):
                return
            self._state = "loading"
        workdir = self._workdir or Path(tempfile.mkdtemp(prefix="asyncinfer-model-"))
        self._workdir = workdir
        started = time.monotonic()
        try:
            model_dir = materialize_model_dir(self.model_uri, workdir, s3_client=self._s3_client)
            described = self._load_script(model_dir) if self.container == "script" else self._load_booster(model_dir)
        except (ModelLoadError, ScriptLoadError, TimeoutError) as exc:
            self._load_error = str(exc)
            self._state = "failed"
            logger.error("model load failed: %s", exc)
        else:
            self._state = "ready"
            logger.info("model loaded from %s in %.2fs (%s)", self.model_uri, time.monotonic() - started, described)
        finally:
            self._load_done.set()

    def _load_booster(self, model_dir: Path) -> str:
        self._model = load_model_dir(model_dir)
        return f"{self._model.num_features} feature(s)"

    def _load_script(self, model_dir: Path) -> str:
        limits = self.framework_limits
        worker = ScriptWorker(
            model_dir,
            program=self.program or program_name(),
            default_accept=self.default_accept or None,
            response_timeout=limits.response_timeout_seconds if limits is not None else None,
        )
        worker.start()
        self._worker = worker
        return f"script mode, {worker.program} in a worker process"

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        """Block until the model is loaded; raise ``ModelLoadError`` if loading failed, ``TimeoutError`` if slow."""
        if not self._load_done.wait(timeout):
            raise TimeoutError(f"model not loaded after {timeout:.0f}s")
        if self._state == "failed":
            raise ModelLoadError(self._load_error or "model load failed")

    def get_model(self) -> LoadedModel:
        """The loaded model; an invocation that arrives during loading waits for it, like the container's lazy
        load. Raises ``ModelLoadError`` (→ 500) if loading failed or never finishes.
        """
        if not self._load_done.wait(LOAD_WAIT_SECONDS) or self._model is None:
            raise ModelLoadError(self._load_error or "the model has not been loaded")
        return self._model

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> InvocationResult:
        """Answer one ``POST /invocations`` body (status, body and content type; the HTTP is container_http.py's)."""
        if self.container == "xgboost":
            return invoke(body, content_type, accept, self.get_model, default_accept=self.default_accept)
        if not self._load_done.wait(LOAD_WAIT_SECONDS) or self._worker is None:
            message = f"Unable to load model: {self._load_error or 'the model has not been loaded'}"
            return InvocationResult(500, message.encode(), "text/plain; charset=utf-8")
        reply = self._worker.invoke(body, content_type, accept)
        return InvocationResult(reply.status, reply.body, reply.content_type)

    def simulate_latency(self) -> None:
        # An Event wait rather than sleep: stop() interrupts it. A framework server gives up at its timeout.
        limits = self.framework_limits
        cap = limits.response_timeout_seconds if limits is not None else self.latency_seconds
        self._stopping.wait(min(self.latency_seconds, cap))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close open connections, and remove the unpacked model. Idempotent."""
        self._stopping.set()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            # Remember the port for `url` after the socket is gone.
            self._requested_port = int(httpd.server_address[1])
            httpd.shutdown()
            httpd.cut_connections()
            httpd.server_close()
        for thread in (self._serve_thread, self._load_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
        if self._worker is not None:
            self._worker.stop()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_model_server(
    model_uri: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    wait: bool = True,
    timeout: float = 60.0,
    default_accept: str | None = None,
    latency_seconds: float = 0.0,
    framework_limits: FrameworkLimits | None = None,
    s3_client: S3Client | None = None,
    container: Container = "xgboost",
    program: str | None = None,
) -> ModelServer:
    """Create and start a :class:`ModelServer` (by default on an ephemeral port, returning once the model is
    loaded). On a load failure the server is stopped and ``ModelLoadError`` raised; use ``wait=False`` to keep it
    running with a failing ``/ping`` instead.
    """
    server = ModelServer(
        model_uri,
        host=host,
        port=port,
        default_accept=default_accept,
        latency_seconds=latency_seconds,
        framework_limits=framework_limits,
        s3_client=s3_client,
        container=container,
        program=program,
    )
    try:
        server.start(wait=wait, timeout=timeout)
    except BaseException:
        server.stop()
        raise
    return server


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m asyncinfer.model.server``: serve until SIGINT/SIGTERM. Exit 0, or 1 with a one-line error."""
    parser = argparse.ArgumentParser(
        prog="python -m asyncinfer.model.server",
        description="Local stand-in for the SageMaker XGBoost 1.7-1 container or a framework container's script mode.",
    )
    parser.add_argument("--model-uri", required=True, help="s3://bucket/key of model.tar.gz, or a local path")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")),
        help="port to bind; 0 picks a free one (default $SAGEMAKER_BIND_TO_PORT or 8080)",
    )
    parser.add_argument("--container", choices=CONTAINERS, default="xgboost", help="container to stand in for")
    parser.add_argument("--default-accept", help="Accept used when a request has none (default text/csv)")
    parser.add_argument("--latency", type=float, default=0.0, help="extra seconds per successful invocation")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        server = start_model_server(
            args.model_uri,
            host=args.host,
            port=args.port,
            default_accept=args.default_accept,
            latency_seconds=args.latency,
            container=args.container,
        )
    except (ModelServerError, ModelLoadError, TimeoutError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    stop_requested = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    # SIGTERM is how SageMaker (and docker stop) ends a container. The previous handlers come back afterwards, so
    # calling main() in-process (tests) leaves the caller's Ctrl-C handling alone.
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    print(f"model server listening on {server.url} (model {args.model_uri})", flush=True)
    try:
        stop_requested.wait()
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Script mode: the SageMaker framework containers' inference-script convention, served from a process of its own.

The artifact holds the model files and ``code/inference.py`` (``SAGEMAKER_PROGRAM`` names another script);
``code/requirements.txt`` is reported, not installed. The script's functions are found and called as
sagemaker-inference-toolkit's ``transformer.py`` does (the toolkit of the PyTorch and Hugging Face containers,
followed where the toolkits differ; the scikit-learn container's differences are in docs/local-stack.md):

* ``model_fn(model_dir)`` once, when the worker starts; there is no default (the toolkit's raises
  NotImplementedError, so the model fails to load, /ping fails);
* per request ``transform_fn(model, body, content_type, accept)``, or ``input_fn(body, content_type)``,
  ``predict_fn(data, model)``, ``output_fn(prediction, accept)``, with default_handlers.py's JSON/CSV/NPY
  decoding and encoding for a missing input_fn/output_fn (the toolkit's default predict_fn raises
  NotImplementedError, so it is required too); ``transform_fn`` together with any of the other three refuses to
  load; a function may take a trailing ``context`` argument (None here);
* JSON and CSV bodies reach the script as ``str``, others as ``bytes``; no Accept or ``*/*`` means
  ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` or ``application/json``;
* an exception in the script answers 500 with the body ``"{message}\\n{traceback}"``; an exception carrying an int
  ``status_code`` and a ``message`` (the toolkit's ``BaseInferenceToolkitError``) answers that status instead. The
  traceback also goes to the container log.

The script runs in a worker process (spawned, so it shares nothing with the stack), as the model server's Python
backend worker does; a worker that dies or outlives the response timeout is restarted and the request answered
framework_limits.py's 500 "Worker died.".
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import json
import logging
import multiprocessing
import os
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Final, NamedTuple

from asyncinfer.model import default_handlers

logger = logging.getLogger(__name__)

CODE_DIR: Final = "code"
PROGRAM_ENV: Final = "SAGEMAKER_PROGRAM"
DEFAULT_PROGRAM: Final = "inference.py"
DEFAULT_ACCEPT_ENV: Final = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
REQUIREMENTS_FILE: Final = "requirements.txt"
#: Content type of an error answer (MMS/TorchServe's for a handler-set status: UNVERIFIED against a container).
ERROR_CONTENT_TYPE: Final = "text/plain; charset=utf-8"
WORKER_DIED_BODY: Final = json.dumps({"code": 500, "type": "InternalServerException", "message": "Worker died."})
_HANDLER_NAMES: Final = ("input_fn", "predict_fn", "output_fn")
#: What the stand-in leaves out (the state file's not_emulated, README, docs/local-stack.md).
NOT_EMULATED: Final = (
    "code/requirements.txt is reported, not installed: its packages must be importable locally",
    "the framework itself (torch, transformers) and the PyTorch toolkit's default model_fn (model.pth)",
    "one worker process per container (TorchServe/MMS start one per vCPU); SAGEMAKER_MODEL_SERVER_WORKERS, "
    "SAGEMAKER_MODEL_SERVER_TIMEOUT and the frameworks' other environment variables are ignored",
    "application/x-npz input; pickled NPY input is refused",
)


class ScriptLoadError(Exception):
    """The inference script cannot be imported, is inconsistent, or its model_fn failed (message has the why)."""


class Reply(NamedTuple):
    """One answer to POST /invocations (a plain tuple so that it crosses the worker's pipe cheaply)."""

    status: int
    body: bytes
    content_type: str | None


Handler = Callable[..., object]


@dataclass(frozen=True)
class ScriptHandlers:
    """The functions the script defines, with the toolkit's defaults for the missing ones."""

    model_fn: Handler
    transform_fn: Handler | None
    input_fn: Handler
    predict_fn: Handler
    output_fn: Handler


def program_name(environment: dict[str, str] | None = None) -> str:
    env = os.environ if environment is None else environment
    return env.get(PROGRAM_ENV) or DEFAULT_PROGRAM


def requirements(model_dir: Path) -> list[str]:
    """The packages ``code/requirements.txt`` lists (the real container pip-installs them; here they are not)."""
    path = model_dir / CODE_DIR / REQUIREMENTS_FILE
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    return [line for line in lines if line]


def _missing_model_fn(model_dir: str) -> object:
    raise NotImplementedError("Please provide a model_fn implementation.")


def _missing_predict_fn(data: object, model: object) -> object:
    raise NotImplementedError("Please provide a predict_fn implementation.")


def _default_output_fn(prediction: object, accept: str) -> tuple[str | bytes, str]:
    return default_handlers.encode(prediction, accept), accept


def import_script(model_dir: Path, program: str = DEFAULT_PROGRAM) -> ModuleType:
    """Import ``model_dir/code/<program>`` with its directory on sys.path (it may import its sibling modules)."""
    code_dir = model_dir / CODE_DIR
    script = code_dir / program
    if not script.is_file():
        raise ScriptLoadError(f"no {CODE_DIR}/{program} in the model artifact (script mode needs one)")
    sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location(script.stem, script)
    if spec is None or spec.loader is None:
        raise ScriptLoadError(f"{CODE_DIR}/{program} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[script.stem] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        logger.error("importing %s failed:\n%s", script, traceback.format_exc())
        raise ScriptLoadError(f"importing {CODE_DIR}/{program} failed: {type(exc).__name__}: {exc}") from exc
    return module


def resolve_handlers(module: ModuleType) -> ScriptHandlers:
    """The toolkit's ``_validate_user_module_and_set_functions``."""
    found = {name: getattr(module, name, None) for name in ("transform_fn", *_HANDLER_NAMES)}
    if found["transform_fn"] is not None and any(found[name] is not None for name in _HANDLER_NAMES):
        raise ScriptLoadError(
            "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, and/or output_fn "
            "implementation"
        )
    return ScriptHandlers(
        model_fn=getattr(module, "model_fn", _missing_model_fn),
        transform_fn=found["transform_fn"],
        input_fn=found["input_fn"] or default_handlers.decode,
        predict_fn=found["predict_fn"] or _missing_predict_fn,
        output_fn=found["output_fn"] or _default_output_fn,
    )


def call_handler(func: Handler, *args: object) -> object:
    """The toolkit's ``_run_handler_function``: a function may take one more argument, the context (None here)."""
    count = len(inspect.signature(func).parameters)
    if count == len(args):
        return func(*args)
    if count == len(args) + 1:
        return func(*args, None)
    name = getattr(func, "__name__", "handler")
    raise TypeError(f"{name} takes {count} arguments but {len(args)} were given.")


def _body_bytes(response: object) -> bytes:
    # What the model server does with a handler's return value: text is UTF-8, bytes pass, anything else is JSON.
    if isinstance(response, str):
        return response.encode("utf-8")
    if isinstance(response, bytes | bytearray | memoryview):
        return bytes(response)
    return json.dumps(response).encode("utf-8")


@dataclass
class LoadedScript:
    """The script's handlers and the model its model_fn returned."""

    handlers: ScriptHandlers
    model: object

    def transform(self, body: bytes, content_type: str | None, accept: str | None, default_accept: str) -> Reply:
        """One request, as the toolkit's ``Transformer.transform``."""
        try:
            wanted = accept if accept and accept != default_handlers.ANY else default_accept
            data: str | bytes = body.decode("utf-8") if content_type in default_handlers.UTF8_TYPES else body
            handlers = self.handlers
            if handlers.transform_fn is not None:
                result = call_handler(handlers.transform_fn, self.model, data, content_type, wanted)
            else:
                decoded = call_handler(handlers.input_fn, data, content_type)
                prediction = call_handler(handlers.predict_fn, decoded, self.model)
                result = call_handler(handlers.output_fn, prediction, wanted)
            response, response_type = result if isinstance(result, tuple) else (result, wanted)
            return Reply(200, _body_bytes(response), str(response_type))
        except Exception as exc:
            trace = traceback.format_exc()
            logger.error("the inference script failed:\n%s", trace)
            status, message = _error_status(exc)
            return Reply(status, f"{message}\n{trace}".encode(), ERROR_CONTENT_TYPE)


def _error_status(exc: Exception) -> tuple[int, str]:
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "message", None)
    if isinstance(status, int) and 400 <= status <= 599 and isinstance(message, str):
        return status, message
    return 500, str(exc)


def load_script(model_dir: Path, program: str = DEFAULT_PROGRAM) -> LoadedScript:
    """Import the script and run its model_fn (in this process: the worker calls it)."""
    handlers = resolve_handlers(import_script(model_dir, program))
    try:
        model = call_handler(handlers.model_fn, str(model_dir))
    except Exception as exc:
        logger.error("model_fn failed:\n%s", traceback.format_exc())
        raise ScriptLoadError(f"model_fn failed: {type(exc).__name__}: {exc}") from exc
    return LoadedScript(handlers, model)


# --- the worker process ----------------------------------------------------------------------------------------


def _worker_main(conn: Connection, model_dir: str, program: str, default_accept: str, log_level: int) -> None:
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s model-worker: %(message)s")
    try:
        loaded = load_script(Path(model_dir), program)
    except ScriptLoadError as exc:
        conn.send(("failed", str(exc)))
        return
    conn.send(("ready", ""))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        body, content_type, accept = request
        conn.send(tuple(loaded.transform(body, content_type, accept, default_accept)))


class ScriptWorker:
    """The parent's side of one worker process: start it (model_fn runs there), send it requests one at a time.

    ``response_timeout``: seconds a request may take before the worker is killed (the framework's timeout); None
    waits as long as the request does. A dead or killed worker is started again for the next request.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        program: str = DEFAULT_PROGRAM,
        default_accept: str | None = None,
        response_timeout: float | None = None,
        load_timeout: float = 120.0,
    ) -> None:
        self.model_dir = model_dir
        self.program = program
        self.default_accept = default_accept or os.environ.get(DEFAULT_ACCEPT_ENV) or default_handlers.DEFAULT_ACCEPT
        self.response_timeout = response_timeout
        self.load_timeout = load_timeout
        self.requirements = requirements(model_dir)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None

    def start(self) -> None:
        """Spawn the worker and wait for model_fn; raise ScriptLoadError (or TimeoutError) if it fails."""
        if self.requirements:
            logger.warning(
                "%s/%s lists %s: not installed by the local stand-in (the framework container pip-installs them "
                "at start-up); they must already be importable here",
                CODE_DIR,
                REQUIREMENTS_FILE,
                ", ".join(self.requirements),
            )
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=_worker_main,
            args=(child, str(self.model_dir), self.program, self.default_accept, logging.getLogger().level),
            name="model-worker",
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        if not parent.poll(self.load_timeout):
            self._kill()
            raise TimeoutError(f"model_fn did not return within {self.load_timeout:.0f}s")
        try:
            state, message = parent.recv()
        except (EOFError, OSError):
            self._kill()
            raise ScriptLoadError(f"the model worker died while loading (exit code {process.exitcode})") from None
        if state != "ready":
            self._kill()
            raise ScriptLoadError(message)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> Reply:
        with self._lock:
            if self._stopped.is_set():
                return _worker_died()
            if self._process is None or not self._process.is_alive():
                logger.warning("model worker is not running: starting it again")
                try:
                    self.start()
                except (ScriptLoadError, TimeoutError) as exc:
                    logger.error("model worker restart failed: %s", exc)
                    return _worker_died()
            conn = self._conn
            assert conn is not None
            try:
                conn.send((body, content_type, accept))
                if not self._wait(conn):
                    logger.error("the inference script did not answer within %ss: worker killed", self.response_timeout)
                    self._kill()
                    return _worker_died()
                status, reply_body, reply_type = conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                logger.error("the model worker died during a request")
                self._kill()
                return _worker_died()
            return Reply(status, reply_body, reply_type)

    def _wait(self, conn: Connection) -> bool:
        waited = 0.0
        while not conn.poll(0.2):
            waited += 0.2
            if self._stopped.is_set() or (self.response_timeout is not None and waited >= self.response_timeout):
                return False
        return True

    def _kill(self) -> None:
        process, self._process = self._process, None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if process is not None and process.is_alive():
            process.kill()
            process.join(5)

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            conn = self._conn
            if conn is not None:
                with contextlib.suppress(OSError):  # the worker may be gone already
                    conn.send(None)
            if self._process is not None:
                self._process.join(2)
            self._kill()


def _worker_died() -> Reply:
    return Reply(500, WORKER_DIED_BODY.encode(), "application/json")

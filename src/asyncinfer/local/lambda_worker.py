"""One Lambda execution environment: imports a handler once, then runs the invocations its parent sends.

Run as ``python -m asyncinfer.local.lambda_worker CODE_DIR HANDLER [LAYER_DIR ...]`` with the function's
environment. The protocol is JSON lines on the process's original stdout; the handler's own output (Powertools
writes JSON logs to stdout) is moved to stderr first, so nothing a handler prints can corrupt the protocol.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any, TypedDict


class Request(TypedDict):
    """One invocation, as the parent (lambda_runtime.Worker) sends it: a JSON line on stdin."""

    id: str
    event: Any  # whatever JSON the function is invoked with
    deadline_ms: int
    request_id: str
    function_arn: str


class Reply(TypedDict, total=False):
    """A JSON line on the protocol: ``ready`` once, ``injected`` before a fault kills the process, else an answer."""

    ready: bool
    injected: str
    id: str
    ok: bool
    result: object
    errorType: str
    errorMessage: str
    stackTrace: list[str]


class Context:
    """The attributes and method Lambda's context object offers, for this invocation."""

    def __init__(self, request: Request) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = "$LATEST"
        self.invoked_function_arn = request["function_arn"]
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request["request_id"]
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline_ms = int(request["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def main(argv: list[str]) -> int:
    code_dir, handler_spec, *layer_dirs = argv
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # the handler's stdout now goes where stderr goes
    # Lambda puts the function's code first, then each layer's python/ (here: the layer's source folder).
    sys.path[:0] = [code_dir, *layer_dirs]
    if os.environ.get("ASYNCINFER_FAULTS"):
        # Fault injection (local stack only): botocore hooks that kill this process at chosen points. Installed
        # before the handler is imported, on the default session its clients are made from.
        from asyncinfer.faults import install_worker_faults

        install_worker_faults(lambda name: protocol.write(json.dumps({"injected": name}) + "\n"))
    module_name, function_name = handler_spec.rsplit(".", 1)
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # an init error fails every invocation, as Lambda reports Runtime.ImportModuleError
        init_error: Reply = {"errorType": "Runtime.ImportModuleError", "errorMessage": f"{type(exc).__name__}: {exc}"}
        handler = None
    ready: Reply = {"ready": True}
    protocol.write(json.dumps(ready) + "\n")
    for line in sys.stdin:
        request: Request = json.loads(line)
        if handler is None:
            reply: Reply = {"id": request["id"], "ok": False, **init_error}
        else:
            try:
                result = handler(request["event"], Context(request))
                reply = {"id": request["id"], "ok": True, "result": result}
            except Exception as exc:
                reply = {
                    "id": request["id"],
                    "ok": False,
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_exception(exc)[-5:],
                }
        protocol.write(json.dumps(reply, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

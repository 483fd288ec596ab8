"""One Lambda execution environment, seen from the local Lambda runtime: a worker process (lambda_worker.py) that
imported the handler, and the JSON-lines protocol that hands it one invocation at a time."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, TypeAlias

from asyncinfer.local.lambda_wiring import FunctionSpec
from asyncinfer.local.lambda_worker import Reply, Request

#: What a function receives and returns: JSON whose shape depends on the trigger or the caller.
Payload: TypeAlias = Any


@dataclass(frozen=True)
class InvocationResult:
    ok: bool
    result: Payload = None
    error_type: str | None = None
    error_message: str | None = None
    stack_trace: list[str] = field(default_factory=list)


class Worker:
    """One execution environment: a process that imported the handler and runs one invocation at a time.

    ``on_injected(name)`` hears of a fault the process injected into itself (it says so just before it dies).
    """

    def __init__(
        self,
        spec: FunctionSpec,
        env: Mapping[str, str],
        log: IO[str],
        on_injected: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self._on_injected = on_injected
        command = [
            sys.executable,
            "-m",
            "asyncinfer.local.lambda_worker",
            spec.code_dir,
            spec.handler,
            *spec.layer_dirs,
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=dict(env), text=True, bufsize=1
        )
        self._replies: queue.Queue[Reply | None] = queue.Queue()
        threading.Thread(target=self._read, name=f"{spec.logical_id}-reader", daemon=True).start()
        ready = self._replies.get(timeout=60)
        if not ready or not ready.get("ready"):
            raise RuntimeError(f"{spec.logical_id}: the runtime did not start (see its log)")

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._replies.put(json.loads(line))
        self._replies.put(None)

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def invoke(self, event: Payload, request_id: str, timeout_s: float) -> InvocationResult:
        deadline_ms = int((time.time() + timeout_s) * 1000)
        request: Request = {
            "id": request_id,
            "event": event,
            "deadline_ms": deadline_ms,
            "request_id": request_id,
            "function_arn": self.spec.arn,
        }
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            reply = self._replies.get(timeout=timeout_s)
            while reply is not None and "injected" in reply:  # a fault it injected; its end follows
                if self._on_injected is not None:
                    self._on_injected(str(reply["injected"]))
                reply = self._replies.get(timeout=max(0.0, deadline_ms / 1000 - time.time()))
        except queue.Empty:
            self.kill()
            return InvocationResult(
                False, error_type="Sandbox.Timedout", error_message=f"Task timed out after {timeout_s:.2f} seconds"
            )
        except (BrokenPipeError, OSError):
            reply = None
        if reply is None:
            self.kill()  # reap it now, so that it is never taken for a live one and handed the next invocation
            return InvocationResult(
                False,
                error_type="Runtime.ExitError",
                error_message=f"RequestId: {request_id} Error: Runtime exited unexpectedly",
            )
        if reply.get("ok"):
            return InvocationResult(True, result=reply.get("result"))
        return InvocationResult(
            False,
            error_type=reply.get("errorType"),
            error_message=reply.get("errorMessage"),
            stack_trace=reply.get("stackTrace", []),
        )

    def kill(self) -> None:
        if self.alive:
            self._process.kill()
        self._process.wait()

    def stop(self) -> None:
        if self.alive and self._process.stdin is not None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

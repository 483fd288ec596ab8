"""The local stack's side of moto's own process (:mod:`asyncinfer.local.moto_server`): start it, know when it
listens, notice when it dies, stop it. Imports nothing of moto: the stack process no longer loads it at all."""

from __future__ import annotations

import json
import logging
import os
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib import request

logger = logging.getLogger(__name__)

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class MotoProcessError(RuntimeError):
    """moto's process did not come up; the message says why and where its log is."""


class MotoProcess:
    """One moto server process. ``on_exit(message)`` is called (from a watcher thread) if it ends on its own."""

    def __init__(self, host: str, port: int, log_path: Path, on_exit: Callable[[str], None] | None = None) -> None:
        self.host, self.port, self.log_path = host, port, log_path
        self._on_exit = on_exit
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process is not None else None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 60.0) -> str:
        """Start the process and return its URL once it listens (MotoProcessError if it does not in time)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:  # one stack, one log
            self._process = subprocess.Popen(
                [sys.executable, "-m", "asyncinfer.local.moto_server", "--host", self.host, "--port", str(self.port)],
                stdin=subprocess.PIPE,  # its end of the pipe closes when this process ends: moto then exits too
                stdout=subprocess.PIPE,
                stderr=log,
            )
        line = self._ready_line(timeout)
        if not line.startswith("READY"):
            self.stop()
            raise MotoProcessError(
                f"moto did not start within {timeout:g} s ({line or 'no answer'}); see {self.log_path}"
            )
        self._watcher = threading.Thread(target=self._watch, name="moto-process-watch", daemon=True)
        self._watcher.start()
        return self.url

    def _ready_line(self, timeout: float) -> str:
        process = self._process
        assert process is not None
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(max(0.0, deadline - time.monotonic())):
                    return process.stdout.readline().decode("utf-8", "replace").strip() or (
                        f"exited with code {process.wait()}"
                    )
        return ""

    def _watch(self) -> None:
        process = self._process
        assert process is not None
        code = process.wait()
        if self._stopping.is_set():
            return
        message = f"the AWS APIs (moto, pid {process.pid}) exited with code {code}; see {self.log_path}"
        logger.error("%s", message)
        if self._on_exit is not None:
            self._on_exit(message)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the process has used so far (Linux; 0.0 where /proc is not there)."""
        if self.pid is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def stop(self, grace_seconds: float = 5.0) -> None:
        """Close its standard input (it exits at once), then terminate or kill it if it lingers. Idempotent."""
        self._stopping.set()
        process = self._process
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._watcher is not None:
            self._watcher.join(1)


def record_emulated(aws_endpoint_url: str, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Tell moto (in its own process, at ``aws_endpoint_url``) what the emulated services did; returns its answer."""
    from asyncinfer.local.moto_patches import EMULATED_PATH  # imports no moto at module level

    body = json.dumps(payload).encode()
    call = request.Request(
        aws_endpoint_url.rstrip("/") + EMULATED_PATH, body, {"Content-Type": "application/json"}, method="POST"
    )
    with request.urlopen(call, timeout=timeout) as answer:
        loaded: dict[str, Any] = json.loads(answer.read())
    return loaded

"""The local stack as an operating-system process: started detached, found by its pid, stopped by a signal.

The stack's state file carries the pid of the process that serves it. ``asyncinfer local up --detach`` starts that
process in a session of its own and returns once the state file names it; ``asyncinfer local down`` sends it
SIGTERM, which the serving process hears through :func:`stop_requested`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from asyncinfer.local.stack import STATE_FILE, StackError, read_state

LOG_FILE = "local.log"
START_TIMEOUT_S = 180
STOP_TIMEOUT_S = 60
POLL_INTERVAL_S = 0.2


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (0 and below: none)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def clear_stale_state(state_dir: Path) -> None:
    """Before a start: an error if the stack of the state file is still up; a state file left by one that is not
    goes."""
    state_file = state_dir / STATE_FILE
    if not state_file.exists():
        return
    state = read_state(state_dir)
    if alive(int(state.get("pid", 0))):
        raise StackError(f"a local stack is already up (pid {state['pid']}); stop it with: asyncinfer local down")
    state_file.unlink()


def stop_requested() -> threading.Event:
    """An event that SIGINT (Ctrl-C) or SIGTERM (``local down``) sets: how a serving stack learns to stop."""
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    return stopping


@dataclass(frozen=True)
class Detached:
    pid: int
    log_path: Path


def start_detached(command: Sequence[str], state_dir: Path, env: Mapping[str, str]) -> Detached:
    """Run ``command`` (a foreground ``local up``) in a new session with its output in the log, and return once
    the state file names it. If it exits first, the StackError carries the last line it logged."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / LOG_FILE
    with log_path.open("w", encoding="utf-8") as log:
        child = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(env),
        )
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        if child.poll() is not None:
            lines = [line for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
            raise StackError(lines[-1] if lines else f"the local stack exited with status {child.returncode}")
        if (state_dir / STATE_FILE).exists() and read_state(state_dir).get("pid") == child.pid:
            return Detached(child.pid, log_path)
        time.sleep(POLL_INTERVAL_S)
    child.terminate()
    raise StackError(f"the local stack did not come up within {START_TIMEOUT_S} s; see {log_path}")


def stop(state_dir: Path) -> None:
    """Stop the process serving the stack: SIGTERM, then SIGKILL if it is still there after STOP_TIMEOUT_S.

    A state file whose process is gone is removed, and the StackError says so.
    """
    state = read_state(state_dir)
    pid = int(state.get("pid", 0))
    if not alive(pid):
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        raise StackError("the local stack is not running (removed its stale state file)")
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + STOP_TIMEOUT_S
    while alive(pid) and time.time() < deadline:
        time.sleep(POLL_INTERVAL_S)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)

"""The local stack's process bookkeeping: which pid is alive, and what a stale state file becomes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asyncinfer.local import stack_process
from asyncinfer.local.stack import STATE_FILE, StackError


def _exited_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_alive_knows_this_process_and_not_an_exited_one() -> None:
    assert stack_process.alive(os.getpid())
    assert not stack_process.alive(_exited_pid())
    assert not stack_process.alive(0)


def test_a_stale_state_file_is_removed_before_a_start(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps({"pid": _exited_pid()}))
    stack_process.clear_stale_state(tmp_path)
    assert not (tmp_path / STATE_FILE).exists()
    stack_process.clear_stale_state(tmp_path)  # no state file: nothing to do


def test_a_live_stack_is_not_started_twice(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps({"pid": os.getpid()}))
    with pytest.raises(StackError, match="a local stack is already up"):
        stack_process.clear_stale_state(tmp_path)
    assert (tmp_path / STATE_FILE).exists()


def test_stopping_a_stack_that_is_gone_removes_its_state_file(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps({"pid": _exited_pid()}))
    with pytest.raises(StackError, match="not running"):
        stack_process.stop(tmp_path)
    assert not (tmp_path / STATE_FILE).exists()

"""The scaled clock: emulated time runs N times faster from its anchor; waits shrink by N."""

from __future__ import annotations

import threading
import time

import pytest

from asyncinfer.local.time_scale import ScaledClock, emulated_now


def test_emulated_time_runs_faster_from_the_anchor() -> None:
    real = [1000.0]
    clock = ScaledClock(30.0, real=lambda: real[0])
    assert clock.anchor == 1000.0
    real[0] = 1002.0
    assert clock.now() == 1060.0  # two real seconds are one emulated minute
    assert emulated_now(1000.0, 30.0, 1002.0) == clock.now()
    assert clock.real_seconds(60) == 2.0


def test_waits_are_scaled() -> None:
    clock = ScaledClock(600.0)
    started = time.monotonic()
    assert not clock.wait(threading.Event(), 30)  # 30 emulated seconds: 50 ms
    assert time.monotonic() - started < 1.0


def test_a_scale_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0)

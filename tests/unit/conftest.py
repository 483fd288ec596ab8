"""Unit-test fixtures: the moto world of tests/moto_world.py, per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import moto_world
from tests.moto_world import World


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep botocore's retries (their count is what a test checks) but not their sleeping."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def world(template: dict[str, Any]) -> Iterator[World]:
    with moto_world.world(template) as made:
        yield made

"""Sets of checks: a request naming one resource twice (two entries on the same bus) is checked once."""

from __future__ import annotations

from collections.abc import Iterable

from asyncinfer.local.iam.checks import Check


def unique(found: Iterable[Check]) -> tuple[Check, ...]:
    """The checks in first-seen order without repeats (a Check holds a dict, so it is compared, not hashed)."""
    kept: list[Check] = []
    for check in found:
        if check not in kept:
            kept.append(check)
    return tuple(kept)

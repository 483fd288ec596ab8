"""Paths, statistics and the environment shared by the benchmark sections."""

from __future__ import annotations

import math
import os
import statistics
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"
FUNCTIONS = {
    "submitter": ROOT / "functions" / "submitter",
    "success_handler": ROOT / "functions" / "success_handler",
    "error_handler": ROOT / "functions" / "error_handler",
}
# The logical IDs of the functions in template.yaml, by handler module.
LOGICAL_IDS = {
    "submitter": "SubmitterFunction",
    "success_handler": "SuccessHandlerFunction",
    "error_handler": "ErrorHandlerFunction",
}
PYTHON = sys.executable
#: A section of the benchmark report (or the whole report): figures as they go into the JSON file.
Section: TypeAlias = dict[str, Any]


def ensure_paths() -> None:
    """The layer and the functions importable in this process (as pytest's ``pythonpath`` makes them)."""
    for path in (LAYER, *FUNCTIONS.values(), ROOT / "src", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (so the output can be pasted into the README as it is)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"

    rule = "| " + " | ".join("-" * width for width in widths) + " |"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


@contextmanager
def quiet() -> Iterator[None]:
    """Send file descriptor 1 (where Powertools writes logs and EMF) to /dev/null."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)

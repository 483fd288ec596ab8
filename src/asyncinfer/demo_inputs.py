"""Input files for the demo and the end-to-end tests: mostly valid CSV, some the pipeline must reject."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asyncinfer.model import demo

# Rejections and who rejects them: the model container (its status) or the submitter (before the endpoint).
REJECTED = ("unparsable-csv", "too-many-features", "ragged-csv", "empty-file")


@dataclass(frozen=True)
class DemoFile:
    name: str
    body: bytes
    expected_status: str  # COMPLETED | FAILED
    why: str = ""


# Rows of a "large" valid file: over the 128,000 bytes InvokeEndpointAsync takes inline (about 120 bytes a row), so
# the submitter stages it (a copy of the exact version) instead of sending it in the request.
LARGE_ROWS = 1_200


def demo_files(n: int, seed: int = 0, reject_every: int = 10, large_every: int = 0) -> list[DemoFile]:
    """``n`` files; every ``reject_every``-th one is rejected, cycling through :data:`REJECTED`; with
    ``large_every``, every ``large_every``-th one is a valid file of :data:`LARGE_ROWS` rows."""
    catalogue = {r.name: r for r in demo.rejected_requests(seed)}
    files: list[DemoFile] = []
    for index in range(n):
        if reject_every and index % reject_every == reject_every - 1:
            kind = REJECTED[(index // reject_every) % len(REJECTED)]
            if kind == "empty-file":
                files.append(DemoFile(f"rejected/{index:05d} empty.csv", b"", "FAILED", "empty object"))
            else:
                rejected = catalogue[kind]
                files.append(DemoFile(f"rejected/{index:05d} {kind}.csv", rejected.body, "FAILED", rejected.why))
        elif large_every and index % large_every == large_every - 1:
            name = f"large/{index:05d} gros échantillon.csv"
            files.append(DemoFile(name, demo.make_csv_payload(LARGE_ROWS, seed=seed + index), "COMPLETED"))
        else:
            rows = 1 + index % 5
            # Spaces and non-ASCII in keys, as users name files.
            name = f"valid/{index:05d} échantillon.csv" if index % 3 == 0 else f"valid/{index:05d}-sample.csv"
            files.append(DemoFile(name, demo.make_csv_payload(rows, seed=seed + index), "COMPLETED"))
    return files


def write(files: list[DemoFile], folder: Path) -> list[Path]:
    paths = []
    for file in files:
        path = folder / file.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.body)
        paths.append(path)
    return paths

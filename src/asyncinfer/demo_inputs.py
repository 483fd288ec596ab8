"""Input files for the demo and the end-to-end tests: mostly valid CSV, some the pipeline must reject; for the
image demo (``--model digits``), PNGs of held-out digits and a few the inference script must refuse."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from async_pipeline.user_metadata import CUSTOM_ATTRIBUTES_KEY, MAX_CUSTOM_ATTRIBUTES

from asyncinfer.model import demo

# Rejections and who rejects them: the model container (its status) or the submitter (before the endpoint).
REJECTED = ("unparsable-csv", "too-many-features", "ragged-csv", "empty-file", "bad-custom-attributes")


@dataclass(frozen=True)
class DemoFile:
    name: str
    body: bytes
    expected_status: str  # COMPLETED | FAILED
    why: str = ""
    # Uploaded as x-amz-meta-*: every result event must carry it back; custom-attributes reaches the model.
    metadata: dict[str, str] = field(default_factory=dict)


# Rows of a "large" valid file: over the 128,000 bytes InvokeEndpointAsync takes inline (about 120 bytes a row), so
# the submitter stages it (a copy of the exact version) instead of sending it in the request.
LARGE_ROWS = 1_200


def demo_files(n: int, seed: int = 0, reject_every: int = 10, large_every: int = 0) -> list[DemoFile]:
    """``n`` files; every ``reject_every``-th one is rejected, cycling through :data:`REJECTED`; with
    ``large_every``, every ``large_every``-th one is a valid file of :data:`LARGE_ROWS` rows."""
    catalogue = {r.name: r for r in demo.rejected_requests(seed)}
    files: list[DemoFile] = []
    for index in range(n):
        metadata = {"batch": f"demo-{seed}", CUSTOM_ATTRIBUTES_KEY: f"file={index:05d}"}
        if reject_every and index % reject_every == reject_every - 1:
            kind = REJECTED[(index // reject_every) % len(REJECTED)]
            name = f"rejected/{index:05d} {kind}.csv"
            if kind == "empty-file":
                files.append(DemoFile(f"rejected/{index:05d} empty.csv", b"", "FAILED", "empty object", metadata))
            elif kind == "bad-custom-attributes":
                # A valid file whose custom-attributes CustomAttributes cannot take: refused before the endpoint.
                too_long = {**metadata, CUSTOM_ATTRIBUTES_KEY: "x" * (MAX_CUSTOM_ATTRIBUTES + 1)}
                body = demo.make_csv_payload(1, seed=seed + index)
                files.append(DemoFile(name, body, "FAILED", "custom-attributes over 1,024 characters", too_long))
            else:
                rejected = catalogue[kind]
                files.append(DemoFile(name, rejected.body, "FAILED", rejected.why, metadata))
        elif large_every and index % large_every == large_every - 1:
            name = f"large/{index:05d} gros échantillon.csv"
            body = demo.make_csv_payload(LARGE_ROWS, seed=seed + index)
            files.append(DemoFile(name, body, "COMPLETED", metadata=metadata))
        else:
            rows = 1 + index % 5
            # Spaces and non-ASCII in keys, as users name files.
            name = f"valid/{index:05d} échantillon.csv" if index % 3 == 0 else f"valid/{index:05d}-sample.csv"
            files.append(DemoFile(name, demo.make_csv_payload(rows, seed=seed + index), "COMPLETED", metadata=metadata))
    return files


def write(files: list[DemoFile], folder: Path) -> list[Path]:
    paths = []
    for file in files:
        path = folder / file.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.body)
        paths.append(path)
    return paths


#: Metadata key of an image demo file: the digit drawn, to compare with the prediction in the results table.
EXPECTED_DIGIT_KEY = "expected-digit"


def digit_files(n: int, reject_every: int = 10) -> list[DemoFile]:
    """``n`` files for the image demo: PNGs of digits the model was not trained on; every ``reject_every``-th one
    is a ``.png`` that is not an image (the script's input_fn raises: the container answers 500) or is empty."""
    from asyncinfer.model import digits

    files: list[DemoFile] = []
    for index, (digit, png) in enumerate(digits.held_out_pngs(n)):
        if reject_every and index % reject_every == reject_every - 1:
            if (index // reject_every) % 2 == 0:
                body, why = b"this is not a PNG image\n", "not a PNG: the script's input_fn refuses it"
            else:
                body, why = b"", "empty object"
            files.append(DemoFile(f"rejected/{index:05d}.png", body, "FAILED", why))
        else:
            metadata = {EXPECTED_DIGIT_KEY: str(digit)}
            files.append(DemoFile(f"digits/{index:05d}-drawn-{digit}.png", png, "COMPLETED", metadata=metadata))
    return files

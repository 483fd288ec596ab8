"""Prove that the artifact predicts the same in the real container's xgboost (1.7.6) as in the local server.

The SageMaker XGBoost 1.7-1 image runs xgboost 1.7.6. This script loads the artifact with xgboost 1.7.6 in a
separate interpreter (its own venv), the way the container does (``Booster.load_model`` on the extension-less
``xgboost-model``, CSV parsed with the container's rules, ``predict(ntree_limit=..., validate_features=False)``),
predicts the same rows that it sends to the local server, and compares the two within ``--tolerance``.

    python -m asyncinfer.model.crosscheck --python /path/to/venv-with-xgboost-1.7.6/bin/python
    python -m asyncinfer.model.crosscheck --create-venv /tmp/xgb176      # builds that venv first (uv, PyPI)

``--without-base-score`` builds the demo model with xgboost's default ``base_score`` instead, to show the mismatch
that the explicit ``base_score=0.5`` avoids (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, cast

from asyncinfer.model import demo
from asyncinfer.model.server import start_model_server

#: xgboost in the SageMaker XGBoost 1.7-1 image.
REFERENCE_XGBOOST_VERSION = "1.7.6"
#: What the reference venv gets. numpy<2 and an older scipy: xgboost 1.7.6 predates numpy 2 (the image has numpy 1).
REFERENCE_REQUIREMENTS = (f"xgboost=={REFERENCE_XGBOOST_VERSION}", "numpy<2", "scipy<1.14")
#: Python versions that have wheels for all of REFERENCE_REQUIREMENTS (numpy 1.26 stops at 3.12).
REFERENCE_PYTHONS = ("3.12", "3.11", "3.10", "3.9")
DEFAULT_TOLERANCE = 1e-6
_DESCRIPTION = "Compare the local model server's predictions with xgboost 1.7.6 (the SageMaker 1.7-1 image's)."

# Runs inside the reference interpreter (xgboost 1.7.6, numpy 1.x), so it is plain Python with no project imports.
# It mirrors the container: the model file is loaded by path with no extension, the CSV is parsed as
# sagemaker_xgboost_container.encoder.csv_to_dmatrix does, and predict uses the container's arguments.
_REFERENCE_SCRIPT = r"""
import csv, json, os, sys, tarfile, tempfile
import numpy as np
import xgboost as xgb

artifact, payload_path = sys.argv[1], sys.argv[2]
model_dir = tempfile.mkdtemp()
with tarfile.open(artifact, "r:gz") as tar:
    members = tar.getnames()
    tar.extractall(model_dir, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
booster = xgb.Booster()
booster.load_model(os.path.join(model_dir, "xgboost-model"))
booster.set_param("nthread", 1)

text = open(payload_path, "rb").read().strip().decode("utf-8")
sniffed = csv.Sniffer().sniff(text.split("\n")[0][:512]).delimiter
delimiter = "," if sniffed.isalnum() else sniffed
rows = [["nan" if x == "" else x for x in line.split(delimiter)] for line in text.split("\n")]
dtest = xgb.DMatrix(np.array(rows).astype(float))
if int(xgb.__version__.split(".")[0]) < 2:
    preds = booster.predict(dtest, ntree_limit=getattr(booster, "best_ntree_limit", 0), validate_features=False)
else:
    preds = booster.predict(dtest, validate_features=False)
config = json.loads(booster.save_config())
print(json.dumps({
    "xgboost": xgb.__version__,
    "numpy": np.__version__,
    "python": sys.version.split()[0],
    "members": members,
    "base_score": config["learner"]["learner_model_param"]["base_score"],
    "predictions": [float(p) for p in preds],
}))
"""


class ReferenceOutput(TypedDict):
    """What the reference script prints (one JSON line)."""

    xgboost: str
    numpy: str
    python: str
    members: list[str]
    base_score: str
    predictions: list[float]


class CrosscheckError(Exception):
    """The cross-check could not run (no interpreter, venv creation failed, reference script failed)."""


@dataclass(frozen=True)
class CrosscheckResult:
    """Outcome of one comparison."""

    reference_xgboost: str
    reference_python: str
    reference_base_score: str
    rows: int
    max_abs_diff: float
    tolerance: float
    local: list[float]
    reference: list[float]

    @property
    def passed(self) -> bool:
        return len(self.local) == len(self.reference) and self.max_abs_diff <= self.tolerance

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"{verdict}: {self.rows} rows, max |local - xgboost {self.reference_xgboost}| = {self.max_abs_diff:.3g} "
            f"(tolerance {self.tolerance:g}); reference Python {self.reference_python}, "
            f"base_score as xgboost {self.reference_xgboost} reads it: {self.reference_base_score}"
        )


def _probe_python(candidate: str) -> tuple[int, int] | None:
    """``(major, minor)`` of a working interpreter, or None (pyenv shims exist for versions not selected)."""
    try:
        out = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return int(out[0]), int(out[1])


def find_reference_base_python() -> str | None:
    """An interpreter that xgboost 1.7.6 + numpy 1.x install on: ``pythonX.Y`` on PATH, then pyenv's versions."""
    candidates: list[str] = []
    for version in REFERENCE_PYTHONS:
        found = shutil.which(f"python{version}")
        if found:
            candidates.append(found)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for version in REFERENCE_PYTHONS:
        candidates.extend(str(p) for p in sorted((pyenv_root / "versions").glob(f"{version}.*/bin/python{version}")))
    wanted = {tuple(int(x) for x in v.split(".")) for v in REFERENCE_PYTHONS}
    for candidate in candidates:
        if _probe_python(candidate) in wanted:
            return candidate
    return None


def _find_uv() -> str | None:
    # The dev venv has uv next to its python (the Makefile installs it there); PATH is the fallback.
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.exists() else shutil.which("uv")


def create_reference_env(dest: Path, *, base_python: str | None = None) -> Path:
    """Create a venv at ``dest`` with xgboost 1.7.6 (from PyPI) and return its interpreter.

    Measured on a 2-core machine with uv and a cold cache: about 2-4 s and 470 MB (the xgboost 1.7.6 wheel alone is
    200 MB: it bundles the CUDA build). Without uv, ``venv`` + pip does the same more slowly.
    """
    base = base_python or find_reference_base_python()
    if base is None:
        raise CrosscheckError(f"no Python {'/'.join(REFERENCE_PYTHONS)} found for xgboost {REFERENCE_XGBOOST_VERSION}")
    python = dest / "bin" / "python"
    uv = _find_uv()
    if uv is not None:
        steps = [
            [uv, "venv", "--quiet", "--python", base, str(dest)],
            [uv, "pip", "install", "--quiet", "--python", str(python), *REFERENCE_REQUIREMENTS],
        ]
    else:
        steps = [
            [base, "-m", "venv", str(dest)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REFERENCE_REQUIREMENTS],
        ]
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode != 0:
            raise CrosscheckError(f"{' '.join(step[:3])} failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
    return python


def reference_predictions(python: str | os.PathLike[str], artifact: Path, csv_payload: bytes) -> ReferenceOutput:
    """Run the container-like prediction under ``python`` (expected to have xgboost 1.7.6)."""
    with tempfile.TemporaryDirectory(prefix="asyncinfer-crosscheck-") as tmp:
        payload_path = Path(tmp) / "payload.csv"
        payload_path.write_bytes(csv_payload)
        proc = subprocess.run(
            [os.fspath(python), "-c", _REFERENCE_SCRIPT, str(artifact), str(payload_path)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if proc.returncode != 0:
        raise CrosscheckError(f"reference interpreter failed: {proc.stderr.strip()[-1000:]}")
    output = cast(ReferenceOutput, json.loads(proc.stdout.strip().splitlines()[-1]))
    if output["members"] != [demo.MODEL_FILENAME]:
        raise CrosscheckError(f"artifact members are {output['members']}, expected only {demo.MODEL_FILENAME}")
    return output


def local_predictions(artifact: Path, csv_payload: bytes) -> list[float]:
    """Predictions from the local server over real HTTP (JSON output: full float32 precision)."""
    with start_model_server(artifact, port=0) as server:
        request = urllib.request.Request(
            f"{server.url}/invocations",
            data=csv_payload,
            headers={"Content-Type": "text/csv", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
    return [float(entry["score"]) for entry in body["predictions"]]


def crosscheck(
    python: str | os.PathLike[str],
    *,
    artifact: Path | None = None,
    rows: int = 200,
    seed: int = 7,
    tolerance: float = DEFAULT_TOLERANCE,
    with_base_score: bool = True,
) -> CrosscheckResult:
    """Compare local-server and xgboost-1.7.6 predictions for ``rows`` rows (10% of cells missing)."""
    payload = demo.rows_to_csv(demo.make_input_rows(rows, seed, missing_fraction=0.1))
    with tempfile.TemporaryDirectory(prefix="asyncinfer-crosscheck-") as tmp:
        if artifact is None:
            booster = demo.train_demo_model(base_score=demo.BASE_SCORE if with_base_score else None)
            artifact = demo.build_model_artifact(Path(tmp), booster=booster)
        local = local_predictions(artifact, payload)
        ref = reference_predictions(python, artifact, payload)
    reference = [float(p) for p in ref["predictions"]]
    diffs = [abs(a - b) for a, b in zip(local, reference, strict=False)]
    return CrosscheckResult(
        reference_xgboost=ref["xgboost"],
        reference_python=ref["python"],
        reference_base_score=ref["base_score"],
        rows=rows,
        max_abs_diff=max(diffs) if diffs and len(local) == len(reference) else math.inf,
        tolerance=tolerance,
        local=local,
        reference=reference,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when the predictions agree, 1 when they do not, 2 when the check cannot run."""
    parser = argparse.ArgumentParser(prog="python -m asyncinfer.model.crosscheck", description=_DESCRIPTION)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--python", help=f"interpreter that has xgboost {REFERENCE_XGBOOST_VERSION}")
    where.add_argument("--create-venv", metavar="DIR", help="create that interpreter's venv in DIR first (needs PyPI)")
    parser.add_argument("--artifact", type=Path, help="model.tar.gz to check (default: build the demo model)")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    parser.add_argument("--without-base-score", action="store_true", help="demo model with xgboost's default")
    parser.add_argument(
        "--any-version", action="store_true", help=f"do not insist on xgboost {REFERENCE_XGBOOST_VERSION}"
    )
    args = parser.parse_args(argv)
    try:
        python = args.python or create_reference_env(Path(args.create_venv))
        result = crosscheck(
            python,
            artifact=args.artifact,
            rows=args.rows,
            tolerance=args.tolerance,
            with_base_score=not args.without_base_score,
        )
    except CrosscheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    if not args.any_version and result.reference_xgboost != REFERENCE_XGBOOST_VERSION:
        print(
            f"error: reference has xgboost {result.reference_xgboost}, not {REFERENCE_XGBOOST_VERSION}", file=sys.stderr
        )
        return 2
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())

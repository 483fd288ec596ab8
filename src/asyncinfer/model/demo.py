"""The demo model: a small binary classifier trained at setup from seeded synthetic data (nothing is downloaded).

The artifact is what SageMaker's ``ModelDataUrl`` points at: ``model.tar.gz`` holding exactly one file,
``xgboost-model``, in xgboost's JSON model format. JSON rather than the UBJSON default of xgboost 3.x because it is
text (diffable, ``base_score`` visible) and xgboost 1.7.6, the version in the SageMaker XGBoost 1.7-1 image, loads
it from a file with no extension (it sniffs the leading ``{"``). The legacy binary format cannot be written any
more: xgboost 3.x silently writes UBJSON for a ``.deprecated`` name.

``base_score`` is set explicitly to 0.5. xgboost 3.x stores it as a vector string (``"[5E-1]"``) that 1.7 does
not understand, so 1.7 falls back to its default of 0.5. A model trained with the 3.x default (the label mean) then
predicts differently in the real container; 0.5 makes both agree bit for bit (see :mod:`asyncinfer.model.crosscheck`).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import math
import os
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import xgboost as xgb

#: Columns a request row must have (no label column, as the container expects for inference).
N_FEATURES = 6
#: Boosting rounds (trees, for this single-output objective).
NUM_ROUNDS = 40
#: Seed of the training data and of xgboost, so that every setup builds the same model.
TRAINING_SEED = 20240601
#: Rows of synthetic training data.
TRAINING_ROWS = 4000
#: See the module docstring: the one value on which xgboost 1.7 and 3.x agree.
BASE_SCORE = 0.5
#: File name inside model.tar.gz that the built-in container expects.
MODEL_FILENAME = "xgboost-model"
#: Conventional artifact name (SageMaker training jobs write this name too).
ARTIFACT_FILENAME = "model.tar.gz"

FloatArray = npt.NDArray[np.float64]


def make_training_data(n_rows: int = TRAINING_ROWS, seed: int = TRAINING_SEED) -> tuple[FloatArray, FloatArray]:
    """Features and 0/1 labels drawn from a known logistic model, so that predictions carry signal.

    The true log-odds mix linear terms, an interaction and a non-linearity: trees have something to learn, and
    scores spread over (0, 1) instead of collapsing near one value.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, N_FEATURES))
    logit = 1.5 * x[:, 0] - 2.0 * x[:, 1] + x[:, 2] * x[:, 3] + 0.8 * np.sin(2.0 * x[:, 4]) + 0.3 * x[:, 5] - 0.4
    y = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float64)
    return x, y


def train_demo_model(*, base_score: float | None = BASE_SCORE, seed: int = TRAINING_SEED) -> xgb.Booster:
    """Train the demo booster (a few hundred milliseconds).

    ``base_score=None`` keeps xgboost's own default (the label mean in 3.x); it exists only to demonstrate the
    cross-version mismatch and must not be used for the artifact.
    """
    x, y = make_training_data(seed=seed)
    params: dict[str, object] = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "max_depth": 3,
        "eta": 0.3,
        "tree_method": "hist",
        "seed": seed,
        # One thread makes training reproducible bit for bit across machines.
        "nthread": 1,
    }
    if base_score is not None:
        params["base_score"] = base_score
    return xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=NUM_ROUNDS)


def model_file_bytes(booster: xgb.Booster) -> bytes:
    """The booster in xgboost's JSON model format (what goes into ``xgboost-model``)."""
    return bytes(booster.save_raw(raw_format="json"))


def build_model_artifact(path: str | os.PathLike[str], *, booster: xgb.Booster | None = None) -> Path:
    """Write ``model.tar.gz`` containing exactly one member, ``xgboost-model``, and return its path.

    ``path`` is the archive's path (ending in ``.tar.gz`` or ``.tgz``), or else a directory (created if need be) to
    write ``model.tar.gz`` into. Without ``booster``
    the demo model is trained. The archive is byte-for-byte reproducible (fixed mtimes and owners), so repeated
    setups upload identical objects. Written to a temporary name and renamed, so readers never see half a file.
    """
    target = Path(path)
    if target.is_dir() or not target.name.endswith((".tar.gz", ".tgz")):
        target = target / ARTIFACT_FILENAME
    payload = model_file_bytes(booster if booster is not None else train_demo_model())

    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        info = tarfile.TarInfo(MODEL_FILENAME)
        info.size = len(payload)
        info.mode = 0o644
        info.mtime = 0
        tar.addfile(info, io.BytesIO(payload))

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(buffer.getvalue())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def predict_rows(booster: xgb.Booster, rows: FloatArray) -> npt.NDArray[np.float32]:
    """Reference predictions: what the container must return for ``rows`` (all trees, NaN = missing)."""
    return np.asarray(
        booster.predict(xgb.DMatrix(rows), validate_features=False, iteration_range=(0, booster.num_boosted_rounds())),
        dtype=np.float32,
    )


# --- request payloads ---------------------------------------------------------------------------------------------


def make_input_rows(
    n: int, seed: int = 0, *, n_features: int = N_FEATURES, missing_fraction: float = 0.0
) -> FloatArray:
    """``n`` request rows from the training distribution; ``missing_fraction`` of the cells become NaN."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, n_features))
    if missing_fraction > 0:
        rows[rng.random(size=rows.shape) < missing_fraction] = np.nan
    return rows


def _format_value(value: float) -> str:
    # repr() round-trips float64 exactly, so the container parses back the very values the reference used.
    return "" if math.isnan(value) else repr(float(value))


def rows_to_csv(rows: FloatArray, delimiter: str = ",") -> bytes:
    """``text/csv`` body: one row a line, no header, no label column; NaN becomes an empty field."""
    return "\n".join(delimiter.join(_format_value(v) for v in row) for row in rows).encode()


def rows_to_libsvm(rows: FloatArray) -> bytes:
    """``text/libsvm`` body: ``index:value`` pairs with zero-based indices (the 1.7-1 container does not shift
    one-based ones), no label; NaN cells are left out, which xgboost treats as missing, as NaN is in CSV.
    """
    lines = []
    for row in rows:
        pairs = [f"{i}:{_format_value(v)}" for i, v in enumerate(row) if not math.isnan(v)]
        lines.append(" ".join(pairs))
    return "\n".join(lines).encode()


def make_csv_payload(n: int, seed: int = 0) -> bytes:
    """A valid ``text/csv`` request of ``n`` rows."""
    return rows_to_csv(make_input_rows(n, seed))


def make_libsvm_payload(n: int, seed: int = 0) -> bytes:
    """A valid ``text/libsvm`` request of ``n`` rows."""
    return rows_to_libsvm(make_input_rows(n, seed))


@dataclass(frozen=True)
class RejectedRequest:
    """A request the container answers with something other than 200, and why (from the 1.7-1 source)."""

    name: str
    body: bytes
    content_type: str | None
    accept: str | None
    expected_status: int
    why: str


def rejected_requests(seed: int = 0) -> list[RejectedRequest]:
    """One request per non-200 outcome of ``POST /invocations``, for tests and failure demos.

    Note what is *not* here: a CSV row with *fewer* columns than the model is accepted (xgboost treats the absent
    trailing features as missing), just as in the real container; only *more* columns fail, at predict time.
    """
    good = make_csv_payload(2, seed)
    wide = rows_to_csv(make_input_rows(2, seed, n_features=N_FEATURES + 1))
    return [
        RejectedRequest("empty-body", b"", "text/csv", None, 204, "an empty payload is answered 204 No Content"),
        RejectedRequest(
            "unsupported-content-type",
            good,
            "application/json",
            None,
            415,
            "the container parses only text/csv, text/libsvm, text/x-libsvm (and recordio-protobuf)",
        ),
        RejectedRequest(
            "unparsable-csv",
            b"alpha,beta,gamma,delta,epsilon,zeta",
            "text/csv",
            None,
            415,
            "CSV cells must be numbers or empty; parsing fails before the model is touched",
        ),
        RejectedRequest(
            "ragged-csv",
            b"1,2,3,4,5,6\n1,2,3",
            "text/csv",
            None,
            415,
            "every CSV row must have the same number of fields",
        ),
        RejectedRequest(
            "csv-label-size-2",
            good,
            "text/csv;label_size=2",
            None,
            415,
            "label_size other than 1 is not an accepted text/csv content type",
        ),
        RejectedRequest(
            "too-many-features",
            wide,
            "text/csv",
            None,
            400,
            f"{N_FEATURES + 1} columns for a {N_FEATURES}-feature model: xgboost refuses it at predict time",
        ),
        RejectedRequest(
            "libsvm-index-out-of-range",
            f"0:1.0 {N_FEATURES}:2.0".encode(),
            "text/libsvm",
            None,
            400,
            f"feature index {N_FEATURES} makes {N_FEATURES + 1} columns: refused at predict time",
        ),
        RejectedRequest(
            "unsupported-accept",
            good,
            "text/csv",
            "application/xml",
            406,
            "Accept must be text/csv, application/json or application/jsonlines (or */* / absent)",
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m asyncinfer.model.demo [PATH]``: write the demo artifact and print its path and SHA-256."""
    parser = argparse.ArgumentParser(prog="python -m asyncinfer.model.demo", description="Build the demo model.tar.gz.")
    parser.add_argument("path", nargs="?", default=ARTIFACT_FILENAME, help="archive path or directory")
    args = parser.parse_args(argv)
    artifact = build_model_artifact(args.path)
    print(f"{artifact} sha256={hashlib.sha256(artifact.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The image demo (``asyncinfer demo --model digits``): a digit classifier trained at set-up on scikit-learn's
digits data set (it ships with scikit-learn: nothing is downloaded), packaged as a script-mode artifact, and PNG
inputs drawn from the images it was not trained on.

``model.tar.gz`` holds ``digits-model.json`` (the logistic regression's weights as numbers) and
``code/inference.py`` (digits_script/inference.py), for the SageMaker scikit-learn container or the local
script-mode stand-in.
"""

from __future__ import annotations

import io
import json
import tarfile
from importlib import resources
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

MODEL_FILE: Final = "digits-model.json"
SCRIPT_FILE: Final = "inference.py"
#: Images held out of training: the demo's PNGs come from here, so the predictions are honest.
HELD_OUT: Final = 297
#: The SageMaker scikit-learn image the artifact is written for (us-east-1; see docs/local-stack.md).
SKLEARN_IMAGE: Final = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
PNG_SCALE: Final = 4  # 8x8 pixels drawn as 32x32


def _data() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    digits = load_digits()
    return np.asarray(digits.data, dtype=np.float64), np.asarray(digits.target, dtype=np.int64)


def train() -> LogisticRegression:
    """Fit on all but the last :data:`HELD_OUT` images (deterministic: lbfgs, no random state involved). The
    pixels are scaled to 0..1 for a fast fit; model_json folds the scale into the weights."""
    x, y = _data()
    model = LogisticRegression(max_iter=500)
    model.fit(x[:-HELD_OUT] / 16.0, y[:-HELD_OUT])
    return model


def model_json(model: LogisticRegression) -> bytes:
    """The weights for raw 0..16 pixels (what inference.py's features are)."""
    saved = {
        "coef": (model.coef_ / 16.0).tolist(),
        "intercept": model.intercept_.tolist(),
        "classes": [int(c) for c in model.classes_],
    }
    return json.dumps(saved).encode()


def script_source() -> bytes:
    return resources.files("asyncinfer.model.digits_script").joinpath(SCRIPT_FILE).read_bytes()


def build_artifact(path: Path, *, requirements: str | None = None) -> Path:
    """Write the script-mode ``model.tar.gz`` (``requirements`` adds a code/requirements.txt)."""
    members = {MODEL_FILE: model_json(train()), f"code/{SCRIPT_FILE}": script_source()}
    if requirements is not None:
        members["code/requirements.txt"] = requirements.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def png_of(pixels: npt.NDArray[np.float64]) -> bytes:
    """One 8x8 digit (values 0..16) as a 32x32 grayscale PNG, dark ink on white as a scanned digit looks."""
    gray = 255 - np.clip(np.round(pixels.reshape(8, 8) * 255 / 16), 0, 255).astype(np.uint8)
    image = Image.fromarray(np.kron(gray, np.ones((PNG_SCALE, PNG_SCALE), dtype=np.uint8)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def held_out_pngs(n: int) -> list[tuple[int, bytes]]:
    """``n`` held-out digits as (true digit, PNG), cycling through them."""
    x, y = _data()
    start = len(y) - HELD_OUT
    return [(int(y[start + i % HELD_OUT]), png_of(x[start + i % HELD_OUT])) for i in range(n)]

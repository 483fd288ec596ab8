"""Inference script of the digits demo, for the SageMaker scikit-learn container's script mode (and the local
stand-in, asyncinfer.model.script_mode).

The model file ``digits-model.json`` holds a multinomial logistic regression's weights as plain numbers, so that
the script needs only numpy and the standard library: no pickle (a scikit-learn pickle does not load across
versions), no network (the endpoint runs with network isolation, so code/requirements.txt cannot be installed).

Requests: ``image/png`` (any size; the toolkits have no default for it, so input_fn decodes it) or
``application/json`` (a list of 64 pixel values 0..16, or a list of such lists). Answers JSON
``{"digit": 3, "confidence": 0.97}`` (a list of them for a list input), or CSV with one digit per line.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # numpy.typing only for the checker: the container's numpy may be old
    from numpy.typing import NDArray

MODEL_FILE = "digits-model.json"
SIDE = 8  # the digits data set's images are 8x8, values 0..16
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def model_fn(model_dir: str) -> dict[str, Any]:
    with open(os.path.join(model_dir, MODEL_FILE), encoding="utf-8") as handle:
        saved = json.load(handle)
    return {
        "coef": np.asarray(saved["coef"], dtype=np.float64),
        "intercept": np.asarray(saved["intercept"], dtype=np.float64),
        "classes": [int(c) for c in saved["classes"]],
    }


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> NDArray[Any]:
    stride = width * bpp
    rows = np.zeros((height, stride), dtype=np.int32)
    prior = np.zeros(stride, dtype=np.int32)
    pos = 0
    for y in range(height):
        kind, line = raw[pos], np.frombuffer(raw[pos + 1 : pos + 1 + stride], dtype=np.uint8).astype(np.int32)
        pos += 1 + stride
        out = np.zeros(stride, dtype=np.int32)
        for x in range(stride):
            left = out[x - bpp] if x >= bpp else 0
            up = prior[x]
            corner = prior[x - bpp] if x >= bpp else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = left
            elif kind == 2:
                pred = up
            elif kind == 3:
                pred = (left + up) // 2
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
            else:
                raise ValueError(f"bad PNG filter type {kind}")
            out[x] = (line[x] + pred) & 0xFF
        rows[y] = out
        prior = out
    return rows


def _decode_png_plain(body: bytes) -> NDArray[Any]:
    """8-bit grayscale, grayscale+alpha, RGB or RGBA, non-interlaced: enough when Pillow is not in the image."""
    pos, idat, header = len(PNG_SIGNATURE), b"", None
    while pos + 8 <= len(body):
        length, kind = struct.unpack(">I4s", body[pos : pos + 8])
        data = body[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("not a PNG image: no IHDR chunk")
    width, height, depth, color, _, _, interlace = header
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise ValueError("this PNG needs Pillow (only 8-bit, non-interlaced, non-palette PNGs decode without it)")
    pixels = _unfilter(zlib.decompress(idat), width, height, channels).reshape(height, width, channels)
    gray = pixels[:, :, 0] if channels < 3 else pixels[:, :, :3].mean(axis=2)
    return np.asarray(gray, dtype=np.float64)


def decode_png(body: bytes) -> NDArray[Any]:
    """Grayscale pixels 0..255 of a PNG, with Pillow when the image has it."""
    if not body.startswith(PNG_SIGNATURE):
        raise ValueError("the body is not a PNG image (no PNG signature)")
    try:
        from PIL import Image
    except ImportError:
        return _decode_png_plain(body)
    with Image.open(io.BytesIO(body)) as image:
        return np.asarray(image.convert("L"), dtype=np.float64)


def to_features(gray: NDArray[Any]) -> NDArray[Any]:
    """Any-size grayscale image → the data set's 64 features: ink bright (a light background is inverted),
    averaged over an 8x8 grid, scaled to 0..16."""
    height, width = gray.shape
    if height < SIDE or width < SIDE:
        raise ValueError(f"the image is {width}x{height}; it must be at least {SIDE}x{SIDE}")
    if gray.mean() > 127:
        gray = 255.0 - gray
    rows = np.arange(height) * SIDE // height
    cols = np.arange(width) * SIDE // width
    sums = np.zeros((SIDE, SIDE))
    counts = np.zeros((SIDE, SIDE))
    np.add.at(sums, (rows[:, None], cols[None, :]), gray)
    np.add.at(counts, (rows[:, None], cols[None, :]), 1)
    return (sums / counts * 16.0 / 255.0).reshape(1, SIDE * SIDE)


def input_fn(request_body: bytes | str, content_type: str) -> NDArray[Any]:
    if content_type == "image/png":
        raw = request_body.encode("latin-1") if isinstance(request_body, str) else request_body
        return to_features(decode_png(raw))
    if content_type == "application/json":
        rows = np.asarray(json.loads(request_body), dtype=np.float64)
        rows = rows.reshape(1, -1) if rows.ndim == 1 else rows
        if rows.ndim != 2 or rows.shape[1] != SIDE * SIDE:
            raise ValueError(f"expected {SIDE * SIDE} pixel values per image, got shape {list(rows.shape)}")
        return rows
    raise ValueError(f"unsupported content type {content_type!r}: send image/png or application/json")


def predict_fn(input_data: NDArray[Any], model: dict[str, Any]) -> list[dict[str, Any]]:
    scores = input_data @ model["coef"].T + model["intercept"]
    scores -= scores.max(axis=1, keepdims=True)
    probabilities = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    best = probabilities.argmax(axis=1)
    return [
        {"digit": model["classes"][int(b)], "confidence": round(float(p[b]), 4)}
        for b, p in zip(best, probabilities, strict=True)
    ]


def output_fn(prediction: list[dict[str, Any]], accept: str) -> tuple[str, str]:
    if accept == "text/csv":
        return "".join(f"{p['digit']}\n" for p in prediction), accept
    if accept in ("application/json", "*/*"):
        return json.dumps(prediction[0] if len(prediction) == 1 else prediction), "application/json"
    raise ValueError(f"unsupported Accept {accept!r}: ask for application/json or text/csv")

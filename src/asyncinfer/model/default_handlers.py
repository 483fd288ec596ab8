"""The SageMaker inference toolkit's default decoders and encoders: what ``input_fn`` / ``output_fn`` do when an
inference script leaves them out.

Followed: sagemaker-inference-toolkit ``decoder.py`` / ``encoder.py`` / ``content_types.py`` (the base of the
PyTorch and Hugging Face containers). ``application/json`` and ``text/csv`` bodies arrive as text (the toolkit's
``UTF8_TYPES``), ``application/x-npy`` as bytes. Any other type, in or out, raises
:class:`UnsupportedFormatError` with the toolkit's message; the toolkit does not map it to 415, so it reaches the
client as a 500 like any other exception (see script_mode.py). ``application/x-npz`` (sparse input) is not emulated.
"""

from __future__ import annotations

import io
import json
from typing import Any, Final

import numpy as np
import numpy.typing as npt

JSON: Final = "application/json"
CSV: Final = "text/csv"
NPY: Final = "application/x-npy"
ANY: Final = "*/*"
#: Bodies of these types are decoded to ``str`` before input_fn sees them (transformer.py).
UTF8_TYPES: Final = (JSON, CSV)
#: The Accept used when a request has none or ``*/*``, unless SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT says otherwise.
DEFAULT_ACCEPT: Final = JSON


class UnsupportedFormatError(Exception):
    """A content type (request) or accept (response) the default handlers cannot decode or encode."""

    def __init__(self, content_type: str | None) -> None:
        super().__init__(
            f"Content type {content_type} is not supported by this framework.\n\n"
            "Please implement input_fn to to deserialize the request data or an output_fn to\n"
            "serialize the response. For more information, see the SageMaker Python SDK README."
        )


def decode(data: str | bytes, content_type: str | None) -> npt.NDArray[Any]:
    """The default ``input_fn``: JSON → ``np.array(json.loads(...))``, CSV → ``np.genfromtxt(delimiter=",")``,
    NPY → ``np.load`` (the toolkit allows pickles; here they are refused: a request must not run code)."""
    if content_type == JSON:
        return np.array(json.loads(data))
    if content_type == CSV:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return np.genfromtxt(io.StringIO(text), delimiter=",")
    if content_type == NPY:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        loaded: npt.NDArray[Any] = np.load(io.BytesIO(raw), allow_pickle=False)
        return loaded
    raise UnsupportedFormatError(content_type)


def _to_jsonable(value: object) -> object:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode(prediction: object, accept: str) -> str | bytes:
    """The default ``output_fn``'s encoding: JSON via ``json.dumps`` (arrays through ``tolist``), CSV via
    ``np.savetxt(delimiter=",", fmt="%s")``, NPY via ``np.save``."""
    if accept == JSON:
        return json.dumps(prediction, default=_to_jsonable)
    if accept == CSV:
        stream = io.StringIO()
        np.savetxt(stream, np.asarray(prediction), delimiter=",", fmt="%s")
        return stream.getvalue()
    if accept == NPY:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(prediction))
        return buffer.getvalue()
    raise UnsupportedFormatError(accept)

"""The request contract of ``POST /invocations`` in the SageMaker XGBoost 1.7-1 container, without HTTP.

Reproduced from the container's source (``algorithm_mode/serve.py``, ``serve_utils.py``, ``data_utils.py``,
``encoder.py``), including its parsing quirks, because the point of the emulator is that a payload that fails (or
passes) here fails (or passes) in SageMaker too. The checks run in the container's order:

1. empty body → 204;
2. content type and payload parsing → 415 on any failure;
3. model loading → 500;
4. prediction → 400 (e.g. more columns than the model has features: xgboost refuses at predict time);
5. Accept → 406 (checked only after a successful prediction, as in the container);
6. encoding → 200.

Not reproduced: ``application/x-recordio-protobuf`` input and output (415 and 406 here), the "selectable inference
output" mode (``SAGEMAKER_INFERENCE_OUTPUT``) and ``SAGEMAKER_BATCH``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import xgboost as xgb
from scipy.sparse import csr_matrix  # type: ignore[import-untyped]  # scipy ships no type information

from asyncinfer.model.artifact import LoadedModel, ModelLoadError

#: Environment variable the container reads when a request has no Accept (or ``*/*``).
DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
#: Response formats implemented here (the container also has application/x-recordio-protobuf).
SUPPORTED_ACCEPTS = ("application/json", "application/jsonlines", "text/csv")
#: Flask's default mimetype, which the container's plain-text error responses carry.
ERROR_CONTENT_TYPE = "text/html; charset=utf-8"

# Internal content-type names, as in the container's data_utils.
CSV = "csv"
LIBSVM = "libsvm"
PARQUET = "parquet"
RECORDIO_PROTOBUF = "recordio-protobuf"


class UnsupportedContentError(Exception):
    """Content type not accepted, or the payload does not parse as that type (→ 415)."""


class NotAcceptableError(Exception):
    """The Accept header names a format the container cannot produce (→ 406)."""


@dataclass(frozen=True)
class InvocationResult:
    """What ``POST /invocations`` answers. ``content_type`` is None for 204 (no body, no entity headers)."""

    status: int
    body: bytes
    content_type: str | None


def parse_header(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type/subtype; k=v; ...`` like the stdlib's removed ``cgi.parse_header`` that the container uses."""
    parts = value.split(";")
    params: dict[str, str] = {}
    for part in parts[1:]:
        name, sep, val = part.partition("=")
        if sep:
            val = val.strip()
            if len(val) >= 2 and val[0] == val[-1] == '"':
                val = val[1:-1]
            params[name.strip().lower()] = val
    return parts[0].strip(), params


def _invalid_content_type(value: str) -> UnsupportedContentError:
    return UnsupportedContentError(
        f"{value} is not an accepted ContentType: 'csv', 'libsvm', 'text/csv', 'text/libsvm', 'text/x-libsvm'."
    )


def get_content_type(value: str | None) -> str:
    """The container's ``data_utils.get_content_type``: no Content-Type means libsvm; ``text/csv`` may carry
    parameters (``label_size`` must then be 1) but the libsvm types may not.
    """
    if value is None:
        return LIBSVM
    lowered = value.lower()
    if lowered in (LIBSVM, "text/libsvm", "text/x-libsvm"):
        return LIBSVM
    if CSV in lowered:
        if lowered in (CSV, "text/csv"):
            return CSV
        media_type, params = parse_header(lowered)
        if media_type == "text/csv":
            label_size = params.get("label_size")
            if label_size is not None and label_size != "1":
                raise UnsupportedContentError(
                    f"{lowered} is not an accepted csv ContentType. Optional parameter label_size must be equal to 1"
                )
            return CSV
        raise _invalid_content_type(lowered)
    if lowered in (PARQUET, "application/x-parquet"):
        return PARQUET
    if lowered in (RECORDIO_PROTOBUF, "application/x-recordio-protobuf"):
        return RECORDIO_PROTOBUF
    raise _invalid_content_type(value)


def csv_to_dmatrix(text: str) -> xgb.DMatrix:
    """The container's ``encoder.csv_to_dmatrix``: the delimiter is sniffed from the first line (an alphanumeric
    guess means a single column, so ``,``), empty fields become NaN, and every row must have the same width.
    """
    sniffed = csv.Sniffer().sniff(text.split("\n", maxsplit=1)[0][:512]).delimiter
    delimiter = "," if sniffed.isalnum() else sniffed
    rows = [["nan" if cell == "" else cell for cell in line.split(delimiter)] for line in text.split("\n")]
    return xgb.DMatrix(np.array(rows).astype(np.float64))


def libsvm_to_dmatrix(text: str) -> xgb.DMatrix:
    """The container's ``_get_sparse_matrix_from_libsvm``: tokens split on single spaces, every ``idx:val`` token
    kept (anything else, such as a leading label, is ignored), indices used as given (zero-based), and the width
    taken from the largest index.
    """
    rows: list[int] = []
    cols: list[str] = []
    data: list[str] = []
    for row_idx, line in enumerate(text.split("\n")):
        for item in line.split(" "):
            if ":" in item:
                fields = item.split(":")
                rows.append(row_idx)
                cols.append(fields[0])
                data.append(fields[1])
    matrix = csr_matrix(
        (np.array(data).astype(np.float64), (np.array(rows), np.array(cols).astype(np.int64))),
    )
    return xgb.DMatrix(matrix)


def parse_payload(body: bytes, content_type: str | None) -> xgb.DMatrix:
    """Body → DMatrix, raising :class:`UnsupportedContentError` with the container's messages."""
    kind = get_content_type(content_type)
    if kind == CSV:
        try:
            return csv_to_dmatrix(body.strip().decode("utf-8"))
        except Exception as exc:
            raise UnsupportedContentError(
                f"Loading csv data failed with Exception, please ensure data is in csv format:\n {type(exc)}\n {exc}"
            ) from exc
    if kind == LIBSVM:
        try:
            return libsvm_to_dmatrix(body.strip().decode("utf-8"))
        except Exception as exc:
            raise UnsupportedContentError(
                "Loading libsvm data failed with Exception, please ensure data is in libsvm format:\n"
                f" {type(exc)}\n {exc}"
            ) from exc
    raise UnsupportedContentError(f"Content-type {content_type} is not supported by this emulator.")


def resolve_accept(accept: str | None, default_accept: str) -> str:
    """The container's ``_parse_accept``: only the first media type counts (no q-values, no lists), missing or
    ``*/*`` means the default, and anything unsupported is refused.
    """
    media_type, _ = parse_header(accept or "")
    if not media_type or media_type == "*/*":
        return default_accept
    if media_type.lower() not in SUPPORTED_ACCEPTS:
        raise NotAcceptableError(
            f"Accept type {media_type} is not supported. Please use supported accept types: {list(SUPPORTED_ACCEPTS)}."
        )
    return media_type.lower()


def resolve_default_accept(value: str | None = None) -> str:
    """The Accept used for requests without one: ``value``, else env ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``, else
    ``text/csv``. Refused at once (``ValueError``) if unsupported, rather than failing every such request later.
    """
    chosen = value or os.environ.get(DEFAULT_ACCEPT_ENV) or "text/csv"
    media_type = parse_header(chosen)[0].lower()
    if media_type not in SUPPORTED_ACCEPTS:
        raise ValueError(f"default Accept {chosen!r} is not one of {', '.join(SUPPORTED_ACCEPTS)}")
    return media_type


def encode_predictions(preds: npt.NDArray[np.float32], accept: str) -> bytes:
    """Encode as the 1.7-1 container does.

    ``text/csv`` goes through ``numpy.savetxt(fmt="%s")`` (sagemaker-containers' encoder): one prediction per line,
    each printed as the shortest float32 repr, trailing newline. JSON carries ``preds.tolist()`` values (float32
    widened to float64, so more digits than the CSV).
    """
    if accept == "text/csv":
        stream = io.StringIO()
        np.savetxt(stream, preds, delimiter=",", fmt="%s")
        return stream.getvalue().encode()
    entries = [{"score": score} for score in preds.tolist()]
    if accept == "application/json":
        return json.dumps({"predictions": entries}).encode()
    if accept == "application/jsonlines":
        return "".join(json.dumps(entry) + "\n" for entry in entries).encode()
    raise NotAcceptableError(f"cannot encode predictions as {accept}")


def response_content_type(mimetype: str) -> str:
    """Flask (werkzeug) appends ``; charset=utf-8`` to ``text/*`` mimetypes, so the container's CSV responses say
    ``text/csv; charset=utf-8`` while JSON ones are bare.
    """
    return f"{mimetype}; charset=utf-8" if mimetype.startswith("text/") else mimetype


def _error(status: int, message: str) -> InvocationResult:
    return InvocationResult(status, message.encode(), ERROR_CONTENT_TYPE)


def invoke(
    body: bytes,
    content_type: str | None,
    accept: str | None,
    get_model: Callable[[], LoadedModel],
    *,
    default_accept: str = "text/csv",
) -> InvocationResult:
    """Answer one ``POST /invocations``. ``get_model`` returns the loaded model or raises ``ModelLoadError``."""
    if len(body) == 0:
        return InvocationResult(204, b"", None)
    try:
        dtest = parse_payload(body, content_type)
    except UnsupportedContentError as exc:
        return _error(415, str(exc))
    try:
        model = get_model()
    except ModelLoadError as exc:
        return _error(500, f"Unable to load model: {exc}")
    try:
        preds = model.predict(dtest)
    except Exception as exc:
        # xgboost's message, e.g. "Check failed: ... (6 vs. 7) : Number of columns does not match number of
        # features in booster.", without the native stack trace xgboost appends (noise in a failure record).
        message = str(exc).split("\nStack trace:")[0].strip()
        return _error(400, f"Unable to evaluate payload provided: {message}")
    try:
        resolved = resolve_accept(accept, default_accept)
    except NotAcceptableError as exc:
        return _error(406, str(exc))
    return InvocationResult(200, encode_predictions(preds, resolved), response_content_type(resolved))

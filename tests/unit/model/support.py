"""What the model container tests share: requests with exactly the headers given, and the expected predictions.

Expected predictions always come from a Booster loaded straight from the artifact's ``xgboost-model`` (not through
the server's own loading code), so a test passes only if the server predicts what xgboost predicts.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass

import numpy as np
import xgboost as xgb

from tests.samples import ROOT

SRC = ROOT / "src"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    content_type: str | None = None,
    accept: str | None = None,
    timeout: float = 30.0,
) -> Reply:
    """One request with exactly the headers given (urllib would add a form Content-Type to every POST)."""
    host_port = url.removeprefix("http://")
    conn = http.client.HTTPConnection(host_port, timeout=timeout)
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def invoke_http(url: str, body: bytes, content_type: str | None = "text/csv", accept: str | None = None) -> Reply:
    return request(url, "POST", "/invocations", body, content_type=content_type, accept=accept)


def csv_scores(body: bytes) -> np.ndarray:
    """The 1.7-1 CSV output: one float32 per line (each printed as its shortest repr, so parsing is exact)."""
    text = body.decode()
    assert text.endswith("\n")
    return np.array([np.float32(line) for line in text.splitlines()], dtype=np.float32)


def expected(booster: xgb.Booster, rows: np.ndarray) -> np.ndarray:
    return np.asarray(booster.predict(xgb.DMatrix(rows), validate_features=False), dtype=np.float32)

"""What a finished job gave its user: the prediction itself (the response SageMaker embedded, else the output
object), and the output downloaded under a name derived from the input file's.

Used by ``submit --wait``, ``status`` and the demo, on the job record or the result event alike.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from async_pipeline import s3_uris
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREVIEW_BYTES = 1024  # what is shown of a prediction: one ranged GetObject at most
OUTPUT_SUFFIX = ".out"


def decode_response(content: str, encoding: str | None) -> bytes:
    """The embedded response's bytes (``encoding`` BASE64, else the text as it is)."""
    if (encoding or "").upper() == "BASE64":
        try:
            return base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            return content.encode()
    return content.encode()


def shown(data: bytes, limit: int = 200) -> str:
    """A prediction on one line: decoded as UTF-8 (invalid bytes replaced), whitespace folded, cut at ``limit``
    characters on a word boundary with an ellipsis."""
    text = " ".join(data.decode("utf-8", "replace").split())
    return text if len(text) <= limit else cut(text, limit)


_BOUNDARIES = " /,;:"  # where a word ends; "." is not one (java.lang.IllegalStateException is one word)


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters with "…", cut only after a boundary (space, /, comma, ;, :) in its
    second half; without one there (a long single token, such as a Java exception's name), ``text`` whole: better
    too long than a word that reads as another."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    end = max(head.rfind(char) for char in _BOUNDARIES)
    if end < limit // 2:
        return text
    return head[: end + 1].rstrip(" ,;:") + "…"


def prediction(
    s3: S3Client, content: str | None, encoding: str | None, output_location: str | None
) -> tuple[bytes | None, str]:
    """The prediction's first bytes and where they came from (``"response"``, ``"output"``, or why none)."""
    if content is not None:
        return decode_response(content, encoding)[:PREVIEW_BYTES], "response"
    if not output_location:
        return None, "no output"
    try:
        bucket, key = s3_uris.parse_uri(output_location)
        body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{PREVIEW_BYTES - 1}")["Body"]
        try:
            return body.read(), "output"
        finally:
            body.close()
    except (ClientError, ValueError) as exc:
        return None, f"output unreadable: {exc}"


def local_name(key: str, prefix: str) -> str:
    """The download's name for an input key: the key below ``prefix`` (folders kept, as uploaded) plus ``.out``.
    Path parts that could leave the folder (``..``, empty, absolute) are dropped."""
    relative = key[len(prefix) :] if prefix and key.startswith(prefix) else key
    parts = [p for p in PurePosixPath(relative).parts if p not in ("", ".", "..", "/")]
    return "/".join(parts or ["output"]) + OUTPUT_SUFFIX


def download(s3: S3Client, output_location: str, destination: Path) -> Path:
    """The output object saved at ``destination`` (folders made as needed)."""
    bucket, key = s3_uris.parse_uri(output_location)
    destination.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, key, str(destination))
    return destination

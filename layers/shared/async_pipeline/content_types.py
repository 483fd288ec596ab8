"""Which ContentType to send for an input object."""

from __future__ import annotations

from pathlib import PurePosixPath

# Types that say nothing about the payload: S3 and most upload tools fall back to these.
UNINFORMATIVE = frozenset({"", "binary/octet-stream", "application/octet-stream"})

BY_EXTENSION: dict[str, str] = {
    ".csv": "text/csv",
    ".libsvm": "text/libsvm",
    ".svm": "text/libsvm",
    ".json": "application/json",
    ".jsonl": "application/jsonlines",
    ".jsonlines": "application/jsonlines",
    ".npy": "application/x-npy",
    ".parquet": "application/x-parquet",
    ".recordio": "application/x-recordio-protobuf",
    ".txt": "text/plain",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".wav": "audio/wav",
}

MAX_LENGTH = 1024  # X-Amzn-SageMaker-Content-Type: at most 1024 ASCII characters


def _usable(content_type: str | None) -> bool:
    return (
        content_type is not None
        and content_type.strip().lower() not in UNINFORMATIVE
        and content_type.isascii()
        and len(content_type) <= MAX_LENGTH
    )


def choose(object_content_type: str | None, key: str, default: str) -> tuple[str, str]:
    """Return ``(content_type, source)``: the object's own type, else its extension's, else the default."""
    if object_content_type is not None and _usable(object_content_type):
        return object_content_type.strip(), "object"
    by_extension = BY_EXTENSION.get(PurePosixPath(key).suffix.lower())
    if by_extension:
        return by_extension, "extension"
    return default, "default"

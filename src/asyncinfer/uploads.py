"""Uploading files and folders to the input bucket."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from asyncinfer.target import Target


class MissingPath(FileNotFoundError):
    """A path given on the command line does not exist."""


@dataclass(frozen=True)
class Upload:
    path: Path
    key: str
    size: int
    uploaded_at: float = 0.0


def collect(paths: Iterable[Path], prefix: str = "") -> list[Upload]:
    """Files as given, folders recursively (keys keep the path below the folder's parent)."""
    uploads: list[Upload] = []
    for path in paths:
        if not path.exists():
            raise MissingPath(f"no such file or folder: {path}")
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                uploads.append(Upload(file, prefix + file.relative_to(path.parent).as_posix(), file.stat().st_size))
        else:
            uploads.append(Upload(path, prefix + path.name, path.stat().st_size))
    return uploads


def upload(target: Target, uploads: list[Upload], on_done: Callable[[Upload], None] | None = None) -> list[Upload]:
    s3 = target.client("s3")
    bucket = target.outputs["InputBucketName"]
    done: list[Upload] = []
    for item in uploads:
        s3.upload_file(str(item.path), bucket, item.key)
        finished = Upload(item.path, item.key, item.size, time.time())
        done.append(finished)
        if on_done is not None:
            on_done(finished)
    return done

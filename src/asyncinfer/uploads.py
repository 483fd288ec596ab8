"""Uploading files and folders to the input bucket."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from async_pipeline import inference_ids

from asyncinfer.target import Target


class MissingPath(FileNotFoundError):
    """A path given on the command line does not exist."""


@dataclass(frozen=True)
class Upload:
    path: Path
    key: str
    size: int
    uploaded_at: float = 0.0
    version_id: str | None = None  # the version S3 made of it (the input bucket is versioned)
    metadata: Mapping[str, str] = field(default_factory=dict)  # sent as x-amz-meta-*

    def inference_id(self, bucket: str) -> str:
        """The id the pipeline gives this upload's version (MissingObjectVersion for an unversioned bucket)."""
        return inference_ids.of_version(bucket, self.key, self.version_id)


def collect(paths: Iterable[Path], prefix: str = "", metadata: Mapping[str, str] | None = None) -> list[Upload]:
    """Files as given, folders recursively (keys keep the path below the folder's parent)."""
    uploads: list[Upload] = []
    meta = dict(metadata or {})
    for path in paths:
        if not path.exists():
            raise MissingPath(f"no such file or folder: {path}")
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                key = prefix + file.relative_to(path.parent).as_posix()
                uploads.append(Upload(file, key, file.stat().st_size, metadata=meta))
        else:
            uploads.append(Upload(path, prefix + path.name, path.stat().st_size, metadata=meta))
    return uploads


def upload(target: Target, uploads: list[Upload], on_done: Callable[[Upload], None] | None = None) -> list[Upload]:
    """One PutObject per file (up to 5 GB; the pipeline takes at most 1 GB), which answers with the version S3
    made: what ``submit --wait`` follows."""
    s3 = target.client("s3")
    bucket = target.outputs["InputBucketName"]
    done: list[Upload] = []
    for item in uploads:
        with item.path.open("rb") as body:
            put = s3.put_object(Bucket=bucket, Key=item.key, Body=body, Metadata=dict(item.metadata))
        version = put.get("VersionId")
        finished = replace(item, uploaded_at=time.time(), version_id=None if version in (None, "null") else version)
        done.append(finished)
        if on_done is not None:
            on_done(finished)
    return done

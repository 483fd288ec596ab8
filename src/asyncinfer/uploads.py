"""Uploading files and folders to the input bucket."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from async_pipeline import inference_ids, user_metadata

from asyncinfer.target import Target


class MissingPath(FileNotFoundError):
    """A path given on the command line does not exist."""


class InvalidUploads(ValueError):
    """What was asked cannot be uploaded as given (metadata S3 or the endpoint refuses, two files on one key)."""


def check_metadata(metadata: Mapping[str, str]) -> None:
    """Refuse, before any upload, metadata that S3, botocore or the endpoint would refuse later (InvalidUploads):
    non-ASCII (botocore sends headers as they are and refuses it; other clients' RFC 2047-encoded values are
    decoded by the pipeline), over S3's 2 KB (moto does not enforce it), or a custom-attributes value
    CustomAttributes cannot take (the job would FAIL)."""
    for name, value in metadata.items():
        if not (name + value).isascii():
            raise InvalidUploads(
                f"--metadata {name}=…: only ASCII can be sent (botocore refuses other characters in x-amz-meta-*)"
            )
    size = user_metadata.size_bytes(metadata)
    if size > user_metadata.MAX_METADATA_BYTES:
        raise InvalidUploads(
            f"--metadata: {size} bytes of keys and values; S3 takes at most {user_metadata.MAX_METADATA_BYTES}"
        )
    try:
        user_metadata.custom_attributes(metadata)
    except user_metadata.InvalidCustomAttributes as exc:
        raise InvalidUploads(f"--metadata: {exc}") from None


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


def check_triggers(items: Iterable[Upload], parameters: Mapping[str, str] | None) -> None:
    """Refuse (InvalidUploads) keys the stack's S3 notification filter skips (its InputPrefix and InputSuffix
    parameters): they would never become jobs, and ``--wait`` would wait out its timeout. Unknown parameters: no
    check."""
    if not parameters:
        return
    prefix, suffix = parameters.get("InputPrefix", ""), parameters.get("InputSuffix", "")
    skipped = [item.key for item in items if not (item.key.startswith(prefix) and item.key.endswith(suffix))]
    if skipped:
        shown = ", ".join(skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        raise InvalidUploads(
            f"{shown} would never trigger an inference: the stack takes only keys starting with {prefix!r} and "
            f"ending with {suffix!r} (parameters InputPrefix, InputSuffix; use --prefix)"
        )


def collect(paths: Iterable[Path], prefix: str = "", metadata: Mapping[str, str] | None = None) -> list[Upload]:
    """Files as given, folders recursively (keys keep the path below the folder's parent). Two files that would go
    to the same key (``a/x.csv b/x.csv``: both ``x.csv``) are refused (InvalidUploads): the second would replace
    the first, and their results would share one download name."""
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
    seen: dict[str, Path] = {}
    for item in uploads:
        if item.key in seen and seen[item.key].resolve() != item.path.resolve():
            raise InvalidUploads(f"{seen[item.key]} and {item.path} would both be uploaded as {item.key}")
        seen.setdefault(item.key, item.path)
    return list({item.key: item for item in uploads}.values())


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

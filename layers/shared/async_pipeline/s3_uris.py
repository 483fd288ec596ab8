"""S3 object URIs: the one way the pipeline writes and reads ``s3://bucket/key``.

Keys are taken raw: an S3 URI is not percent-encoded, so ``#``, ``?``, ``%`` and spaces are part of the key (a
URL parser would cut the key at ``#`` or ``?``). SageMaker may also name locations as https S3 URLs, whose paths
are percent-encoded like any URL path.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

SCHEME = "s3://"


def format_uri(bucket: str, key: str) -> str:
    """``s3://bucket/key`` (the key as it is)."""
    return f"{SCHEME}{bucket}/{key}"


def parse_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key`` or of an https S3 URL (virtual-hosted
    ``https://bucket.s3[.region].amazonaws.com/key`` or path-style ``https://s3.../bucket/key``, percent-decoded as
    URL paths are). ValueError when it is neither or names no bucket."""
    scheme, _, rest = uri.partition("://")
    if scheme == "s3":
        bucket, _, key = rest.partition("/")
    elif scheme == "https":
        parts = urlsplit(uri)
        host, path = parts.hostname or "", unquote(parts.path).lstrip("/")
        if host.startswith(("s3.", "s3-")) or ".s3" not in host:
            bucket, _, key = path.partition("/")
        else:
            bucket, key = host.split(".s3", 1)[0], path
    else:
        raise ValueError(f"not an S3 URI: {uri!r}")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key


def key_of(uri: str) -> str:
    """The key of an S3 URI (ValueError when it is not one)."""
    return parse_uri(uri)[1]

"""Where a file's output and failure objects go: under its input key's folder, named after its inference id.

The submitter sends both with every request (``S3OutputPathExtension`` and ``Filename``, botocore >= 1.42.54), so
``incoming/2026/rows.csv`` gives ``s3://<OutputBucket>/output/incoming/2026/<id28>.out`` (and, on failure,
``failure/incoming/2026/<id28>-error.out``; the failure name is SageMaker's own, UNVERIFIED, so the pipeline
always reads it from the response or the notification). The name depends only on the inference id: a second call
for the same job (a retry after a crash) writes the same object again, unless the two calls end differently.

The API allows the extension only ``[a-zA-Z0-9!_.*'()/-]``, up to 512 characters. The mapping (docs/design.md):

* each folder segment keeps those characters; every other character (space, ``+``, ``%``, ``€``, …) becomes ``_``;
* an empty segment (``a//b``) and the segments ``.`` and ``..`` become ``_``, so no path resolves elsewhere;
* past 512 characters the path is cut at the last whole segment that fits;
* a key without a folder gets no extension (``output/<id28>.out``).

Different folders may map to the same extension (``a b/`` and ``a_b/``); names never collide, being ids.
"""

from __future__ import annotations

import re

from async_pipeline import s3_uris

FILENAME_ID_CHARS = 28  # Filename: at most 32 characters; 28 hex digits (112 bits) + ".out"
OUTPUT_SUFFIX = ".out"
MAX_EXTENSION = 512
_DISALLOWED = re.compile(r"[^a-zA-Z0-9!_.*'()-]")


def filename_for(inference_id: str) -> str:
    """``Filename`` for a job: the first 28 characters of its (hex) inference id and ``.out``; matches the API's
    pattern (a leading letter or digit, at most one dot)."""
    return f"{inference_id[:FILENAME_ID_CHARS]}{OUTPUT_SUFFIX}"


def _segment(raw: str) -> str:
    if raw in ("", ".", ".."):
        return "_"
    return _DISALLOWED.sub("_", raw)


def path_extension_for(key: str) -> str | None:
    """``S3OutputPathExtension`` for an input key: its folder, mapped as the module says; None without a folder."""
    folder, slash, _ = key.rpartition("/")
    if not slash:
        return None
    extension = ""
    for segment in folder.split("/"):
        candidate = f"{extension}/{_segment(segment)}" if extension else _segment(segment)
        if len(candidate) > MAX_EXTENSION:
            break
        extension = candidate
    return extension or None


def output_key(output_prefix: str, input_key: str, inference_id: str) -> str:
    """The output object's key under the endpoint's ``S3OutputPath`` prefix (e.g. ``output/``): where the soak's
    audit and ``asyncinfer submit --wait`` expect it."""
    extension = path_extension_for(input_key)
    parts = [output_prefix.rstrip("/"), extension, filename_for(inference_id)]
    return "/".join(part for part in parts if part)


def output_uri(output_path: str, input_key: str, inference_id: str) -> str:
    """The output's URI under ``S3OutputPath`` (``s3://bucket/prefix``)."""
    bucket, prefix = s3_uris.parse_uri(output_path)
    return s3_uris.format_uri(bucket, output_key(prefix, input_key, inference_id))

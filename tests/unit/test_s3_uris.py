"""S3 URIs: keys are taken raw (no URL parsing of s3://), https S3 URLs are percent-decoded."""

from __future__ import annotations

import pytest
from async_pipeline import s3_uris

from asyncinfer.model.artifact import ModelLoadError, _artifact_location


@pytest.mark.parametrize(
    "key", ["incoming/a b.csv", "what?x=1.csv", "notes#1.csv", "50%25 off/€.csv", "a//double/slash", ""]
)
def test_round_trip_keeps_the_key_as_it_is(key: str) -> None:
    assert s3_uris.parse_uri(s3_uris.format_uri("bucket", key)) == ("bucket", key)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://bucket.s3.eu-west-1.amazonaws.com/out/a%20b.out", ("bucket", "out/a b.out")),
        ("https://bucket.s3.amazonaws.com/k", ("bucket", "k")),
        ("https://s3.eu-west-1.amazonaws.com/bucket/dir/k", ("bucket", "dir/k")),
    ],
)
def test_https_urls_name_bucket_and_decoded_key(uri: str, expected: tuple[str, str]) -> None:
    assert s3_uris.parse_uri(uri) == expected


@pytest.mark.parametrize("uri", ["s3:///key", "http://bucket/key", "bucket/key", "s3://"])
def test_not_an_s3_uri_is_refused(uri: str) -> None:
    with pytest.raises(ValueError, match=r"bucket|S3 URI"):
        s3_uris.parse_uri(uri)


def test_key_of() -> None:
    assert s3_uris.key_of("s3://b/dir/x?.csv") == "dir/x?.csv"


def test_a_model_artifact_needs_an_s3_object_uri() -> None:
    assert _artifact_location("s3://models/m#1/model.tar.gz") == ("models", "m#1/model.tar.gz")
    for bad in ("s3://models/", "https://models.s3.amazonaws.com/model.tar.gz", "/tmp/model.tar.gz"):
        with pytest.raises(ModelLoadError):
            _artifact_location(bad)

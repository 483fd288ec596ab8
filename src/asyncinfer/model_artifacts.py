"""Model artifacts in S3 under content-addressed keys: each artifact uploaded once, never overwritten.

SageMaker downloads ``ModelDataUrl`` whenever an instance starts (every scale-out from zero), and CloudFormation
compares properties, not object contents: a new artifact uploaded over the old key changes nothing in the stack
while later instances serve it (reference aws-day2.md §4). Here the key is the artifact's SHA-256, so a new model is
a new ``ModelDataUrl`` (a new Model, EndpointConfig and ``UpdateEndpoint``), the same model is the same URL (an
empty change), and rolling back is deploying the previous URL, which still holds exactly what it held.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType

# The template's execution role reads everything under this prefix of the account's SageMaker default bucket, so that
# the role's policy does not change between model versions (an update, or its rollback, can always read both).
PREFIX = "async-inference-pipeline/models/"
ARTIFACT_NAME = "model.tar.gz"
SINGLE_PUT_LIMIT = 5 * 1024**3  # S3's largest PutObject; larger artifacts go up in parts


class ArtifactError(RuntimeError):
    """The artifact cannot be uploaded where its content says it belongs; the message says why."""


@dataclass(frozen=True, slots=True)
class Digest:
    hex: str
    base64: str  # what S3's x-amz-checksum-sha256 carries


@dataclass(frozen=True, slots=True)
class Upload:
    url: str
    created: bool  # False: the same artifact was already there (nothing written)


def default_bucket(region: str, account: str) -> str:
    """The SageMaker SDK's default bucket, where the template's default ``ModelDataUrl`` points."""
    return f"sagemaker-{region}-{account}"


def sha256_of(path: Path) -> Digest:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return Digest(digest.hexdigest(), base64.b64encode(digest.digest()).decode("ascii"))


def content_key(digest: Digest) -> str:
    return f"{PREFIX}{digest.hex}/{ARTIFACT_NAME}"


def ensure_bucket(s3: S3Client, bucket: str, region: str) -> None:
    """Create the bucket private and encrypted if it does not exist (as the SageMaker SDK's default bucket is)."""
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError:
        pass
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        constraint = cast("BucketLocationConstraintType", region)
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": constraint})
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


def _stored_checksum(s3: S3Client, bucket: str, key: str) -> str | None:
    """The object's stored SHA-256 ("" when it has none), or None when there is no object."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return str(head.get("ChecksumSHA256") or "")


def upload_once(s3: S3Client, artifact: Path, bucket: str) -> Upload:
    """Upload ``artifact`` to ``s3://bucket/<PREFIX><sha256>/model.tar.gz`` unless it is already there.

    The write is conditional (``If-None-Match: *``) and checksummed, so two deploys racing cannot overwrite each
    other and S3 refuses a corrupted upload. An object already at the key with another checksum is refused loudly:
    someone wrote it by hand, and serving it would not be serving this artifact.
    """
    digest = sha256_of(artifact)
    key = content_key(digest)
    url = f"s3://{bucket}/{key}"
    stored = _stored_checksum(s3, bucket, key)
    if stored is None:
        try:
            if artifact.stat().st_size <= SINGLE_PUT_LIMIT:
                with artifact.open("rb") as body:
                    s3.put_object(
                        Bucket=bucket,
                        Key=key,
                        Body=body,
                        ChecksumAlgorithm="SHA256",
                        ChecksumSHA256=digest.base64,
                        IfNoneMatch="*",
                    )
            else:  # multipart (the transfer manager takes no If-None-Match; the HeadObject above stands in)
                s3.upload_file(str(artifact), bucket, key, ExtraArgs={"ChecksumAlgorithm": "SHA256"})
            return Upload(url, created=True)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                raise
            stored = _stored_checksum(s3, bucket, key)  # another deploy won the race: check what it wrote
    # A multipart upload stores a checksum of the parts' checksums ("...-N"): it cannot be compared to the digest.
    if stored and not stored.rpartition("-")[2].isdigit() and stored != digest.base64:
        raise ArtifactError(
            f"{url} already holds an object whose SHA-256 is not its name's: keys under {PREFIX} are written only "
            "by asyncinfer deploy; delete that object or upload the model elsewhere and pass --model-data-url"
        )
    return Upload(url, created=False)

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
import time
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
DIGEST_METADATA = "sha256"  # x-amz-meta-sha256: the artifact's hex digest, whatever checksum S3 keeps


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


def ensure_bucket(s3: S3Client, bucket: str, region: str, account: str) -> None:
    """Create the bucket private and encrypted if it does not exist (as the SageMaker SDK's default bucket is);
    refuse one that exists in another account: its name is predictable, so anyone may have taken it."""
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
        return
    except ClientError as exc:
        if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise ArtifactError(
                f"bucket {bucket} exists but not in account {account} (or is not readable): the model would go to "
                f"someone else's bucket ({_code(exc)}); pass --model-data-url with a bucket of yours"
            ) from exc
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
        ExpectedBucketOwner=account,
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
        ExpectedBucketOwner=account,
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _matches(s3: S3Client, bucket: str, key: str, account: str, digest: Digest) -> bool | None:
    """Whether the object at the key is this artifact (its recorded SHA-256, or S3's own checksum of it), None
    when there is no object."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", ExpectedBucketOwner=account)
    except ClientError as exc:
        if _code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return head.get("Metadata", {}).get(DIGEST_METADATA) == digest.hex or head.get("ChecksumSHA256") == digest.base64


def upload_once(s3: S3Client, artifact: Path, bucket: str, account: str) -> Upload:
    """Upload ``artifact`` to ``s3://bucket/<PREFIX><sha256>/model.tar.gz`` unless it is already there.

    The write is conditional (``If-None-Match: *``), checksummed and bound to the bucket's owner, so two deploys
    racing cannot overwrite each other, S3 refuses a corrupted upload, and nothing goes to a bucket of another
    account. An object already at the key that is not this artifact (by its recorded digest or its checksum) is
    refused loudly: someone wrote it by hand, and serving it would not be serving this artifact.
    """
    digest = sha256_of(artifact)
    key = content_key(digest)
    url = f"s3://{bucket}/{key}"
    for attempt in range(4):
        found = _matches(s3, bucket, key, account, digest)
        if found is not None:
            if not found:
                raise ArtifactError(
                    f"{url} already holds an object that is not this artifact (its SHA-256 differs or is unknown): "
                    f"keys under {PREFIX} are written only by asyncinfer deploy; delete that object or upload the "
                    "model elsewhere and pass --model-data-url"
                )
            return Upload(url, created=False)
        try:
            _put(s3, artifact, bucket, key, account, digest)
            return Upload(url, created=True)
        except ClientError as exc:
            # 412: another deploy wrote it first (check what it wrote); 409: S3 asks to retry a concurrent write.
            if _code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                raise
            time.sleep(0.2 * (attempt + 1))
    raise ArtifactError(f"could not upload {url}: concurrent writes kept conflicting")


def _put(s3: S3Client, artifact: Path, bucket: str, key: str, account: str, digest: Digest) -> None:
    metadata = {DIGEST_METADATA: digest.hex}
    if artifact.stat().st_size <= SINGLE_PUT_LIMIT:
        with artifact.open("rb") as body:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                Metadata=metadata,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=digest.base64,
                IfNoneMatch="*",
                ExpectedBucketOwner=account,
            )
        return
    # In parts: the transfer manager takes no If-None-Match (the HeadObject above stands in for it).
    s3.upload_file(
        str(artifact),
        bucket,
        key,
        ExtraArgs={"ChecksumAlgorithm": "SHA256", "Metadata": metadata, "ExpectedBucketOwner": account},
    )

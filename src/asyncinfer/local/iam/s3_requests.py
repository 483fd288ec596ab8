"""S3 REST requests as AWS authorizes them (Service Authorization Reference, "Actions, resources, and condition keys
for Amazon S3", API operations table).

Addressing: path-style (``/bucket/key``, what the local stack uses) and virtual-host (``bucket.s3.…``,
``bucket.localhost``). Keys are percent-decoded into ``arn:aws:s3:::bucket/key``. A ``versionId`` selects the
``*Version*`` action variant; a Range changes nothing. Every bucket and object check carries ``s3:ResourceAccount``
(all local buckets belong to the stack's account) and, for a version, ``s3:versionid``."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import unquote
from xml.etree import ElementTree

from asyncinfer.local.iam.check_sets import unique
from asyncinfer.local.iam.checks import Check, ContextValue, MappedRequest, UnmappedRequest

# Sub-resources of a bucket: query key → (operation, action) per method.
_BUCKET_GET = {
    "list-type": ("ListObjectsV2", "s3:ListBucket"),
    "versions": ("ListObjectVersions", "s3:ListBucketVersions"),
    "uploads": ("ListMultipartUploads", "s3:ListBucketMultipartUploads"),
    "tagging": ("GetBucketTagging", "s3:GetBucketTagging"),
    "acl": ("GetBucketAcl", "s3:GetBucketAcl"),
    "versioning": ("GetBucketVersioning", "s3:GetBucketVersioning"),
    "notification": ("GetBucketNotificationConfiguration", "s3:GetBucketNotification"),
    "policy": ("GetBucketPolicy", "s3:GetBucketPolicy"),
    "policyStatus": ("GetBucketPolicyStatus", "s3:GetBucketPolicyStatus"),
    "lifecycle": ("GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration"),
    "location": ("GetBucketLocation", "s3:GetBucketLocation"),
    "cors": ("GetBucketCors", "s3:GetBucketCORS"),
    "encryption": ("GetBucketEncryption", "s3:GetEncryptionConfiguration"),
    "publicAccessBlock": ("GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock"),
    "ownershipControls": ("GetBucketOwnershipControls", "s3:GetBucketOwnershipControls"),
    "object-lock": ("GetObjectLockConfiguration", "s3:GetBucketObjectLockConfiguration"),
    "website": ("GetBucketWebsite", "s3:GetBucketWebsite"),
    "logging": ("GetBucketLogging", "s3:GetBucketLogging"),
    "replication": ("GetBucketReplication", "s3:GetReplicationConfiguration"),
    "accelerate": ("GetBucketAccelerateConfiguration", "s3:GetAccelerateConfiguration"),
    "requestPayment": ("GetBucketRequestPayment", "s3:GetBucketRequestPayment"),
}
_BUCKET_PUT = {
    "tagging": ("PutBucketTagging", "s3:PutBucketTagging"),
    "acl": ("PutBucketAcl", "s3:PutBucketAcl"),
    "versioning": ("PutBucketVersioning", "s3:PutBucketVersioning"),
    "notification": ("PutBucketNotificationConfiguration", "s3:PutBucketNotification"),
    "policy": ("PutBucketPolicy", "s3:PutBucketPolicy"),
    "lifecycle": ("PutBucketLifecycleConfiguration", "s3:PutLifecycleConfiguration"),
    "cors": ("PutBucketCors", "s3:PutBucketCORS"),
    "encryption": ("PutBucketEncryption", "s3:PutEncryptionConfiguration"),
    "publicAccessBlock": ("PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
    "ownershipControls": ("PutBucketOwnershipControls", "s3:PutBucketOwnershipControls"),
    "object-lock": ("PutObjectLockConfiguration", "s3:PutBucketObjectLockConfiguration"),
    "website": ("PutBucketWebsite", "s3:PutBucketWebsite"),
    "logging": ("PutBucketLogging", "s3:PutBucketLogging"),
    "replication": ("PutBucketReplication", "s3:PutReplicationConfiguration"),
    "accelerate": ("PutBucketAccelerateConfiguration", "s3:PutAccelerateConfiguration"),
    "requestPayment": ("PutBucketRequestPayment", "s3:PutBucketRequestPayment"),
}
# Deleting a bucket configuration is authorized as writing it, except policy and website (their own actions).
_BUCKET_DELETE = {
    "tagging": ("DeleteBucketTagging", "s3:PutBucketTagging"),
    "policy": ("DeleteBucketPolicy", "s3:DeleteBucketPolicy"),
    "lifecycle": ("DeleteBucketLifecycle", "s3:PutLifecycleConfiguration"),
    "cors": ("DeleteBucketCors", "s3:PutBucketCORS"),
    "encryption": ("DeleteBucketEncryption", "s3:PutEncryptionConfiguration"),
    "publicAccessBlock": ("DeletePublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
    "ownershipControls": ("DeleteBucketOwnershipControls", "s3:PutBucketOwnershipControls"),
    "website": ("DeleteBucketWebsite", "s3:DeleteBucketWebsite"),
    "replication": ("DeleteBucketReplication", "s3:PutReplicationConfiguration"),
}
# Parameters of a ListObjects (v1) call, which has no sub-resource of its own.
_LIST_PARAMETERS = frozenset({"prefix", "delimiter", "marker", "max-keys", "encoding-type"})
# Sub-resources of an object: query key → (operation, action, action for a version).
_OBJECT_GET = {
    "tagging": ("GetObjectTagging", "s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    "acl": ("GetObjectAcl", "s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
    "attributes": ("GetObjectAttributes", "s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
    "torrent": ("GetObjectTorrent", "s3:GetObjectTorrent", "s3:GetObjectVersionTorrent"),
    "retention": ("GetObjectRetention", "s3:GetObjectRetention", "s3:GetObjectRetention"),
    "legal-hold": ("GetObjectLegalHold", "s3:GetObjectLegalHold", "s3:GetObjectLegalHold"),
    "uploadId": ("ListParts", "s3:ListMultipartUploadParts", "s3:ListMultipartUploadParts"),
}
_OBJECT_PUT = {
    "tagging": ("PutObjectTagging", "s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    "acl": ("PutObjectAcl", "s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
    "retention": ("PutObjectRetention", "s3:PutObjectRetention", "s3:PutObjectRetention"),
    "legal-hold": ("PutObjectLegalHold", "s3:PutObjectLegalHold", "s3:PutObjectLegalHold"),
}
# Request headers of a write that need a second permission (SAR: PutObject, CopyObject, CreateMultipartUpload).
_WRITE_HEADER_ACTIONS = (
    (("x-amz-acl", "x-amz-grant-full-control", "x-amz-grant-read", "x-amz-grant-read-acp", "x-amz-grant-write-acp"),
     "s3:PutObjectAcl"),
    (("x-amz-tagging",), "s3:PutObjectTagging"),
    (("x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date"), "s3:PutObjectRetention"),
    (("x-amz-object-lock-legal-hold",), "s3:PutObjectLegalHold"),
)  # fmt: skip


def needs_body(method: str, query: Mapping[str, str]) -> bool:
    """Only ``POST ?delete`` (DeleteObjects) names its resources in the body; object data is never read."""
    return method == "POST" and "delete" in query


def map_s3(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes, account: str
) -> MappedRequest:
    """The operation and checks of one S3 request."""
    # Signing (presigned URL) and SDK routing parameters name no sub-resource.
    query = {name: value for name, value in query.items() if not _is_signing_parameter(name)}
    bucket, key = _bucket_and_key(path, headers.get("host", ""))
    if not bucket:
        if method == "GET":
            return MappedRequest("s3:ListBuckets", (Check("s3:ListAllMyBuckets", "*"),))
        raise UnmappedRequest(f"s3: {method} on the service root is not mapped")
    if key is None:
        return _bucket_request(method, bucket, query, body, account)
    return _object_request(method, bucket, key, query, headers, account)


def _is_signing_parameter(name: str) -> bool:
    return name.lower().startswith("x-amz-") or name in {"x-id", "AWSAccessKeyId", "Signature", "Expires"}


def _bucket_and_key(path: str, host: str) -> tuple[str, str | None]:
    """The bucket and (percent-decoded) key; the key is None for a bucket request, "" never."""
    bucket = _virtual_host_bucket(host)
    rest = path.lstrip("/")
    if bucket is None:
        bucket, slash, rest = rest.partition("/")
        if not slash:
            rest = ""
    return unquote(bucket), unquote(rest) if rest else None


def _virtual_host_bucket(host: str) -> str | None:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        return None
    for marker in (".s3.", ".s3-"):
        if marker in name:
            return name.split(marker, 1)[0]
    if name.endswith(".localhost"):
        return name[: -len(".localhost")]
    return None


def _context(account: str, version: str | None = None) -> dict[str, ContextValue]:
    context: dict[str, ContextValue] = {"s3:ResourceAccount": account}
    if version is not None:
        context["s3:versionid"] = version
    return context


def _bucket_request(method: str, bucket: str, query: Mapping[str, str], body: bytes, account: str) -> MappedRequest:
    arn = f"arn:aws:s3:::{bucket}"
    if method == "POST" and "delete" in query:
        return MappedRequest("s3:DeleteObjects", _delete_objects_checks(bucket, body, account))
    table = {"GET": _BUCKET_GET, "PUT": _BUCKET_PUT, "DELETE": _BUCKET_DELETE}.get(method, {})
    for name, (operation, action) in table.items():
        if name in query:
            return MappedRequest(f"s3:{operation}", (Check(action, arn, _list_context(action, query, account)),))
    plain = {
        "GET": ("ListObjects", "s3:ListBucket"),
        "HEAD": ("HeadBucket", "s3:ListBucket"),
        "PUT": ("CreateBucket", "s3:CreateBucket"),
        "DELETE": ("DeleteBucket", "s3:DeleteBucket"),
    }.get(method)
    unknown = sorted(
        set(query) - ({"prefix", "delimiter", "marker", "max-keys", "encoding-type"} if method == "GET" else set())
    )
    if plain is None or unknown:
        raise UnmappedRequest(f"s3: {method} on bucket {bucket} with {unknown or 'no'} sub-resource is not mapped")
    operation, action = plain
    context = _list_context(action, query, account) if method == "GET" else _context(account)
    return MappedRequest(f"s3:{operation}", (Check(action, arn, context),))


def _list_context(action: str, query: Mapping[str, str], account: str) -> dict[str, ContextValue]:
    """A listing's condition keys (s3:prefix, s3:delimiter, s3:max-keys) from its parameters, when given."""
    context = _context(account)
    if action in {"s3:ListBucket", "s3:ListBucketVersions"}:
        for name in ("prefix", "delimiter", "max-keys"):
            if name in query:
                context[f"s3:{name}"] = query[name]
    return context


def _delete_objects_checks(bucket: str, body: bytes, account: str) -> tuple[Check, ...]:
    """One check per key of a DeleteObjects body: s3:DeleteObject, or s3:DeleteObjectVersion with a VersionId."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise UnmappedRequest(f"s3:DeleteObjects body is not XML ({exc})") from exc
    checks: list[Check] = []
    for element in root.iter():
        if element.tag.rpartition("}")[2] != "Object":
            continue
        fields = {child.tag.rpartition("}")[2]: child.text or "" for child in element}
        if not fields.get("Key"):
            raise UnmappedRequest("s3:DeleteObjects names an object without a Key")
        version = fields.get("VersionId")
        action = "s3:DeleteObjectVersion" if version is not None else "s3:DeleteObject"
        checks.append(Check(action, f"arn:aws:s3:::{bucket}/{fields['Key']}", _context(account, version)))
    if not checks:
        raise UnmappedRequest("s3:DeleteObjects names no object")
    return unique(checks)


def _object_request(
    method: str, bucket: str, key: str, query: Mapping[str, str], headers: Mapping[str, str], account: str
) -> MappedRequest:
    arn = f"arn:aws:s3:::{bucket}/{key}"
    version = query.get("versionId")
    if method == "GET":
        for name, (operation, action, versioned) in _OBJECT_GET.items():
            if name in query:
                return _one(operation, versioned if version is not None else action, arn, account, version)
        if "select" in query:
            return _one("SelectObjectContent", "s3:GetObject", arn, account, None)
        return _read("GetObject", arn, account, version)
    if method == "HEAD":
        return _read("HeadObject", arn, account, version)
    if method == "PUT":
        return _object_put(bucket, key, query, headers, account)
    if method == "POST":
        if "uploads" in query:
            return MappedRequest("s3:CreateMultipartUpload", _write_checks(arn, headers, account))
        if "uploadId" in query:
            return _one("CompleteMultipartUpload", "s3:PutObject", arn, account, None)
        if "restore" in query:
            return _one("RestoreObject", "s3:RestoreObject", arn, account, version)
        if "select" in query:
            return _one("SelectObjectContent", "s3:GetObject", arn, account, None)
    if method == "DELETE":
        if "uploadId" in query:
            return _one("AbortMultipartUpload", "s3:AbortMultipartUpload", arn, account, None)
        if "tagging" in query:
            action = "s3:DeleteObjectVersionTagging" if version is not None else "s3:DeleteObjectTagging"
            return _one("DeleteObjectTagging", action, arn, account, version)
        if not set(query) - {"versionId"}:
            action = "s3:DeleteObjectVersion" if version is not None else "s3:DeleteObject"
            return _one("DeleteObject", action, arn, account, version)
    raise UnmappedRequest(f"s3: {method} on object {arn} with {sorted(query) or 'no'} sub-resource is not mapped")


def _one(operation: str, action: str, arn: str, account: str, version: str | None) -> MappedRequest:
    return MappedRequest(f"s3:{operation}", (Check(action, arn, _context(account, version)),))


def _read(operation: str, arn: str, account: str, version: str | None) -> MappedRequest:
    action = "s3:GetObjectVersion" if version is not None else "s3:GetObject"
    return _one(operation, action, arn, account, version)


def _object_put(
    bucket: str, key: str, query: Mapping[str, str], headers: Mapping[str, str], account: str
) -> MappedRequest:
    arn = f"arn:aws:s3:::{bucket}/{key}"
    version = query.get("versionId")
    copy_source = headers.get("x-amz-copy-source")
    if "uploadId" in query and "partNumber" in query:
        if copy_source:
            put = Check("s3:PutObject", arn, _context(account))
            return MappedRequest("s3:UploadPartCopy", (*_copy_source_checks(copy_source, account), put))
        return _one("UploadPart", "s3:PutObject", arn, account, None)
    for name, (operation, action, versioned) in _OBJECT_PUT.items():
        if name in query:
            return _one(operation, versioned if version is not None else action, arn, account, version)
    if query:
        raise UnmappedRequest(f"s3: PUT on object {arn} with {sorted(query)} sub-resource is not mapped")
    if copy_source:
        return MappedRequest(
            "s3:CopyObject", (*_copy_source_checks(copy_source, account), *_write_checks(arn, headers, account))
        )
    return MappedRequest("s3:PutObject", _write_checks(arn, headers, account))


def _write_checks(arn: str, headers: Mapping[str, str], account: str) -> tuple[Check, ...]:
    """s3:PutObject, plus the permission each ACL, tagging or object-lock header of the write needs."""
    checks = [Check("s3:PutObject", arn, _context(account))]
    for names, action in _WRITE_HEADER_ACTIONS:
        if any(headers.get(name) for name in names):
            checks.append(Check(action, arn, _context(account)))
    return tuple(checks)


def _copy_source_checks(copy_source: str, account: str) -> tuple[Check, ...]:
    """Reading a copy's source: ``/bucket/key`` or ``bucket/key``, percent-encoded, ``?versionId=`` optional."""
    source, _, source_query = copy_source.partition("?")
    bucket, slash, key = unquote(source).lstrip("/").partition("/")
    if not bucket or not slash or not key or bucket.startswith("arn:"):
        raise UnmappedRequest(f"s3: copy source {copy_source!r} is not a bucket/key")
    version = None
    for pair in source_query.split("&"):
        name, _, value = pair.partition("=")
        if name == "versionId":
            version = unquote(value)
    action = "s3:GetObjectVersion" if version is not None else "s3:GetObject"
    return (Check(action, f"arn:aws:s3:::{bucket}/{key}", _context(account, version)),)

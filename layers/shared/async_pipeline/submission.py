"""Submitting input objects to the asynchronous endpoint: the submitter's use case.

Per object: read the exact object version (one ranged GetObject: its size, its type, its user metadata and, when it
fits, its bytes), claim the inference id with that metadata (one conditional write), reject what the endpoint cannot
take, call ``InvokeEndpointAsync``, confirm. Duplicate or concurrent deliveries stop at the claim (after one wasted
ranged GET). Reading before claiming means every job the endpoint can answer already has its metadata on the record:
the topic handlers never read the input (no S3 grant on the payloads), even when the submitter died after the call.

What the endpoint infers is always the version that triggered the job: SageMaker reads an ``InputLocation`` when it
processes the request, as the key's current version, so the user's key is never sent. Inputs up to 128,000 bytes
go inline (``Body``); larger ones are copied by version to the staging place (:mod:`async_pipeline.staging`), and
that copy's plain-ASCII URI is the ``InputLocation``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from async_pipeline import completion, content_types, inference_ids, output_names, s3_events, staging, user_metadata
from async_pipeline.batch_reports import BatchReport, RecordFailure
from async_pipeline.clock import Clock
from async_pipeline.completion import Publisher
from async_pipeline.jobs import Job, JobStatus, JobStore, Terminal
from async_pipeline.s3_events import S3ObjectCreated
from async_pipeline.staging import StagingPlace

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectRequestTypeDef
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_sagemaker_runtime.type_defs import InvokeEndpointAsyncInputTypeDef

MAX_INPUT_BYTES = 1_000_000_000  # InvokeEndpointAsync reads up to 1 GB from S3
MAX_INLINE_BYTES = 128_000  # InvokeEndpointAsync's Body: at most 128,000 bytes
# One GetObject tells the size (Content-Range), the type, and gives the whole object when it can go inline.
_FIRST_BYTES = f"bytes=0-{MAX_INLINE_BYTES - 1}"
# Gone: the version was deleted, or (no version id) the key no longer has the event's ETag.
_MISSING_OBJECT = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound", "412", "PreconditionFailed"})
_EMPTY_OBJECT = frozenset({"416", "InvalidRange"})  # S3's answer to a range of an empty object


class SubmissionAction(StrEnum):
    SUBMITTED = "submitted"
    DUPLICATE = "duplicate"  # already submitted (or finished) for this object version
    IN_PROGRESS = "in_progress"  # a live invocation holds the claim
    REJECTED = "rejected"  # recorded FAILED without calling the endpoint; failure event published
    REPUBLISHED = "republished"  # a rejection whose event was still owed
    IGNORED = "ignored"  # test event, folder key, not a creation


class TransientFailure(RuntimeError):
    """The object could not be submitted now; the claim was released and a retry will try again."""


@dataclass(frozen=True, slots=True)
class Settings:
    endpoint_name: str
    default_content_type: str
    accept: str | None = None
    request_ttl_seconds: int | None = None
    invocation_timeout_seconds: int | None = None
    staging: StagingPlace | None = None  # where inputs over MAX_INLINE_BYTES are copied (STAGING_LOCATION)


@dataclass(frozen=True, slots=True)
class InputObject:
    """What one ranged GetObject of the version tells: its size, its type, its user metadata, and its bytes when
    they go inline."""

    size: int
    content_type: str | None
    body: bytes | None
    metadata: dict[str, str]


def total_size(content_range: str | None, content_length: int | None) -> int:
    """The object's size from a ranged GetObject: ``Content-Range: bytes 0-N/SIZE``, else (the range was ignored,
    or the size is unknown) the length of what came back."""
    if content_range:
        _, _, size = content_range.rpartition("/")
        if size.strip().isdigit():
            return int(size)
    return int(content_length or 0)


@dataclass(frozen=True, slots=True)
class SubmissionOutcome:
    action: SubmissionAction
    uri: str | None = None
    inference_id: str | None = None
    reason: str | None = None


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", exc))


class _VersionGone(Exception):
    """The input's version (or, unversioned, its event's ETag) is no longer there: the job is rejected, not retried."""


@contextmanager
def _reading_input(operation: str, obj: S3ObjectCreated) -> Iterator[None]:
    """How S3 errors on the input read as outcomes: gone (_VersionGone), or transient (retried by Lambda)."""
    try:
        yield
    except ClientError as exc:
        if _error_code(exc) in _MISSING_OBJECT:
            raise _VersionGone from exc
        raise TransientFailure(f"{operation} {obj.uri}: {_error_code(exc)} {_error_message(exc)}") from exc
    except BotoCoreError as exc:
        raise TransientFailure(f"{operation} {obj.uri}: {exc}") from exc


# Public: the soak's audit tells a version gone before it was read (so no metadata is known) by this reason.
VERSION_GONE = "the input object (this version) no longer exists"


class Submitter:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        s3: S3Client,
        runtime: SageMakerRuntimeClient,
        publisher: Publisher,
    ) -> None:
        self._settings = settings
        self._store = store
        self._s3 = s3
        self._runtime = runtime
        self._publisher = publisher

    def submit(self, obj: S3ObjectCreated, clock: Clock) -> SubmissionOutcome:
        identity = inference_ids.identify(obj)
        job = Job(
            inference_id=identity.inference_id,
            status=JobStatus.SUBMITTING,
            input_location=obj.uri,
            endpoint_name=self._settings.endpoint_name,
            version_source=identity.version_source,
            object_version=identity.version,
            object_size=obj.size,
            received_time=obj.event_time,
        )
        # Read before claiming, so that the claim records the metadata before the endpoint can answer.
        source: InputObject | None = None  # None: the version is gone (claimed, then rejected)
        read_error: Exception | None = None  # raised once claimed, so the record shows the attempt and its error
        try:
            with _reading_input("GetObject", obj):
                source = self._read(obj)
            job.metadata = source.metadata
        except _VersionGone:
            pass
        except Exception as exc:
            read_error = exc
        claim = self._store.claim(job, lease_expires_at_ms=clock.deadline_ms, now_s=clock.now_s())
        if not claim.claimed:
            return self._already_claimed(obj, claim.job, clock)
        try:
            if read_error is not None:
                raise read_error
            accepted = self._invoke_claimed(obj, job, source, clock)
        except Exception as exc:
            # Nothing reached the endpoint: give the claim back so the retry can take it at once.
            reason = str(exc) if isinstance(exc, TransientFailure) else f"{type(exc).__name__}: {exc}"
            self._store.release(job, reason=reason, now_s=clock.now_s())
            raise
        if isinstance(accepted, SubmissionOutcome):
            return accepted
        response = accepted
        # The endpoint has the request. Whatever happens to the confirmation, the claim must not be released:
        # a retry would invoke a second time. An unconfirmed SUBMITTING job is finished by its notification.
        try:
            self._store.mark_submitted(
                job,
                output_location=response.get("OutputLocation"),
                failure_location=response.get("FailureLocation"),
                submitted_at=clock.now_iso(),
                now_s=clock.now_s(),
            )
        except (ClientError, BotoCoreError) as exc:
            return SubmissionOutcome(
                SubmissionAction.SUBMITTED, obj.uri, job.inference_id, f"submitted; confirmation not recorded: {exc}"
            )
        return SubmissionOutcome(SubmissionAction.SUBMITTED, obj.uri, job.inference_id)

    def _already_claimed(self, obj: S3ObjectCreated, existing: Job, clock: Clock) -> SubmissionOutcome:
        if existing.owes_event(clock.now_ms()):
            completion.publish_owed(self._store, self._publisher, existing, clock)
            return SubmissionOutcome(
                SubmissionAction.REPUBLISHED, obj.uri, existing.inference_id, existing.failure_reason
            )
        if existing.status is JobStatus.SUBMITTING:
            return SubmissionOutcome(SubmissionAction.IN_PROGRESS, obj.uri, existing.inference_id)
        return SubmissionOutcome(
            SubmissionAction.DUPLICATE, obj.uri, existing.inference_id, f"already {existing.status}"
        )

    def _invoke_claimed(
        self, obj: S3ObjectCreated, job: Job, source: InputObject | None, clock: Clock
    ) -> SubmissionOutcome | Mapping[str, Any]:
        """Call the endpoint for a claimed job whose version was read (``source``; None when it was gone): its
        response, or the outcome of a rejection."""
        if source is None:
            return self._reject(obj, job, VERSION_GONE, clock)

        def reject(reason: str) -> SubmissionOutcome:
            return self._reject(obj, job, reason, clock, source.metadata)

        if source.size == 0:
            return reject("the input object is empty (0 bytes); the endpoint needs a payload")
        if source.size > MAX_INPUT_BYTES:
            return reject(f"the input object is {source.size} bytes; InvokeEndpointAsync takes at most 1 GB")
        try:
            attributes = user_metadata.custom_attributes(source.metadata)
        except user_metadata.InvalidCustomAttributes as exc:
            return reject(str(exc))
        content_type, _source = content_types.choose(source.content_type, obj.key, self._settings.default_content_type)
        request: InvokeEndpointAsyncInputTypeDef = {
            "EndpointName": self._settings.endpoint_name,
            "ContentType": content_type,
            "InferenceId": job.inference_id,
            # Outputs and failures under the input's folder, named after the inference id: a second call for the
            # same job (a retry after a crash) writes the same objects, unless the two calls end differently.
            "Filename": output_names.filename_for(job.inference_id),
        }
        extension = output_names.path_extension_for(obj.key)
        if extension:
            request["S3OutputPathExtension"] = extension
        if attributes is not None:
            request["CustomAttributes"] = attributes
        if source.body is not None:
            request["Body"] = source.body
        else:
            staged = self._stage(obj, job, clock, source.metadata)
            if isinstance(staged, SubmissionOutcome):
                return staged
            request["InputLocation"] = staged
        if self._settings.accept:
            request["Accept"] = self._settings.accept
        if self._settings.request_ttl_seconds:
            request["RequestTTLSeconds"] = self._settings.request_ttl_seconds
        if self._settings.invocation_timeout_seconds:
            request["InvocationTimeoutSeconds"] = self._settings.invocation_timeout_seconds
        try:
            response: Mapping[str, Any] = self._runtime.invoke_endpoint_async(**request)
        except ParamValidationError as exc:  # the request breaks the API's constraints: retrying cannot help
            return reject(f"InvokeEndpointAsync cannot take this request: {exc}")
        except ClientError as exc:
            code, message = _error_code(exc), _error_message(exc)
            # A missing endpoint is an environment problem (being created, wrong name): retry, then dead-letter.
            if code == "ValidationError" and "not found" not in message.lower():
                return reject(f"InvokeEndpointAsync rejected the request: {message}")
            raise TransientFailure(f"InvokeEndpointAsync {obj.uri}: {code} {message}") from exc
        except BotoCoreError as exc:
            raise TransientFailure(f"InvokeEndpointAsync {obj.uri}: {exc}") from exc
        return response

    def _read(self, obj: S3ObjectCreated) -> InputObject:
        """One GetObject of the exact version (its first MAX_INLINE_BYTES bytes): size, type, user metadata, and
        the bytes when the whole object fits inline. Without a version id, only if the key still has the event's ETag.
        """
        whole: GetObjectRequestTypeDef = {"Bucket": obj.bucket, "Key": obj.key}
        if obj.version_id:
            whole["VersionId"] = obj.version_id
        elif obj.etag:
            whole["IfMatch"] = s3_events.quoted_etag(obj.etag)
        params: GetObjectRequestTypeDef = {**whole, "Range": _FIRST_BYTES}
        try:
            response = self._s3.get_object(**params)
        except ClientError as exc:
            if _error_code(exc) not in _EMPTY_OBJECT:
                raise
            # An empty object refuses any range, and the refusal carries no metadata: read it whole (0 bytes).
            response = self._s3.get_object(**whole)
        stream = response["Body"]
        try:
            size = total_size(response.get("ContentRange"), response.get("ContentLength"))
            body = stream.read() if 0 < size <= MAX_INLINE_BYTES else None
        finally:
            stream.close()
        if body is not None and len(body) != size:
            raise TransientFailure(f"GetObject {obj.uri}: read {len(body)} of {size} bytes")
        metadata = user_metadata.decoded(response.get("Metadata") or {})
        return InputObject(size, response.get("ContentType"), body, metadata)

    def _stage(self, obj: S3ObjectCreated, job: Job, clock: Clock, metadata: dict[str, str]) -> str | SubmissionOutcome:
        """The staged copy's URI (the same key on every attempt: a retry after a crash copies the same bytes again),
        or the outcome of a rejection when the version vanished meanwhile."""
        place = self._settings.staging
        if place is None:
            raise TransientFailure(f"{obj.uri}: over {MAX_INLINE_BYTES} bytes and no staging place is configured")
        try:
            with _reading_input("CopyObject", obj):
                return staging.stage(
                    self._s3,
                    place,
                    job.inference_id,
                    bucket=obj.bucket,
                    key=obj.key,
                    version_id=obj.version_id,
                    etag=obj.etag,
                )
        except _VersionGone:
            return self._reject(obj, job, VERSION_GONE, clock, metadata)

    def _reject(
        self, obj: S3ObjectCreated, job: Job, reason: str, clock: Clock, metadata: dict[str, str] | None = None
    ) -> SubmissionOutcome:
        terminal = Terminal(
            status=JobStatus.FAILED,
            completed_time=clock.now_iso(),
            failure_reason=reason,
            received_time=obj.event_time,
            duration_ms=None,
            endpoint_name=self._settings.endpoint_name,
            input_location=obj.uri,
            metadata=metadata,
        )
        completion.finalize(self._store, self._publisher, job.inference_id, terminal, clock)
        return SubmissionOutcome(SubmissionAction.REJECTED, obj.uri, job.inference_id, reason)


def submit_event(event: Mapping[str, Any], submitter: Submitter, clock: Clock) -> BatchReport[SubmissionOutcome]:
    """Handle every record of an S3 event; failures are collected, not raised, so every record gets its turn."""
    report: BatchReport[SubmissionOutcome] = BatchReport()
    for result in s3_events.parse_event(event):
        if result.error is not None:
            report.failures.append(RecordFailure(f"record {result.index}: {result.error}", result.index))
            continue
        if result.skip_reason is not None or result.obj is None:
            uri = result.obj.uri if result.obj else None
            report.outcomes.append(SubmissionOutcome(SubmissionAction.IGNORED, uri, reason=result.skip_reason))
            continue
        where = f"record {result.index} ({result.obj.uri})"
        try:
            report.outcomes.append(submitter.submit(result.obj, clock))
        except (TransientFailure, inference_ids.MissingObjectVersion) as exc:
            report.failures.append(RecordFailure(f"{where}: {exc}", result.index, exc))
        except Exception as exc:  # one record's surprise must not cost the others their turn
            report.failures.append(RecordFailure(f"{where}: {type(exc).__name__}: {exc}", result.index, exc))
    return report

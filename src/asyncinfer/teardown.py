"""Deleting a stack: what it keeps, what ``--purge`` empties first, and the calls that do it.

CloudFormation cannot delete a bucket that holds anything, and a versioned bucket is empty only once every object
version and every delete marker is gone, so a plain ``sam delete`` of this stack ends in DELETE_FAILED. The template
keeps the data instead (``DeletionPolicy: Retain`` on the buckets, their policies and the jobs table): deleting the
stack removes everything else and leaves those, which are then listed. With ``purge`` every bucket of the stack is
emptied first, the stack is deleted, and the retained resources are deleted afterwards by these functions (a
retained resource outlives its stack, so nothing else would ever delete it).

The local stack holds everything in the memory of its moto process, so nothing can outlive it: there, deleting
without ``purge`` is refused (it could keep nothing), and ``purge`` runs the same emptying and deletions against the
running stack's APIs before stopping it.

Planning is pure (:func:`plan`, :func:`refusals`, :func:`failure_reasons`, :func:`deletion_policies`); the AWS calls
take their clients as arguments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

BUCKET = "AWS::S3::Bucket"
TABLE = "AWS::DynamoDB::Table"
DATA_TYPES = frozenset({BUCKET, TABLE})
#: DeletionPolicy values that leave the resource in place when its stack is deleted.
RETAINING_POLICIES = frozenset({"Retain", "RetainExceptOnCreate"})
#: Retained resources that disappear with the bucket they are attached to (nothing to delete on their own).
REMOVED_WITH_THEIR_BUCKET = frozenset({"AWS::S3::BucketPolicy"})
#: DeleteObjects takes at most 1000 keys per request (S3 API reference).
MAX_DELETE_BATCH = 1000
#: Per-key DeleteObjects errors worth another try; any other (AccessDenied, an object lock...) is reported.
RETRYABLE_KEY_ERRORS = frozenset({"InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout"})
#: Stack statuses in which CloudFormation refuses a DeleteStack or would act on a stack still changing.
BUSY_SUFFIX = "_IN_PROGRESS"

Step = Callable[[str], None]


class TeardownError(RuntimeError):
    """Deleting cannot go on; the message says what was (and was not) deleted and what to do."""


class Refused(TeardownError):
    """Deleting would lose data or fail half-way; nothing was deleted."""


# --------------------------------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    physical_id: str  # "" where unknown (e.g. a resource the local stack does not emulate)
    retained: bool
    arn: str | None = None

    @property
    def is_data(self) -> bool:
        return self.type in DATA_TYPES

    def describe(self) -> str:
        kind = {BUCKET: "bucket", TABLE: "table"}.get(self.type, self.type)
        return f"{self.logical_id} ({kind} {self.physical_id or '?'})"


@dataclass(frozen=True)
class Plan:
    """What deleting a stack does: ``kept`` survives it; with ``purge`` every bucket is emptied first and the
    retained resources are deleted once the stack is gone."""

    stack_name: str
    stack_id: str  # its ARN
    region: str
    purge: bool
    resources: tuple[Resource, ...]
    local: bool = False
    already_deleted: bool = False  # the stack is gone; what it retained may still be there

    @property
    def retained(self) -> tuple[Resource, ...]:
        return tuple(r for r in self.resources if r.retained)

    @property
    def kept(self) -> tuple[Resource, ...]:
        return () if self.purge else self.retained

    @property
    def buckets(self) -> tuple[Resource, ...]:
        return tuple(r for r in self.resources if r.type == BUCKET and r.physical_id)

    @property
    def unretained_data(self) -> tuple[Resource, ...]:
        return tuple(r for r in self.resources if r.is_data and not r.retained and r.physical_id)

    @property
    def deleted_afterwards(self) -> tuple[Resource, ...]:
        """What the command itself deletes once the stack is gone (purge): the retained data resources."""
        return tuple(r for r in self.retained if r.is_data and r.physical_id) if self.purge else ()

    @property
    def left_over(self) -> tuple[Resource, ...]:
        """Retained resources even purge cannot delete (a type this module does not know how to delete)."""
        if not self.purge:
            return ()
        return tuple(r for r in self.retained if not r.is_data and r.type not in REMOVED_WITH_THEIR_BUCKET)


def deletion_policies(template: Mapping[str, Any] | str) -> dict[str, str]:
    """Each resource's DeletionPolicy in a template (a parsed one, or its JSON or YAML text; CloudFormation's
    default, Delete, where it says none)."""
    parsed: Mapping[str, Any]
    if isinstance(template, str):
        from cfnlint.decode import cfn_yaml

        # YAML with CloudFormation's short forms (!Ref, !Sub); JSON is YAML too.
        parsed = cfn_yaml.loads(template)
    else:
        parsed = template
    resources: Mapping[str, Mapping[str, Any]] = parsed.get("Resources", {})
    return {logical: str(resource.get("DeletionPolicy", "Delete")) for logical, resource in resources.items()}


def arn_of(resource_type: str, name: str, partition: str, region: str, account: str) -> str | None:
    if resource_type == BUCKET:
        return f"arn:{partition}:s3:::{name}"
    if resource_type == TABLE:
        return f"arn:{partition}:dynamodb:{region}:{account}:table/{name}"
    return None


def plan(
    stack_name: str,
    stack_id: str,
    resources: Iterable[tuple[str, str, str]],
    policies: Mapping[str, str],
    purge: bool,
    local: bool = False,
) -> Plan:
    """The plan for a stack (its id is its ARN) holding ``resources`` (logical id, type, physical id) under the
    DeletionPolicy of each in ``policies``."""
    _, partition, _, region, account, *_ = stack_id.split(":") + [""] * 6
    return Plan(
        stack_name=stack_name,
        stack_id=stack_id,
        region=region,
        purge=purge,
        local=local,
        resources=tuple(
            Resource(
                logical_id=logical,
                type=kind,
                physical_id=physical,
                retained=policies.get(logical, "Delete") in RETAINING_POLICIES,
                arn=arn_of(kind, physical, partition, region, account) if physical else None,
            )
            for logical, kind, physical in resources
        ),
    )


def refusals(teardown: Plan, occupied: Collection[str]) -> list[str]:
    """Why deleting without purge must not start: a resource that is not retained holds data (``occupied``: the
    physical ids of those that do). CloudFormation would fail on such a bucket (DELETE_FAILED, half-way) and would
    delete such a table with its records. Empty without purge, or purge: nothing to refuse."""
    if teardown.purge:
        return []
    reasons = []
    for resource in teardown.unretained_data:
        if resource.physical_id not in occupied:
            continue
        if resource.type == BUCKET:
            reasons.append(
                f"{resource.describe()} is not retained and not empty: CloudFormation cannot delete it (DELETE_FAILED)"
            )
        else:
            reasons.append(f"{resource.describe()} is not retained: deleting the stack would delete its records")
    return reasons


def failure_reasons(events: Iterable[Mapping[str, Any]], stack_name: str) -> list[str]:
    """Why a deletion failed, from the stack's events (newest first, as DescribeStackEvents returns them): every
    DELETE_FAILED since the deletion began, as ``LogicalId: reason``; the stack's own only when no resource said."""
    resource_reasons: list[str] = []
    stack_reasons: list[str] = []
    for event in events:
        is_stack = event.get("ResourceType") == "AWS::CloudFormation::Stack" or (
            event.get("LogicalResourceId") == stack_name and "ResourceType" not in event
        )
        status = event.get("ResourceStatus")
        if is_stack and status == "DELETE_IN_PROGRESS":
            break  # the start of this deletion: older events belong to earlier operations
        if status == "DELETE_FAILED":
            line = f"{event.get('LogicalResourceId')}: {event.get('ResourceStatusReason', 'no reason given')}"
            (stack_reasons if is_stack else resource_reasons).append(line)
    return list(reversed(resource_reasons)) or stack_reasons


# --------------------------------------------------------------------------------------------------------- emptying
@dataclass(frozen=True)
class KeyFailure:
    key: str
    version_id: str
    code: str
    message: str


@dataclass
class Emptied:
    bucket: str
    deleted: int = 0  # object versions and delete markers
    batches: int = 0  # DeleteObjects calls
    failures: list[KeyFailure] = field(default_factory=list)

    def describe_failures(self, limit: int = 3) -> str:
        shown = "; ".join(f"{f.key} ({f.version_id}): {f.code} {f.message}" for f in self.failures[:limit])
        more = f" and {len(self.failures) - limit} more" if len(self.failures) > limit else ""
        return f"{len(self.failures)} version(s) of bucket {self.bucket} could not be deleted: {shown}{more}"


def batches(
    items: Sequence[ObjectIdentifierTypeDef], size: int = MAX_DELETE_BATCH
) -> Iterator[list[ObjectIdentifierTypeDef]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def empty_bucket(
    s3: S3Client,
    bucket: str,
    retries: int = 3,
    backoff_seconds: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    page_size: int = MAX_DELETE_BATCH,
) -> Emptied:
    """Delete every object version and every delete marker of ``bucket``: ListObjectVersions (1000 entries a
    page), DeleteObjects in batches of at most 1000, until a listing shows nothing left but what could not be
    deleted. Keys S3 fails to delete with a transient error are tried again (``retries`` times, backing off); the
    others are returned in ``failures``, never raised, so that the caller reports all of them. A bucket that does not
    exist is empty."""
    from botocore.exceptions import ClientError

    emptied = Emptied(bucket)
    # A page is listed from a marker that still exists: the start, or the last entry of a page whose every entry
    # failed. Listing on from the marker of a page just deleted would name a version that is gone, which S3
    # implementations do not all accept (moto then lists nothing more), so after deleting a page the same place is
    # listed again: what comes next has moved up.
    marker: tuple[str, str] | None = None  # (key, version id)
    failed: set[tuple[str, str]] = set()
    try:
        while True:
            page = (
                s3.list_object_versions(
                    Bucket=bucket, MaxKeys=page_size, KeyMarker=marker[0], VersionIdMarker=marker[1]
                )
                if marker
                else s3.list_object_versions(Bucket=bucket, MaxKeys=page_size)
            )
            listed = [(v["Key"], v["VersionId"]) for v in (*page.get("Versions", []), *page.get("DeleteMarkers", []))]
            fresh: list[ObjectIdentifierTypeDef] = [
                {"Key": key, "VersionId": version} for key, version in listed if (key, version) not in failed
            ]
            for batch in batches(fresh):
                before = len(emptied.failures)
                _delete_batch(s3, emptied, batch, retries, backoff_seconds, sleep)
                failed.update((f.key, f.version_id) for f in emptied.failures[before:])
            if fresh:
                continue
            if not page.get("IsTruncated"):
                return emptied
            marker = (page["NextKeyMarker"], page["NextVersionIdMarker"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise
    return emptied


def _delete_batch(
    s3: S3Client,
    emptied: Emptied,
    batch: list[ObjectIdentifierTypeDef],
    retries: int,
    backoff_seconds: float,
    sleep: Callable[[float], None],
) -> None:
    for attempt in range(retries + 1):
        response = s3.delete_objects(Bucket=emptied.bucket, Delete={"Objects": batch, "Quiet": True})
        emptied.batches += 1
        errors = response.get("Errors", [])
        emptied.deleted += len(batch) - len(errors)
        again = [e for e in errors if e.get("Code") in RETRYABLE_KEY_ERRORS]
        final = [e for e in errors if e.get("Code") not in RETRYABLE_KEY_ERRORS]
        emptied.failures += [
            KeyFailure(e.get("Key", ""), e.get("VersionId", ""), e.get("Code", ""), e.get("Message", "")) for e in final
        ]
        if not again:
            return
        if attempt == retries:
            emptied.failures += [
                KeyFailure(e.get("Key", ""), e.get("VersionId", ""), e.get("Code", ""), e.get("Message", ""))
                for e in again
            ]
            return
        sleep(backoff_seconds * 2**attempt)
        batch = [{"Key": e.get("Key", ""), "VersionId": e.get("VersionId", "")} for e in again]


def bucket_is_empty(s3: S3Client, bucket: str) -> bool:
    """No object version and no delete marker (what S3's DeleteBucket requires); a missing bucket is empty."""
    from botocore.exceptions import ClientError

    try:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return True
        raise
    return not page.get("Versions") and not page.get("DeleteMarkers")


def table_has_items(dynamodb: DynamoDBClient, table: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        return dynamodb.scan(TableName=table, Limit=1)["Count"] > 0
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False
        raise


def occupied(resources: Iterable[Resource], s3: S3Client, dynamodb: DynamoDBClient) -> set[str]:
    """The physical ids of the data resources among ``resources`` that hold anything."""

    def holds_data(resource: Resource) -> bool:
        if resource.type == BUCKET:
            return not bucket_is_empty(s3, resource.physical_id)
        return resource.type == TABLE and table_has_items(dynamodb, resource.physical_id)

    return {resource.physical_id for resource in resources if holds_data(resource)}


def remove_bucket(s3: S3Client, bucket: str, attempts: int = 3) -> Emptied:
    """Empty the bucket, then delete it. DeleteBucket is sent only once ListObjectVersions shows nothing left, so
    a bucket still holding versions is never deleted, whatever the S3 implementation allows (AWS refuses with
    BucketNotEmpty; an emulator might not). Something written meanwhile is emptied again, ``attempts`` times."""
    from botocore.exceptions import ClientError

    total = Emptied(bucket)
    for _ in range(attempts):
        emptied = empty_bucket(s3, bucket)
        total.deleted += emptied.deleted
        total.batches += emptied.batches
        total.failures += emptied.failures
        if emptied.failures:
            raise TeardownError(total.describe_failures())
        if not bucket_is_empty(s3, bucket):
            continue
        try:
            s3.delete_bucket(Bucket=bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "NoSuchBucket":
                return total
            if code == "BucketNotEmpty":
                continue
            raise
        return total
    raise TeardownError(f"bucket {bucket} kept receiving objects while it was emptied; it was not deleted")


def remove_table(dynamodb: DynamoDBClient, table: str) -> None:
    from botocore.exceptions import ClientError

    try:
        dynamodb.delete_table(TableName=table)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise


@dataclass(frozen=True)
class Removed:
    resource: Resource
    versions: int | None = None  # object versions and delete markers deleted first (buckets)


def remove_data(resources: Iterable[Resource], s3: S3Client, dynamodb: DynamoDBClient, step: Step) -> list[Removed]:
    """Delete these buckets (emptied first) and tables, in order."""
    removed = []
    for resource in resources:
        if resource.type == BUCKET:
            step(f"emptying and deleting bucket {resource.physical_id}")
            emptied = remove_bucket(s3, resource.physical_id)
            removed.append(Removed(resource, emptied.deleted))
        elif resource.type == TABLE:
            step(f"deleting table {resource.physical_id}")
            remove_table(dynamodb, resource.physical_id)
            removed.append(Removed(resource))
    return removed


# --------------------------------------------------------------------------------------------------------- the stack
class StackDeletionFailed(TeardownError):
    def __init__(self, stack_name: str, status: str, reasons: list[str]) -> None:
        self.reasons = reasons
        said = "; ".join(reasons) if reasons else "no reason in the stack's events"
        super().__init__(f"stack {stack_name} was not deleted ({status}): {said}")


def delete_stack(
    cloudformation: CloudFormationClient,
    stack_id: str,
    stack_name: str,
    delay_seconds: int = 10,
    max_attempts: int = 360,
) -> None:
    """DeleteStack, then wait for DELETE_COMPLETE (by stack id: a deleted stack is still described by its id).
    DELETE_FAILED, or no end within ``delay_seconds * max_attempts``, raises with the reasons of the stack's
    events."""
    from botocore.exceptions import WaiterError

    cloudformation.delete_stack(StackName=stack_id)
    try:
        cloudformation.get_waiter("stack_delete_complete").wait(
            StackName=stack_id, WaiterConfig={"Delay": delay_seconds, "MaxAttempts": max_attempts}
        )
    except WaiterError as exc:
        last: Mapping[str, Any] = exc.last_response or {}
        stacks: list[Mapping[str, Any]] = last.get("Stacks") or [{}]
        status = str(stacks[0].get("StackStatus", "status unknown"))
        pages = cloudformation.get_paginator("describe_stack_events").paginate(StackName=stack_id)
        events = (event for page in pages for event in page.get("StackEvents", []))
        raise StackDeletionFailed(stack_name, status, failure_reasons(events, stack_name)) from exc


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    removed: tuple[Removed, ...] = ()

    @property
    def kept(self) -> tuple[Resource, ...]:
        return self.plan.kept


class Teardown(Protocol):
    """Deleting one stack, deployed or local: ``plan`` decides (and refuses), ``execute`` deletes."""

    def plan(self, purge: bool) -> Plan: ...

    def execute(self, teardown: Plan, step: Step) -> Outcome: ...


@dataclass
class DeployedTeardown:
    """A stack deployed with CloudFormation."""

    stack_name: str
    cloudformation: CloudFormationClient
    s3: S3Client
    dynamodb: DynamoDBClient
    delay_seconds: int = 10
    max_attempts: int = 360  # an hour: deleting an endpoint takes minutes

    def plan(self, purge: bool) -> Plan:
        from botocore.exceptions import ClientError

        try:
            (stack,) = self.cloudformation.describe_stacks(StackName=self.stack_name)["Stacks"]
        except ClientError:
            # Deleted already (a name describes live stacks only): its retained resources can still be purged.
            stack_id = self._deleted_stack_id()
            if stack_id is None:
                raise
            return self._plan_deleted(stack_id, purge)
        status = stack["StackStatus"]
        if status.endswith(BUSY_SUFFIX):
            raise Refused(f"stack {self.stack_name} is {status}: wait until it ends, then delete")
        stack_id = stack["StackId"]
        teardown = self._plan(stack_id, purge)
        reasons = refusals(teardown, occupied(teardown.unretained_data, self.s3, self.dynamodb))
        if reasons:
            raise Refused(
                f"stack {self.stack_name} was deployed without DeletionPolicy Retain where it holds data: "
                + "; ".join(reasons)
                + ". Nothing was deleted: deploy this version first (asyncinfer deploy), or delete everything "
                "with --purge"
            )
        return teardown

    def _deleted_stack_id(self) -> str | None:
        """The id of the last stack of this name that was deleted (CloudFormation lists them for 90 days)."""
        pages = self.cloudformation.get_paginator("list_stacks").paginate(StackStatusFilter=["DELETE_COMPLETE"])
        gone = [s for page in pages for s in page["StackSummaries"] if s["StackName"] == self.stack_name]
        if not gone:
            return None
        latest = max(gone, key=lambda s: s.get("DeletionTime") or s["CreationTime"])
        return latest["StackId"]

    def _plan_deleted(self, stack_id: str, purge: bool) -> Plan:
        teardown = self._plan(stack_id, purge)
        still_there = tuple(r for r in teardown.retained if r.is_data and self._exists(r))
        return replace(teardown, resources=still_there, already_deleted=True)

    def _exists(self, resource: Resource) -> bool:
        from botocore.exceptions import ClientError

        try:
            if resource.type == BUCKET:
                self.s3.head_bucket(Bucket=resource.physical_id)
            else:
                self.dynamodb.describe_table(TableName=resource.physical_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchBucket", "ResourceNotFoundException"}:
                return False
            raise
        return True

    def _plan(self, stack_id: str, purge: bool) -> Plan:
        pages = self.cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_id)
        resources = [
            (r["LogicalResourceId"], r["ResourceType"], r.get("PhysicalResourceId", ""))
            for page in pages
            for r in page["StackResourceSummaries"]
            if r["ResourceStatus"] != "DELETE_COMPLETE"
        ]
        # The processed template: SAM's output, what CloudFormation acts on. boto3 hands JSON over parsed.
        body: Mapping[str, Any] | str = self.cloudformation.get_template(StackName=stack_id, TemplateStage="Processed")[
            "TemplateBody"
        ]
        return plan(self.stack_name, stack_id, resources, deletion_policies(body), purge)

    def execute(self, teardown: Plan, step: Step) -> Outcome:
        if teardown.already_deleted:
            return Outcome(teardown, tuple(remove_data(teardown.deleted_afterwards, self.s3, self.dynamodb, step)))
        if teardown.purge:
            # Before DeleteStack: a bucket CloudFormation deletes must be empty. Retained ones are emptied now too
            # (the pipeline triggers nothing on deletions) and once more after the stack, for late writes.
            for bucket in teardown.buckets:
                step(f"emptying bucket {bucket.physical_id} (every version and delete marker)")
                emptied = empty_bucket(self.s3, bucket.physical_id)
                if emptied.failures:
                    raise TeardownError(emptied.describe_failures() + "; the stack was not deleted")
        step(f"deleting stack {teardown.stack_name} (CloudFormation; an endpoint takes minutes)")
        delete_stack(self.cloudformation, teardown.stack_id, teardown.stack_name, self.delay_seconds, self.max_attempts)
        removed = remove_data(teardown.deleted_afterwards, self.s3, self.dynamodb, step)
        if teardown.purge:
            # Not retained, yet still there: an S3 implementation that "deleted" a non-empty bucket by leaving it.
            for bucket in teardown.buckets:
                if not bucket.retained and not bucket_is_empty(self.s3, bucket.physical_id):
                    raise TeardownError(f"bucket {bucket.physical_id} was left behind, not empty")
        return Outcome(teardown, tuple(removed))


@dataclass
class LocalTeardown:
    """The local stack (``asyncinfer local up``): its resources live in the memory of its moto process."""

    state: Mapping[str, Any]  # the state file (local.json)
    template: Mapping[str, Any]  # template.yaml as loaded (SAM)
    s3: S3Client
    dynamodb: DynamoDBClient
    stop: Callable[[], None]  # stops the local stack's process

    def plan(self, purge: bool) -> Plan:
        from asyncinfer.local.physical_ids import ACCOUNT

        name, region = str(self.state["stack_name"]), str(self.state["region"])
        outputs: Mapping[str, str] = self.state.get("outputs", {})
        # The local stack records physical names only through the template's outputs (`!Ref Logical`).
        by_ref = {
            output["Value"]["Ref"]: outputs[key]
            for key, output in self.template.get("Outputs", {}).items()
            if isinstance(output.get("Value"), dict) and "Ref" in output["Value"] and key in outputs
        }
        resources = [
            (logical, str(resource["Type"]), by_ref.get(logical, ""))
            for logical, resource in self.template.get("Resources", {}).items()
        ]
        policies = deletion_policies(self.template)
        stack_id = f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/{name}/local"
        teardown = plan(name, stack_id, resources, policies, purge, local=True)
        # Only what matters to deleting: the local stack emulates no other resource that could be left behind.
        teardown = replace(teardown, resources=tuple(r for r in teardown.resources if r.retained or r.is_data))
        if not purge:
            kept = ", ".join(r.describe() for r in teardown.retained)
            raise Refused(
                f"the local stack {name} keeps everything in the memory of its moto process, so deleting it cannot "
                f"keep what AWS would keep ({kept}). Nothing was deleted: `asyncinfer delete --purge` deletes "
                "everything, `asyncinfer local down` stops the stack"
            )
        return teardown

    def execute(self, teardown: Plan, step: Step) -> Outcome:
        # What CloudFormation would delete goes with the process; the data resources are deleted first, through the
        # same calls (and the same checks) as on AWS, while the stack's APIs are up.
        data = (r for r in teardown.resources if r.is_data and r.physical_id)
        removed = remove_data(data, self.s3, self.dynamodb, step)
        step(f"stopping the local stack {teardown.stack_name}")
        self.stop()
        return Outcome(teardown, tuple(removed))

"""The ``input-changed`` fault: a user overwrites or deletes a file while its request waits for the endpoint.

SageMaker reads an ``InputLocation`` when it processes the request, as the key's current version; a pipeline that
sends the user's key infers the new content under the old version's inference id, or fails on a deleted key. The
fault strikes as the endpoint accepts a request (so always before the request runs): it finds the request's job (the
inference id is the key of the jobs table, whose record names the user's object) and overwrites that key with other
rows of the same shape, or deletes it (a delete marker: the version itself stays). The new version is a file of its
own (its own event, job and request), which the fault leaves alone. The soak's audit then checks that every
completed output is the model's prediction for its own version's bytes.

Standard library only at import time (the ``asyncinfer.faults`` package is imported by the Lambda worker processes);
the clients are the stack's, handed in.
"""

from __future__ import annotations

import itertools
import random
from typing import TYPE_CHECKING, Any

from asyncinfer.faults.injector import FaultInjector

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

NAME = "input-changed"
DELETE_EVERY = 3  # every third change is a delete, the others overwrites: by count, not by a draw, so that a short
# run (a test's 12 files) always has both whatever order the requests are accepted in
MARK = "asyncinfer-fault"  # user metadata on what the fault writes (the new version's own request is left alone)


def other_rows(current: bytes, rng: random.Random) -> bytes:
    """Rows of the same shape as ``current`` (lines, comma-separated columns) with other values: valid input
    stays valid (and predicts differently), invalid input keeps its column count."""
    lines = current.decode("utf-8", "replace").splitlines() or [""]
    columns = lines[0].count(",") + 1
    rows = (",".join(repr(round(rng.gauss(0.0, 1.5), 6)) for _ in range(columns)) for _ in lines)
    return "\n".join(rows).encode()


class InputChanges:
    """Changes the input of some accepted requests (``maybe_change``), through the stack's own clients."""

    def __init__(self, injector: FaultInjector, s3: S3Client, dynamodb: DynamoDBClient, jobs_table: str) -> None:
        self._faults = injector
        self._s3 = s3
        self._dynamodb = dynamodb
        self._table = jobs_table
        self._rng = random.Random(f"{injector.plan.seed}:{NAME}:rows")
        self._changes = itertools.count(1)

    def maybe_change(self, inference_id: str | None) -> None:
        """One opportunity: the request with ``inference_id`` is being accepted."""
        if not inference_id or not self._faults.fire(NAME, counted=False):
            return
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"inferenceId": {"S": inference_id}}, ConsistentRead=True
        ).get("Item")
        location = _string(item, "inputLocation")
        if location is None:  # not a request of the pipeline (someone invoked the endpoint directly)
            return
        from async_pipeline import s3_uris  # not at import time: see the module docstring
        from botocore.exceptions import ClientError

        bucket, key = s3_uris.parse_uri(location)
        try:
            current = self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError:
            return  # already deleted
        if current.get("Metadata", {}).get(MARK) == NAME:
            return  # this fault wrote the current content (its own request): no chain of changes
        if next(self._changes) % DELETE_EVERY == 0:
            self._s3.delete_object(Bucket=bucket, Key=key)
            self._faults.count(f"{NAME}:deletes")
        else:
            rows = other_rows(current["Body"].read(), self._rng)
            self._s3.put_object(Bucket=bucket, Key=key, Body=rows, Metadata={MARK: NAME})
            self._faults.count(f"{NAME}:overwrites")
        self._faults.count(NAME)


def _string(item: dict[str, Any] | None, name: str) -> str | None:
    value = (item or {}).get(name, {})
    text = value.get("S") if isinstance(value, dict) else None
    return text if isinstance(text, str) else None

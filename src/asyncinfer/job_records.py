"""Reading the jobs table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from async_pipeline.jobs import Job

from asyncinfer.target import Target

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import ScanInputPaginateTypeDef


def list_jobs(target: Target, status: str | None = None, limit: int | None = None) -> list[Job]:
    dynamodb: DynamoDBClient = target.client("dynamodb")
    request: ScanInputPaginateTypeDef = {"TableName": target.outputs["JobsTableName"]}
    if status:
        request |= {
            "FilterExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": status}},
        }
    jobs: list[Job] = []
    for page in dynamodb.get_paginator("scan").paginate(**request):
        jobs.extend(Job.from_item(item) for item in page.get("Items", []))
        if limit is not None and len(jobs) >= limit:
            return jobs[:limit]
    return sorted(jobs, key=lambda job: job.completed_time or job.submitted_at or "")


def status_counts(target: Target) -> dict[str, int]:
    """How many jobs are in each status (one scan reading only the status)."""
    dynamodb: DynamoDBClient = target.client("dynamodb")
    counts: dict[str, int] = {}
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=target.outputs["JobsTableName"], ProjectionExpression="#s", ExpressionAttributeNames={"#s": "status"}
    )
    for page in pages:
        for item in page.get("Items", []):
            status = item.get("status", {}).get("S", "?")
            counts[status] = counts.get(status, 0) + 1
    return counts

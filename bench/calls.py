"""2. AWS API calls per file, counted with botocore's ``before-call`` hook across all three functions.

The handlers run in this process against moto (S3, DynamoDB, EventBridge, SQS) with the endpoint stubbed at the
HTTP layer: the same world as the unit tests (``tests/unit/conftest.py``), which also assert these counts
(``tests/unit/test_aws_calls.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.common import ensure_paths, quiet
from tests.moto_world import HANDLER_ENVIRONMENT, CallCounter, World, environment

TARGET_PER_FILE = 5
SERVICES = ("dynamodb", "s3", "sagemaker-runtime", "events")
ENVIRONMENT = {
    **HANDLER_ENVIRONMENT,
    "POWERTOOLS_SERVICE_NAME": "async-inference-pipeline-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "AsyncInferencePipeline",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@contextmanager
def moto_world() -> Iterator[World]:
    """The unit tests' ``world`` fixture, outside pytest: moto resources from template.yaml, endpoint stubbed."""
    ensure_paths()
    from tests import moto_world as worlds
    from tests.samples import load_template

    with environment(ENVIRONMENT), worlds.world(load_template()) as world:
        yield world


def run() -> dict[str, Any]:
    """Each scenario's calls, as ``service:Operation`` lists, plus the checks that make them meaningful."""
    with moto_world() as world, quiet():
        import error_handler
        import submitter
        import success_handler
        from async_pipeline import wiring
        from async_pipeline.inference_ids import identify
        from async_pipeline.s3_events import parse_record

        from tests.samples import FakeLambdaContext, load_event

        counter = CallCounter()
        for service in SERVICES:
            wiring.client(service).meta.events.register("before-call", counter)
        scenarios: dict[str, list[str]] = {}
        for succeeded, handler in ((True, success_handler), (False, error_handler)):
            label = "completed" if succeeded else "failed"
            s3_event = world.s3_event(f"incoming/{label}.csv")
            inference_id = identify(parse_record(s3_event["Records"][0])).inference_id
            submitter.lambda_handler(s3_event, FakeLambdaContext())
            scenarios[f"{label}: submitter"] = counter.take()
            notification = world.notification_event(inference_id, succeeded=succeeded)
            handler.lambda_handler(notification, FakeLambdaContext())
            scenarios[f"{label}: {handler.__name__}"] = counter.take()
            submitter.lambda_handler(copy.deepcopy(s3_event), FakeLambdaContext())
            scenarios[f"{label}: duplicate S3 delivery"] = counter.take()
            handler.lambda_handler(copy.deepcopy(notification), FakeLambdaContext())
            scenarios[f"{label}: duplicate SNS delivery"] = counter.take()
        empty = world.s3_event("incoming/empty.csv", b"")
        submitter.lambda_handler(empty, FakeLambdaContext())
        scenarios["rejected before the endpoint (empty file): submitter"] = counter.take()
        submitter.lambda_handler(load_event("s3-test-event.json"), FakeLambdaContext())
        success_handler.lambda_handler(load_event("sns-test-notification.json"), FakeLambdaContext())
        scenarios["s3:TestEvent + SageMaker TestNotification"] = counter.take()
        invocations = len(world.endpoint.calls)
        events = len(world.results())

    happy = len(scenarios["completed: submitter"]) + len(scenarios["completed: success_handler"])
    failed = len(scenarios["failed: submitter"]) + len(scenarios["failed: error_handler"])
    duplicates = [name for name in scenarios if "duplicate" in name]
    duplicate = max(len(scenarios[name]) for name in duplicates)
    return {
        "target_per_file": TARGET_PER_FILE,
        "per_file_completed": happy,
        "per_file_failed": failed,
        "duplicate_delivery_extra": duplicate,
        "endpoint_invocations": invocations,  # 2 files went to the endpoint; duplicates added none
        "result_events": events,  # 3 files finished (completed, failed, rejected); duplicates added none
        "meets_target": happy <= TARGET_PER_FILE,
        "scenarios": scenarios,
    }


def summary_rows(section: dict[str, Any]) -> list[list[str]]:
    return [[name, str(len(made)), ", ".join(made) or "-"] for name, made in section["scenarios"].items()]

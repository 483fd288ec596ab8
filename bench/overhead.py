"""3. Warm handler overhead: CPU time per record of each handler, AWS calls stubbed, events of 1 and 100 records.

Two stubs, both in this process, after warm-up invocations (a warm execution environment):

* ``handler``: the handlers' clients replaced by objects answering at once. What is measured is this code and
  Powertools: parsing, ids, item (de)serialization, the state machine, one JSON log line per record, EMF metrics.
  This is the figure the target applies to.
* ``handler + SDK``: real botocore clients whose HTTP is answered in ``before-send``: adds what the SDK spends per
  call on the client side (validation, serialization, SigV4 signing, hooks, parsing).

The happy path of every record: submitter 4 calls, topic handlers 3. Handler output (logs, EMF) goes to /dev/null.
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

from bench.calls import ENVIRONMENT
from bench.common import ensure_paths, median, quiet
from tests.moto_world import INPUT_BUCKET, Body, environment

TARGET_MS_PER_RECORD = 1.0
BATCH_SIZES = (1, 100)
ENDPOINT = ENVIRONMENT["ENDPOINT_NAME"]
OUTPUT = "s3://async-pipeline-output-example"
PAYLOAD = b"1.0,2.0,3.0,4.0\n"  # the input object the stubs serve (16 bytes: sent inline)


@cache
def _job_item(inference_id: str, status: str) -> dict[str, Any]:
    """The record a terminal transition returns (``ReturnValues=ALL_NEW``); made once per id, outside the timing."""
    from async_pipeline.jobs import Job, JobStatus

    job = Job(
        inference_id=inference_id,
        status=JobStatus(status),
        input_location=f"s3://{INPUT_BUCKET}/incoming/{inference_id}.csv",
        endpoint_name=ENDPOINT,
        output_location=f"{OUTPUT}/out/{inference_id}.out" if status == "COMPLETED" else None,
        failure_location=None if status == "COMPLETED" else f"{OUTPUT}/failure/{inference_id}-error.out",
        failure_reason=None if status == "COMPLETED" else "ClientError: Received client error (415) from model.",
        received_time="2026-11-24T12:00:00.455Z",
        completed_time="2026-11-24T12:00:01.608Z",
        duration_ms=1153,
        event_pending=True,
        publish_lease_until=2**62,
        submitted_at="2026-11-24T12:00:00.500Z",
        expires_at=2**31,
    )
    return job.to_item()


class FakeClients:
    """Answers the handlers' calls at once, as the services would on the happy path."""

    def __init__(self, status: str) -> None:
        self._status = status

    # dynamodb
    def put_item(self, **_: Any) -> dict[str, Any]:
        return {}

    def update_item(self, **request: Any) -> dict[str, Any]:
        if request.get("ReturnValues") == "ALL_NEW":
            return {"Attributes": _job_item(request["Key"]["inferenceId"]["S"], self._status)}
        return {}

    # s3
    def get_object(self, **request: Any) -> dict[str, Any]:
        return {
            "Body": Body(PAYLOAD),
            "ContentLength": len(PAYLOAD),
            "ContentRange": f"bytes 0-{len(PAYLOAD) - 1}/{len(PAYLOAD)}",
            "ContentType": "text/csv",
            "VersionId": request.get("VersionId"),
        }

    # sagemaker-runtime
    def invoke_endpoint_async(self, **request: Any) -> dict[str, Any]:
        inference_id = request["InferenceId"]
        return {
            "InferenceId": inference_id,
            "OutputLocation": f"{OUTPUT}/out/{inference_id}.out",
            "FailureLocation": f"{OUTPUT}/failure/{inference_id}-error.out",
        }

    # events
    def put_events(self, **request: Any) -> dict[str, Any]:
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"} for _ in request["Entries"]]}


def http_stub(status: str) -> Callable[..., Any]:
    """A ``before-send`` handler answering every call of the happy path as the service's wire protocol does."""
    from botocore.awsrequest import AWSResponse

    def answer(request: Any, **_: Any) -> AWSResponse:
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        target = headers.get("X-Amz-Target", "")
        body: Any = {}
        code = 200
        extra: dict[str, str] = {}
        if target.startswith("DynamoDB"):
            sent = json.loads(request.body)
            if sent.get("ReturnValues") == "ALL_NEW":
                body = {"Attributes": _job_item(sent["Key"]["inferenceId"]["S"], status)}
        elif target.startswith("AWSEvents"):
            body = {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}
        elif "/async-invocations" in request.url:
            inference_id = headers["X-Amzn-SageMaker-Inference-Id"]
            code = 202
            body = {"InferenceId": inference_id}
            extra = {
                "X-Amzn-SageMaker-OutputLocation": f"{OUTPUT}/out/{inference_id}.out",
                "X-Amzn-SageMaker-FailureLocation": f"{OUTPUT}/failure/{inference_id}-error.out",
            }
        elif request.method == "GET":  # s3 GetObject (ranged: the whole small object)
            size = len(PAYLOAD)
            head = {
                "Content-Length": str(size),
                "Content-Range": f"bytes 0-{size - 1}/{size}",
                "Content-Type": "text/csv",
                "ETag": '"e"',
            }
            return AWSResponse(request.url, 206, head, Body(PAYLOAD))  # type: ignore[arg-type]
        data = json.dumps(body).encode()
        response_headers = {"Content-Type": "application/x-amz-json-1.0", "Content-Length": str(len(data)), **extra}
        return AWSResponse(request.url, code, response_headers, Body(data))  # type: ignore[arg-type]

    return answer


def _s3_event(size: int) -> dict[str, Any]:
    from tests.samples import load_event

    template = load_event("s3-put.json")["Records"][0]
    records = []
    for i in range(size):
        record = copy.deepcopy(template)
        record["s3"]["object"].update(key=f"incoming/file-{i:03d}.csv", versionId=f"v{i:03d}", size=16)
        records.append(record)
    return {"Records": records}


def _sns_event(size: int, *, succeeded: bool) -> dict[str, Any]:
    from async_pipeline.notifications import STATUS_COMPLETED, STATUS_FAILED, InferenceNotification

    from tests.samples import load_event

    template = load_event("sns-success.json" if succeeded else "sns-error.json")["Records"][0]
    records = []
    for i in range(size):
        inference_id = f"{i:064x}"
        notification = InferenceNotification(
            inference_id=inference_id,
            invocation_status=STATUS_COMPLETED if succeeded else STATUS_FAILED,
            endpoint_name=ENDPOINT,
            input_location=f"s3://{INPUT_BUCKET}/incoming/file-{i:03d}.csv",
            output_location=f"{OUTPUT}/out/{inference_id}.out" if succeeded else None,
            failure_reason=None if succeeded else "ClientError: Received client error (415) from model.",
            received_time="2026-11-24T12:00:00.455Z",
            event_time="2026-11-24T12:00:01.608Z",
            aws_region="us-east-1",
        )
        record = copy.deepcopy(template)
        record["Sns"]["Message"] = json.dumps(notification.to_message())
        records.append(record)
    return {"Records": records}


def _cpu_per_record(handler: Callable[..., Any], event: dict[str, Any], expect: str, budget_records: int) -> float:
    """Median over 5 repetitions of CPU milliseconds per record, each repetition ``budget_records`` records."""
    from tests.samples import FakeLambdaContext

    size = len(event["Records"])
    context = FakeLambdaContext()
    for _ in range(3):  # warm: clients made, caches filled, cold-start flags flipped
        result = handler(copy.deepcopy(event), context)
        if expect not in json.dumps(result):
            raise RuntimeError(f"unexpected handler result {result}")
    invocations = max(1, budget_records // size)
    events = [copy.deepcopy(event) for _ in range(invocations)]  # copies made outside the timed part
    reps = []
    for _ in range(5):
        batch = [copy.deepcopy(e) for e in events]
        start = time.process_time()
        for item in batch:
            handler(item, context)
        reps.append((time.process_time() - start) * 1000 / (invocations * size))
    return median(reps)


def run(budget_records: int = 1000) -> dict[str, Any]:
    ensure_paths()
    results: list[dict[str, Any]] = []
    with environment(ENVIRONMENT), quiet(), warnings.catch_warnings():
        # Powertools flushes a metric at 100 values (EMF's limit), so a 100-record invocation ends with nothing
        # left to flush, and says so.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        import error_handler
        import submitter
        import success_handler
        from async_pipeline import wiring

        handlers = [
            ("submitter", submitter.lambda_handler, _s3_event, "submitted", "SUBMITTED"),
            (
                "success_handler",
                success_handler.lambda_handler,
                lambda n: _sns_event(n, succeeded=True),
                "recorded",
                "COMPLETED",
            ),
            (
                "error_handler",
                error_handler.lambda_handler,
                lambda n: _sns_event(n, succeeded=False),
                "recorded",
                "FAILED",
            ),
        ]
        real_client = wiring.client
        for stub in ("handler", "handler + SDK"):
            for name, handler, make_event, expect, status in handlers:
                wiring.reset()
                if stub == "handler":
                    fake = FakeClients(status)
                    wiring.client = lambda service, fake=fake: fake  # type: ignore[assignment]
                else:
                    wiring.client = real_client
                    answer = http_stub(status)
                    for service in ("dynamodb", "s3", "sagemaker-runtime", "events"):
                        wiring.client(service).meta.events.register_first("before-send", answer)
                try:
                    figures = {
                        str(size): round(_cpu_per_record(handler, make_event(size), expect, budget_records), 3)
                        for size in BATCH_SIZES
                    }
                finally:
                    wiring.client = real_client
                    wiring.reset()
                results.append(
                    {
                        "stub": stub,
                        "function": name,
                        "cpu_ms_per_record": figures,
                        "meets_target": max(figures.values()) <= TARGET_MS_PER_RECORD,
                    }
                )
    return {"target_ms_per_record": TARGET_MS_PER_RECORD, "results": results}


def summary_rows(section: dict[str, Any]) -> list[list[str]]:
    rows = []
    for result in section["results"]:
        figures = result["cpu_ms_per_record"]
        rows.append(
            [
                result["stub"],
                result["function"],
                f"{figures['1']:.3f}",
                f"{figures['100']:.3f}",
                ("yes" if result["meets_target"] else "no") if result["stub"] == "handler" else "(context)",
            ]
        )
    return rows

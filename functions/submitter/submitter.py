"""S3 ObjectCreated → InvokeEndpointAsync, once per object version, for every record of the event."""

from typing import Any

from async_pipeline import submission, wiring
from async_pipeline.submission import SubmissionAction
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()

METRICS = {
    SubmissionAction.SUBMITTED: "FilesSubmitted",
    SubmissionAction.REJECTED: "FilesRejected",
    SubmissionAction.REPUBLISHED: "ResultEventsPublished",
    SubmissionAction.DUPLICATE: "DuplicateDeliveries",
    SubmissionAction.IN_PROGRESS: "DuplicateDeliveries",
    SubmissionAction.IGNORED: "RecordsIgnored",
}


class SubmissionFailed(RuntimeError):
    """At least one record failed; Lambda retries the event, then sends it to the dead-letter queue."""


def handle(event: dict[str, Any], context: wiring.LambdaContext) -> dict[str, Any]:
    report = submission.submit_event(event, wiring.submitter(), wiring.clock(context))
    for outcome in report.outcomes:
        logger.info(
            "record handled",
            extra={
                "action": outcome.action,
                "uri": outcome.uri,
                "inferenceId": outcome.inference_id,
                "reason": outcome.reason,
            },
        )
        metrics.add_metric(name=METRICS[outcome.action], unit=MetricUnit.Count, value=1)
        if outcome.action is SubmissionAction.REJECTED:
            metrics.add_metric(name="ResultEventsPublished", unit=MetricUnit.Count, value=1)
    if report.failures:
        for failure in report.failures:
            logger.error("record failed", extra={"reason": failure.message})
            metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=1)
        raise SubmissionFailed(f"{len(report.failures)} record(s) failed: " + report.failure_summary())
    return {action.value: report.count(action) for action in SubmissionAction if report.count(action)}


# Logger (Lambda context in every line) and Metrics (EMF) around it; the Tracer only where tracing is on.
lambda_handler = wiring.instrument(handle, logger=logger, metrics=metrics)

"""The Lambda handler behind both SageMaker notification topics; each topic's function binds its own topic.

The use case (``completion.complete_event``) reports what became of each record; the handler logs and counts it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from async_pipeline import completion, wiring
from async_pipeline.completion import CompletionAction

METRICS = {
    CompletionAction.RECORDED: None,  # counted per status below
    CompletionAction.REPUBLISHED: None,
    CompletionAction.DUPLICATE: "DuplicateDeliveries",
    CompletionAction.TEST_NOTIFICATION: "TestNotificationsSkipped",
}


class NotificationFailed(RuntimeError):
    """At least one record could not be handled; Lambda retries the event, then sends it to the dead-letter queue."""


Handler = Callable[[dict[str, Any], wiring.LambdaContext], dict[str, Any]]


def build(topic_variable: str) -> Handler:
    """A handler that accepts records only from the topic named by environment variable ``topic_variable``."""
    logger = Logger()
    metrics = Metrics()

    def handle(event: dict[str, Any], context: wiring.LambdaContext) -> dict[str, Any]:
        clock = wiring.clock(context)
        report = completion.complete_event(
            event,
            expected_topic_arn=wiring.require(topic_variable),
            store=wiring.job_store,
            publisher=wiring.publisher,
            clock=clock,
        )
        for outcome in report.outcomes:
            logger.info(
                "notification handled",
                extra={"action": outcome.action, "inferenceId": outcome.inference_id, "status": outcome.status},
            )
            if outcome.event is not None:
                status_metric = "InferencesCompleted" if outcome.status == "COMPLETED" else "InferencesFailed"
                metrics.add_metric(name=status_metric, unit=MetricUnit.Count, value=1)
                metrics.add_metric(name="ResultEventsPublished", unit=MetricUnit.Count, value=1)
            name = METRICS[outcome.action]
            if name:
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        for failure in report.failures:
            if failure.index is None:  # the event as a whole (no records): named in the error below only
                continue
            logger.error("notification not handled", extra={"reason": str(failure.error)}, exc_info=failure.error)
            metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=1)
        if report.failures:
            raise NotificationFailed(f"{len(report.failures)} record(s) not handled: " + report.failure_summary())
        return {"handled": report.counts()}

    # Logger (Lambda context in every line) and Metrics (EMF) around it; the Tracer only where tracing is on.
    return wiring.instrument(handle, logger=logger, metrics=metrics)

"""The Lambda handler behind both SageMaker notification topics; each topic's function binds its own topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from async_pipeline import completion, sns_events, wiring
from async_pipeline.completion import Action

METRICS = {
    Action.RECORDED: None,  # counted per status below
    Action.REPUBLISHED: None,
    Action.DUPLICATE: "DuplicateDeliveries",
    Action.TEST_NOTIFICATION: "TestNotificationsSkipped",
}


class NotificationFailed(RuntimeError):
    """At least one record could not be handled; Lambda retries the event, then sends it to the dead-letter queue."""


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def build(topic_variable: str) -> Handler:
    """A handler that accepts records only from the topic named by environment variable ``topic_variable``."""
    logger = Logger()
    metrics = Metrics()

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        clock = wiring.clock(context)
        expected_topic = wiring.require(topic_variable)
        counts: dict[str, int] = {}
        failures: list[str] = []
        try:
            records = sns_events.records(event)
        except sns_events.MalformedSnsRecord as exc:
            records, failures = [], [str(exc)]
        for raw in records:
            try:
                record = sns_events.parse_record(raw)
                outcome = completion.handle_record(
                    record,
                    expected_topic_arn=expected_topic,
                    store=wiring.job_store(),
                    publisher=wiring.publisher(),
                    clock=clock,
                )
            except Exception as exc:  # every record gets its turn; the invocation fails after the loop
                logger.exception("notification not handled", extra={"reason": str(exc)})
                metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=1)
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            counts[outcome.action] = counts.get(outcome.action, 0) + 1
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
        if failures:
            raise NotificationFailed(f"{len(failures)} record(s) not handled: " + "; ".join(failures))
        return {"handled": counts}

    # Logger (Lambda context in every line) and Metrics (EMF) around it; the Tracer only where tracing is on.
    return wiring.instrument(handle, logger=logger, metrics=metrics)

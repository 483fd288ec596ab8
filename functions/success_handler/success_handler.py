"""SuccessTopic subscriber: records the job's outcome and publishes one result event."""

from async_pipeline import topic_handler

lambda_handler = topic_handler.build(topic_variable="SUCCESS_TOPIC_ARN")

"""ErrorTopic subscriber: records the job's failure and publishes one result event."""

from async_pipeline import topic_handler

lambda_handler = topic_handler.build(topic_variable="ERROR_TOPIC_ARN")

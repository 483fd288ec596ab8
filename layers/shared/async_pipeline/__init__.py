"""Shared runtime package of the async inference pipeline (shipped as the Lambda layer).

Small, typed modules, one per concept: wire-format models (``s3_events``, ``sns_events``, ``notifications``,
``result_events``, ``s3_uris``), identity and content negotiation (``inference_ids``, ``content_types``), the job
state machine (``jobs``), the two use cases (``submission``, ``completion``) with the report their record loops
return (``batch_reports``) and the time they see (``clock``), and the handlers' wiring (``wiring``,
``topic_handler``).
"""

"""Shared runtime package of the async inference pipeline (shipped as the Lambda layer).

Small, typed modules, one per concept: wire-format models (``s3_events``, ``sns_events``, ``notifications``,
``result_events``), identity and content negotiation (``inference_ids``, ``content_types``), the job state machine
(``jobs``), and the two use cases (``submission``, ``completion``).
"""

"""Local stand-in for the SageMaker built-in XGBoost 1.7-1 inference container, and the demo model it serves.

Modules (import them directly; this package's ``__init__`` stays import-light so that code which only needs the
names below does not pay for importing xgboost):

* :mod:`asyncinfer.model.demo`: trains the demo classifier from seeded synthetic data, writes ``model.tar.gz``,
  and builds valid and invalid request payloads.
* :mod:`asyncinfer.model.artifact`: fetches a model artifact (S3 URI or local path), unpacks it and loads it.
* :mod:`asyncinfer.model.inference`: the container's request contract (content types, Accept, status codes) with
  no HTTP in it.
* :mod:`asyncinfer.model.server`: the HTTP server (``GET /ping``, ``POST /invocations``) and its CLI.
* :mod:`asyncinfer.model.crosscheck`: proves the artifact predicts the same under xgboost 1.7.6.
"""

"""The local stack's SageMaker asynchronous endpoint: ``InvokeEndpointAsync`` over real HTTP (see docs/local-stack.md).

One module per part; :class:`~asyncinfer.local.endpoint.emulator.AsyncEndpointEmulator` composes them:

* ``http_api`` - the HTTP front: body reading (chunked too), response framing; calls ``emulator.accept``;
* ``protocol`` - the wire contract of InvokeEndpointAsync: parsing, validation, error answers (pure);
* ``settings`` - the endpoint's configuration, read from the control plane;
* ``requests`` - an accepted request and the names of its result objects (pure);
* ``queue`` - the per-endpoint queue, its workers, the TTL sweeper, scaling (no AWS in it);
* ``invocation`` / ``container`` - running one request against the model container;
* ``results`` - writing the output or failure object and publishing the notification;
* ``hooks`` / ``events`` - the typed hooks (fault injection) and what observers are told;
* ``failure_reasons`` - every failureReason text it writes (the soak's audit reads them too).

This package's ``__init__`` imports nothing, so that ``hooks``, ``events`` and ``protocol`` stay importable with the
standard library alone (the fault hooks are loaded by the Lambda worker processes).
"""

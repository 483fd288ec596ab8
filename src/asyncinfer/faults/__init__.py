"""Fault injection for the local stack: what AWS may do to the pipeline, on demand, reproducibly.

Every fault lives in the local stack only (the Lambda runtime, the endpoint emulator, a proxy in front of the model
container, the worker processes); the handlers and the shared layer run unchanged, exactly as deployed. The faults,
their rates and where each strikes: docs/local-stack.md. One module per part:

* ``catalogue`` - the faults (:data:`CATALOGUE`) and a plan of them (:class:`FaultPlan`, ``--faults``);
* ``injector`` - the plan's random draws, windows and counters (:class:`FaultInjector`);
* ``worker`` - the crash faults inside a Lambda worker process (:func:`install_worker_faults`);
* ``endpoint`` - the endpoint emulator's faults, as its hooks (:class:`EndpointFaults`).
The container faults are injected by :mod:`asyncinfer.local.chaos_proxy`, the delivery faults by the Lambda runtime.

Standard library only at import time: the worker processes import this package before the handler.
"""

from asyncinfer.faults.catalogue import (
    CATALOGUE,
    CONTAINER_FAULTS,
    ENDPOINT_FAULTS,
    WORKER_FAULTS,
    Fault,
    FaultPlan,
    FaultSpecError,
    PlanDocument,
    stack_parameters,
)
from asyncinfer.faults.endpoint import EndpointFaults
from asyncinfer.faults.injector import FaultInjector
from asyncinfer.faults.worker import ENV_VAR, WORKER_ID_VAR, install_worker_faults

__all__ = [
    "CATALOGUE",
    "CONTAINER_FAULTS",
    "ENDPOINT_FAULTS",
    "ENV_VAR",
    "WORKER_FAULTS",
    "WORKER_ID_VAR",
    "EndpointFaults",
    "Fault",
    "FaultInjector",
    "FaultPlan",
    "FaultSpecError",
    "PlanDocument",
    "install_worker_faults",
    "stack_parameters",
]

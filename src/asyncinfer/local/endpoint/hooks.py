"""The endpoint emulator's hooks: one typed protocol, a no-op base class, and the list the emulator calls in order.

Fault injection and observers implement :class:`EndpointHooks` (usually by subclassing :class:`BaseEndpointHooks`)
and register with ``AsyncEndpointEmulator.add_hooks``; every registered object is called, in registration order.
All run on emulator threads. Standard library only at run time (the Lambda worker processes import the fault
hooks, which subclass the base here).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Protocol

from asyncinfer.local.endpoint.protocol import ApiError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from asyncinfer.local.endpoint.events import EmulatorEvent
    from asyncinfer.local.endpoint.protocol import InvokeParams
    from asyncinfer.local.endpoint.requests import InvocationRequest, WriteTarget

logger = logging.getLogger(__name__)


class EndpointHooks(Protocol):
    def before_accept(self, params: InvokeParams) -> None:
        """Before a validated request is queued (HTTP thread): raising :class:`ApiError` answers for the service
        (throttling, 503); any other exception is logged and ignored."""

    def before_invoke(self, request: InvocationRequest) -> None:
        """Before the container call: raising fails the invocation, ``str(exception)`` as its failureReason."""

    def before_write(self, location: str, target: WriteTarget) -> None:
        """Before each attempt to write the output or the failure object: raising a botocore ``ClientError`` refuses
        the write (it is retried like a refusal by S3)."""

    def on_event(self, event: EmulatorEvent) -> None:
        """Everything that happens; exceptions are logged, never propagated."""


class BaseEndpointHooks:
    """Hooks that do nothing: subclass and override the ones needed."""

    def before_accept(self, params: InvokeParams) -> None:
        return None

    def before_invoke(self, request: InvocationRequest) -> None:
        return None

    def before_write(self, location: str, target: WriteTarget) -> None:
        return None

    def on_event(self, event: EmulatorEvent) -> None:
        return None


class HookList(BaseEndpointHooks):
    """The registered hooks, called in order, with the emulator's policy for their exceptions (see the protocol)."""

    def __init__(self, hooks: Iterable[EndpointHooks] = ()) -> None:
        self._lock = threading.Lock()
        self._hooks: tuple[EndpointHooks, ...] = tuple(hooks)  # replaced, never mutated: callers iterate lock-free

    def add(self, *hooks: EndpointHooks) -> None:
        with self._lock:
            self._hooks = (*self._hooks, *hooks)

    def __len__(self) -> int:
        return len(self._hooks)

    def before_accept(self, params: InvokeParams) -> None:
        for hooks in self._hooks:
            try:
                hooks.before_accept(params)
            except ApiError:
                raise
            except Exception:
                logger.exception("before_accept hook failed")

    def before_invoke(self, request: InvocationRequest) -> None:
        for hooks in self._hooks:
            hooks.before_invoke(request)

    def before_write(self, location: str, target: WriteTarget) -> None:
        for hooks in self._hooks:
            hooks.before_write(location, target)

    def on_event(self, event: EmulatorEvent) -> None:
        for hooks in self._hooks:
            try:
                hooks.on_event(event)
            except Exception:
                logger.exception("on_event hook failed for %s", event.kind)

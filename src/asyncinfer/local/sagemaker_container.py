"""The emulator's side of the SageMaker container contract: ``POST /invocations`` with a deadline, and the
``failureReason`` texts SageMaker writes when a model call fails.

The 4xx/5xx texts follow the observed async message (``ClientError: Received server error (500) from model. See
the SageMaker Endpoint logs in your account for more information.``) with the model's message added as the
synchronous ``ModelError`` does. The texts for a timeout, a refused connection, a missing ``Content-Length`` and an
expired request are UNVERIFIED (no public sample shows them); they are constants here so they can be adjusted in one
place.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

SEE_LOGS = "See the SageMaker Endpoint logs in your account for more information."
MAX_MESSAGE_IN_REASON = 1024  # the model's message is cut in failureReason; the full body is in the failure object


@dataclass(frozen=True, slots=True)
class ContainerReply:
    """What the container answered (any status)."""

    status: int
    body: bytes
    content_type: str | None
    has_content_length: bool


class ContainerUnreachable(Exception):
    """The container could not be reached or hung up; the message is a failureReason."""


class ContainerRefused(ContainerUnreachable):
    """Nothing listens at the container's address (it is down or restarting); nothing was sent."""


class ContainerTimeout(Exception):
    """The container did not answer within InvocationTimeoutSeconds."""


def error_reason(status: int, body: bytes) -> str:
    """failureReason for a non-2xx answer from the model."""
    kind = "server" if status >= 500 else "client"
    message = body.decode("utf-8", errors="replace").strip()
    if len(message) > MAX_MESSAGE_IN_REASON:
        message = message[:MAX_MESSAGE_IN_REASON] + "..."
    with_message = f' with message "{message}"' if message else ""
    return f"ClientError: Received {kind} error ({status}) from model{with_message}. {SEE_LOGS}"


def timeout_reason(seconds: float) -> str:
    # UNVERIFIED wording.
    return (
        f"ClientError: Model did not complete the invocation within InvocationTimeoutSeconds ({seconds:g} s). "
        f"{SEE_LOGS}"
    )


def expired_reason(seconds: int) -> str:
    # UNVERIFIED wording.
    return f"Request expired: it waited in the queue longer than RequestTTLSeconds ({seconds} s) for an instance."


def missing_content_length_reason() -> str:
    # Observed (djl-serving#2567), not documented: the async platform rejects chunked container responses.
    return "ClientError: The response from container primary did not specify the required Content-Length header"


class ContainerCall:
    """One ``POST /invocations``; :meth:`cancel` (from another thread) cuts it, as stopping an instance would."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ContainerUnreachable(f"ClientError: invalid model container URL {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path.rstrip("/") + "/invocations"
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            conn = self._conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    def invoke(self, body: bytes, headers: dict[str, str], timeout: float) -> ContainerReply:
        """POST the payload; the whole exchange (connect, send, wait, read) must fit in ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=timeout)
        with self._lock:
            if self._cancelled:
                raise ContainerUnreachable("cancelled")
            self._conn = conn
        try:
            conn.request("POST", self._path, body=body, headers={**headers, "Content-Length": str(len(body))})
            self._shrink_timeout(conn, deadline)
            response = conn.getresponse()
            self._shrink_timeout(conn, deadline)
            data = response.read()
            if time.monotonic() > deadline:
                raise ContainerTimeout()
            return ContainerReply(
                status=response.status,
                body=data,
                content_type=response.getheader("Content-Type"),
                has_content_length=response.getheader("Content-Length") is not None,
            )
        except TimeoutError as exc:
            raise ContainerTimeout() from exc
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() > deadline:
                raise ContainerTimeout() from exc
            kind = ContainerRefused if isinstance(exc, ConnectionRefusedError) else ContainerUnreachable
            raise kind(
                f"ClientError: An error occurred while sending the request to the model container: "
                f"{type(exc).__name__}: {exc}. {SEE_LOGS}"
            ) from exc
        finally:
            with self._lock:
                self._conn = None
            conn.close()

    @staticmethod
    def _shrink_timeout(conn: http.client.HTTPConnection, deadline: float) -> None:
        # A socket timeout bounds each blocking call; shrinking it to what is left bounds the whole exchange.
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ContainerTimeout()
        if conn.sock is not None:
            conn.sock.settimeout(remaining)

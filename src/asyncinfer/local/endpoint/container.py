"""The emulator's side of the SageMaker container contract: one ``POST /invocations`` with a deadline."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from asyncinfer.local.endpoint.failure_reasons import unreachable_reason


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
            raise kind(unreachable_reason(exc)) from exc
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

"""The HTTP servers of the local stack (endpoint emulator, model container): threaded, keep-alive with
TCP_NODELAY, stoppable at once.

Keep-alive matters because botocore and the emulator pool connections; being able to cut those connections matters
because ``shutdown()`` alone leaves handler threads blocked on idle keep-alive sockets.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal, Protocol

logger = logging.getLogger(__name__)

_MAX_LINE = 65537


class Reader(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...

    def read(self, size: int = -1, /) -> bytes: ...


class BodyTooLarge(Exception):
    """The body is larger than the read limit; it was not read to its end (the connection cannot be reused)."""


class MalformedBody(Exception):
    """The body's framing is broken (``framing``: which); the message says how, in the endpoint's words."""

    def __init__(self, framing: Literal["chunked", "length"], message: str) -> None:
        super().__init__(message)
        self.framing = framing


def read_chunked(rfile: Reader, limit: int) -> bytes:
    """A ``Transfer-Encoding: chunked`` body (trailers skipped) of at most ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        line = rfile.readline(_MAX_LINE)
        try:
            chunk_size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise MalformedBody("chunked", "Malformed chunked body.") from None
        if chunk_size == 0:
            while rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        size += chunk_size
        if size > limit:
            raise BodyTooLarge()
        chunks.append(rfile.read(chunk_size))
        rfile.readline(3)  # the CRLF after each chunk


def read_sized(rfile: Reader, content_length: str | None, limit: int) -> bytes:
    """A body of ``Content-Length`` bytes (none: empty), at most ``limit``."""
    try:
        length = int(content_length or 0)
    except ValueError:
        raise MalformedBody("length", "Malformed Content-Length.") from None
    if length > limit:
        raise BodyTooLarge()
    return rfile.read(length) if length > 0 else b""


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True  # handler threads never keep the process alive
    request_queue_size = 128  # many clients at once (the default backlog of 5 resets connections)

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client hanging up mid-response, or stop() cutting a keep-alive connection, is routine.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            logger.debug("connection from %s ended: %s", client_address, exc)
        else:
            logger.exception("error while serving %s", client_address)

    def cut_connections(self) -> None:
        """Shut every open connection down, so that handler threads waiting on them end now."""
        with self.sockets_lock:
            for sock in list(self.open_sockets):
                with contextlib.suppress(OSError):  # already closed by the peer
                    sock.shutdown(socket.SHUT_RDWR)


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (every answer must carry a Content-Length); registers its connection with its ``LoopbackServer``."""

    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: answers go out at once, not held back by Nagle's algorithm until the client's delayed ACK.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        server = self.server
        assert isinstance(server, LoopbackServer)
        with server.sockets_lock:
            server.open_sockets.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            server = self.server
            assert isinstance(server, LoopbackServer)
            with server.sockets_lock:
                server.open_sockets.discard(self.connection)

    def read_body(self, limit: int) -> bytes:
        """The request body (chunked or sized), at most ``limit`` bytes: BodyTooLarge or MalformedBody otherwise."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return read_chunked(self.rfile, limit)
        return read_sized(self.rfile, self.headers.get("Content-Length"), limit)

    def log_message(self, format: str, *args: object) -> None:
        logging.getLogger(type(self).__module__).debug("%s %s", self.address_string(), format % args)


#: An HTTP answer: status, headers, body.
Response = tuple[int, list[tuple[str, str]], bytes]


class RequestGate(Protocol):
    """Decides whether a server serves a request (the local stack's IAM)."""

    def refusal(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> Response | None:
        """None to serve the request; else the answer (status, headers, body) that refuses it."""
        ...


def send_response(handler: BaseHTTPRequestHandler, response: Response) -> None:
    """Answer with ``response`` (its Content-Length set from its body; no body to a HEAD)."""
    status, headers, body = response
    handler.send_response(status)
    for name, value in headers:
        if name.lower() != "content-length":
            handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)

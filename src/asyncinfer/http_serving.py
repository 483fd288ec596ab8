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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

logger = logging.getLogger(__name__)


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

    def log_message(self, format: str, *args: object) -> None:
        logging.getLogger(type(self).__module__).debug("%s %s", self.address_string(), format % args)

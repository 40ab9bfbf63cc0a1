"""The loopback base of the fake services (tests/fakes): an HTTP server on 127.0.0.1 in
a thread, its request recorded as the fakes check it, and one way to answer with JSON.
`stop` closes the port and keeps the state, so a test can take a service down and bring
it back."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Handler(BaseHTTPRequestHandler):
    """What both fakes' handlers share: keep-alive, no Nagle delay, no log lines."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out as two writes: without this, Nagle's algorithm
        # meets the client's delayed ACK and every request takes 40 ms
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        """`payload` as JSON (None: no body), with `headers`; a HEAD gets no body."""
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def recorded(self) -> Recorded:
        """The request as the fakes log and check it; reads its body."""
        length = int(self.headers.get("Content-Length") or 0)
        split = urlsplit(self.path)
        return Recorded(self.command, split.path,
                        {k: v[-1] for k, v in parse_qs(split.query).items()},
                        {k.lower(): v for k, v in self.headers.items()},
                        self.rfile.read(length) if length else b"")


class Served(ABC):
    """Serving from a thread on 127.0.0.1 until `stop`."""

    tls: ssl.SSLContext | None = None
    port = 0
    _server: ThreadingHTTPServer | None = None

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        if self.tls:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    @abstractmethod
    def start(self) -> Self:
        """Serve with this service's request handler (via `_serve`)."""

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""An HTTP server on 127.0.0.1 served from a background thread; subclasses say what
each path answers. The demo site and the crawl tests' news server are both one."""

from __future__ import annotations

import sys
import threading
from abc import ABC, abstractmethod
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

Response = tuple[int, dict[str, str], bytes]  # status, headers, body


class LoopbackServer(ABC):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # callers report what they need
                pass

            def do_HEAD(self) -> None:
                self._answer(head=True)

            def do_GET(self) -> None:
                self._answer(head=False)

            def _answer(self, head: bool) -> None:
                status, headers, body = server.respond_to(self.path, self.headers)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    try:
                        self.wfile.write(body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client hung up: nothing to tell it

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                # a crawler that gives up on a slow page resets the connection: expected
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.httpd = Server((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port: int = self.httpd.server_address[1]
        self.base = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @abstractmethod
    def respond(self, path: str) -> Response:
        """The answer to a GET of `path` (with its query string); HEAD sends no body."""

    def respond_to(self, path: str, request_headers: Message) -> Response:
        """The answer given the request's headers too (conditional GETs); by default,
        `respond(path)`."""
        return self.respond(path)

    def url(self, path: str) -> str:
        return self.base + path

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

"""A real HTTP server on 127.0.0.1 for crawl tests: a route table, served from a thread.

Each route answers with a fixed status, headers and body, or is a redirect; `delay`
makes a slow server. Every request is logged so tests can assert what was fetched.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class NewsServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []  # paths with query, in arrival order
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_HEAD(self) -> None:
                self._answer(head=True)

            def do_GET(self) -> None:
                self._answer(head=False)

            def _answer(self, head: bool) -> None:
                with server._lock:
                    server.requests.append(self.path)
                route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if route is None:
                    route = Route(b"<html><body><h1>Not found</h1></body></html>", 404,
                                  {"Content-Type": "text/html; charset=utf-8"})
                if route.delay:
                    time.sleep(route.delay)
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if not head:
                    try:
                        self.wfile.write(route.body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                # a crawler that gives up on a slow route resets the connection: expected

                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> NewsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8",
            status: int = 200, headers: dict[str, str] | None = None, delay: float = 0.0) -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        hdrs = {"Content-Type": content_type} if content_type else {}
        hdrs.update(headers or {})
        self.routes[path] = Route(data, status, hdrs, delay)
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 301) -> str:
        self.routes[path] = Route(b"", status, {"Location": to})
        return self.url(path)

    def add_tree(self, root: Path, prefix: str = "/") -> None:
        """Serve every file below `root` (content type from the extension)."""
        types = {".html": "text/html; charset=utf-8", ".xml": "application/xml",
                 ".rss": "application/rss+xml", ".atom": "application/atom+xml",
                 ".txt": "text/plain; charset=utf-8", ".json": "application/json"}
        for path in sorted(root.rglob("*")):
            if path.is_file():
                rel = prefix + path.relative_to(root).as_posix()
                self.add(rel, path.read_bytes(), types.get(path.suffix, "application/octet-stream"))

    def fetched(self, path: str) -> int:
        with self._lock:
            return sum(1 for p in self.requests if p == path or p.split("?")[0] == path)

"""A real HTTP server on 127.0.0.1 for crawl tests: a route table, served from a thread.

Each route answers with a fixed status, headers and body, or is a redirect; `delay`
makes a slow server. Every request is logged so tests can assert what was fetched.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from dozor.demo.loopback import LoopbackServer, Response
from dozor.demo.render import RenderedSite, render_site


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class NewsServer(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []  # paths with query, in arrival order
        self.not_modified: list[str] = []  # of them, those answered 304
        self._lock = threading.Lock()

    def respond_to(self, path: str, request_headers: Message) -> Response:
        """A route with an ETag or Last-Modified answers a request carrying the same one
        back (If-None-Match / If-Modified-Since) with 304, as a web server does."""
        status, headers, body = self.respond(path)
        etag, modified = headers.get("ETag"), headers.get("Last-Modified")
        if status == 200 and (
                (etag and request_headers.get("If-None-Match") == etag)
                or (modified and request_headers.get("If-Modified-Since") == modified)):
            with self._lock:
                self.not_modified.append(path)
            return 304, {k: v for k, v in headers.items() if k in ("ETag", "Last-Modified")}, b""
        return status, headers, body

    def respond(self, path: str) -> Response:
        with self._lock:
            self.requests.append(path)
        route = self.routes.get(path) or self.routes.get(path.split("?")[0])
        if route is None:
            route = Route(b"<html><body><h1>Not found</h1></body></html>", 404,
                          {"Content-Type": "text/html; charset=utf-8"})
        if route.delay:
            time.sleep(route.delay)
        return route.status, route.headers, route.body

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


def serve_site(server: NewsServer, root: Path) -> RenderedSite:
    """Serve the site written under `root` (dozor.demo.render): its pages and redirects."""
    site = render_site(root, server.base)
    for path, page in site.pages.items():
        server.add(path, page.body, page.content_type)
    for old, new in site.redirects.items():
        server.redirect(old, new, status=301)
    return site

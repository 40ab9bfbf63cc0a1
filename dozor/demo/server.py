"""Serve the bundled demo news site on 127.0.0.1 from a background thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from dozor.demo.render import RenderedSite, render_site

SITE_ROOT = Path(__file__).parent / "site"

NOT_FOUND = (b"<!doctype html><html><head><title>404</title></head>"
             b"<body><h1>Not found</h1></body></html>")


class DemoServer:
    """The site at `root`, rendered for this server's own port and served read-only.

    Query strings are ignored when looking a page up, as a news CMS does with the
    tracking parameters that feeds and social links append.
    """

    def __init__(self, root: Path = SITE_ROOT) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # the demo prints its own summary
                pass

            def do_HEAD(self) -> None:
                self._answer(head=True)

            def do_GET(self) -> None:
                self._answer(head=False)

            def _answer(self, head: bool) -> None:
                path = urlsplit(self.path).path
                page = server.site.pages.get(path)
                if path in server.site.redirects:
                    status, ctype, body = 301, "text/html; charset=utf-8", b""
                    extra = {"Location": server.site.redirects[path]}
                elif page is None:
                    status, ctype, body, extra = 404, "text/html; charset=utf-8", NOT_FOUND, {}
                else:
                    status, ctype, body, extra = 200, page.content_type, page.body, {}
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                if not head:
                    try:
                        self.wfile.write(body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client hung up: nothing to tell it

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port: int = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.site: RenderedSite = render_site(root, self.base)
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def start(self) -> DemoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

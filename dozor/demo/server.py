"""Serve the bundled demo news site on 127.0.0.1 from a background thread."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from dozor.demo.loopback import LoopbackServer, Response
from dozor.demo.render import RenderedSite, render_site

SITE_ROOT = Path(__file__).parent / "site"

NOT_FOUND = (b"<!doctype html><html><head><title>404</title></head>"
             b"<body><h1>Not found</h1></body></html>")
HTML = "text/html; charset=utf-8"


class DemoServer(LoopbackServer):
    """The site at `root`, rendered for this server's own port and served read-only.

    Query strings are ignored when looking a page up, as a news CMS does with the
    tracking parameters that feeds and social links append.
    """

    def __init__(self, root: Path = SITE_ROOT) -> None:
        super().__init__()
        self.site: RenderedSite = render_site(root, self.base)

    def respond(self, path: str) -> Response:
        path = urlsplit(path).path
        if path in self.site.redirects:
            return 301, {"Content-Type": HTML, "Location": self.site.redirects[path]}, b""
        page = self.site.pages.get(path)
        if page is None:
            return 404, {"Content-Type": HTML}, NOT_FOUND
        return 200, {"Content-Type": page.content_type}, page.body

"""Serve the bundled demo news site on 127.0.0.1 from a background thread."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from dozor.demo.loopback import LoopbackServer, Response
from dozor.demo.render import RenderedSite, render_site
from dozor.demo.telegram import channel_pages, load_channels
from pipelines.article import utcnow

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
        # the demo's Telegram channels, answered at /s/<channel> as t.me answers them
        self.channels = load_channels(root / "_telegram", self.base, utcnow())
        self.channel_pages = {path: html.encode("utf-8")
                              for name, (title, posts) in self.channels.items()
                              for path, html in channel_pages(name, title, posts).items()}

    def sources(self) -> dict[str, list[dict[str, object]]]:
        """A sources.yaml document crawling the site's outlets and its channels."""
        doc = self.site.sources()
        if self.channels:
            doc["sources"].append({"name": "demo-channels", "follow_links": True,
                                   "telegram": sorted(self.channels)})
        return doc

    def respond(self, path: str) -> Response:
        if path in self.channel_pages:  # older pages differ only in ?before=
            return 200, {"Content-Type": HTML}, self.channel_pages[path]
        path = urlsplit(path).path
        if path in self.site.redirects:
            return 301, {"Content-Type": HTML, "Location": self.site.redirects[path]}, b""
        page = self.site.pages.get(path)
        if page is None:
            return 404, {"Content-Type": HTML}, NOT_FOUND
        return 200, {"Content-Type": page.content_type}, page.body

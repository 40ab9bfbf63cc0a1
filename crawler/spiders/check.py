"""The `sources-check` spider: fetch each feed, sitemap, listing and Telegram channel's
first preview page once and report on it.

It goes through the same settings, robots.txt handling and network guard as a crawl,
follows no entries and archives nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scrapy import Request
from scrapy.http import Response
from scrapy.linkextractors import LinkExtractor
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.feeds import EntryList, NotAFeed, UnsafeXML, parse_feed, parse_sitemap
from crawler.spiders.base import (
    DozorSpider,
    SourcesArg,
    describe_failure,
    listing_entries,
    sitemap_body,
)
from crawler.spiders.telegram import channel_request, telegram_base
from pipelines.archive import PageMeta
from pipelines.telegram import parse_channel_page


@dataclass
class DocumentCheck:
    source: str
    kind: str  # feed | sitemap | listing | telegram
    url: str
    status: int | None = None  # HTTP status of the final response
    format: str = ""  # rss20, atom10, urlset, sitemapindex, html, ...
    items: int = 0  # entries, child sitemaps, article links or posts on the first page
    newest: datetime | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.status is not None and self.status < 400


class SourcesCheckSpider(DozorSpider):
    name = "sources-check"
    custom_settings = {"DOZOR_ARCHIVE": False, "ITEM_PIPELINES": {}}

    def __init__(self, sources: SourcesArg = None, results: list[DocumentCheck] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(sources, **kwargs)
        self.results: list[DocumentCheck] = [] if results is None else results
        self.links = LinkExtractor(unique=True)

    async def start(self) -> AsyncIterator[Request]:
        for source in self.sources:
            for request in self.source_requests(source, feed=self.parsed, sitemap=self.parsed,
                                                listing=self.parsed, errback=self.failed):
                meta = request.meta["dozor"]
                check = DocumentCheck(source.name, meta["kind"], request.url,
                                      problem="no response")
                self.results.append(check)
                request.meta["check"] = check
                yield request
            for channel in source.telegram:
                channel_meta: PageMeta = {"kind": "telegram", "source": source.name,
                                          "via": "telegram"}
                request = channel_request(telegram_base(self.crawler), channel, channel_meta,
                                          self.channel_checked, self.failed)
                request.meta["check"] = DocumentCheck(source.name, "telegram", request.url,
                                                      problem="no response")
                self.results.append(request.meta["check"])
                yield request

    def channel_checked(self, response: Response) -> None:
        check: DocumentCheck = response.meta["check"]
        check.status, check.problem, check.format = response.status, None, "telegram preview"
        if response.status == 404:
            check.problem = "does not exist (HTTP 404)"
            return
        page = parse_channel_page(response.body, response.meta["channel"], base=response.url)
        check.items = len(page.posts)
        check.newest = max((p.published_at for p in page.posts if p.published_at), default=None)
        if page.problem:
            check.problem = page.describe().split(": ", 1)[1]

    def parsed(self, response: Response) -> None:
        check: DocumentCheck = response.meta["check"]
        check.status, check.problem = response.status, None
        try:
            if check.kind == "listing":
                check.format = "html"
                check.items = len(listing_entries(response, self.links))
                return
            if check.kind == "feed":
                content_type = response.headers.get("Content-Type", b"").decode("latin-1")
                found: EntryList = parse_feed(response.body, response.url, content_type)
            else:
                max_size = self.settings.getint("DOWNLOAD_MAXSIZE")
                found = parse_sitemap(sitemap_body(response, max_size))
        except (UnsafeXML, NotAFeed) as exc:
            check.problem = str(exc)
            return
        check.format = found.kind
        check.items = len(found.entries) + len(found.sitemaps)
        check.newest = found.newest

    def failed(self, failure: Failure) -> None:
        check: DocumentCheck = failure.request.meta["check"]  # type: ignore[attr-defined]
        if isinstance(failure.value, HttpError):
            check.status = failure.value.response.status
        check.problem = describe_failure(failure.value)

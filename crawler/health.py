"""What each feed, sitemap, listing and Telegram channel request of a crawl says about
its source (`pipelines.health.FetchOutcome`), and the requests the frontier saves.

`HealthMiddleware` (downloader, next to the spider: it sees the final answer after
Scrapy's redirects and retries) sends the validators of the URL's last processed answer
(If-None-Match / If-Modified-Since), ends a 304 before any parsing, and records status,
bytes, a permanent redirect, a feed answered with HTML, an anti-bot wall, Retry-After and
errors. `HealthSpiderMiddleware` counts the new items a document's callback produced and
keeps its validators only once that callback has read it without a problem. An article
link that redirected is remembered by the URL requested, and a 404/410 article URL is
asked again only after a backoff (`Frontier.mark_gone`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from crawler.middlewares import retry_after
from pipelines.article import RawPage
from pipelines.health import BLOCK_STATUSES, FetchOutcome, HealthRecord

DOCUMENT_KINDS = frozenset({"feed", "sitemap", "listing", "telegram"})
PERMANENT_REDIRECTS = frozenset({301, 308})
# what the anti-bot walls of CDNs put in the page they answer instead of the document
WALL = re.compile(rb"captcha|cf-chl-|challenge-platform|attention required|access denied",
                  re.IGNORECASE)
BAD_DOCUMENT_STATS = ("dozor/bad_documents", "dozor/unsafe_xml")


class NotModified(IgnoreRequest):
    """The document has not changed since its last processed fetch (HTTP 304)."""


class HealthLog:
    """The records the store had before the crawl, and this crawl's outcomes."""

    def __init__(self, previous: Iterable[HealthRecord] = ()) -> None:
        self.previous = {r.key: r for r in previous}
        self.outcomes: dict[tuple[str, str], FetchOutcome] = {}

    def outcome(self, meta: dict[str, Any]) -> FetchOutcome:
        key = (meta["source"], meta["health_url"])
        if key not in self.outcomes:
            self.outcomes[key] = FetchOutcome(meta["source"], meta["health_url"], meta["kind"])
        return self.outcomes[key]


def _health(spider: Spider | None) -> HealthLog | None:
    log = getattr(spider, "health", None)
    return log if isinstance(log, HealthLog) else None


def _document(request: Request) -> dict[str, Any] | None:
    meta = request.meta.get("dozor")
    # a revisit's channel page (a worker's, from the frontier) is no poll of the channel
    return meta if meta and meta.get("kind") in DOCUMENT_KINDS and meta.get(
        "via") != "revisit" else None


def _is_html(response: Response) -> bool:
    content_type = response.headers.get("Content-Type", b"").lower()
    return b"html" in content_type or response.body.lstrip()[:15].lower().startswith(
        (b"<!doctype html", b"<html"))


class HealthMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HealthMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        meta, log = _document(request), _health(self.crawler.spider)
        if meta is None or log is None:
            return
        # the URL the source lists: child sitemaps and a channel's older pages count for it
        meta.setdefault("health_url", request.url)
        if request.url != meta["health_url"] or request.meta.get("redirect_urls"):
            return
        record = log.previous.get((meta["source"], meta["health_url"]))
        if record is not None and record.etag:
            request.headers.setdefault("If-None-Match", record.etag)
        if record is not None and record.last_modified:
            request.headers.setdefault("If-Modified-Since", record.last_modified)

    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Response:
        spider = self.crawler.spider
        meta = request.meta.get("dozor") or {}
        if meta.get("kind") == "article":
            self._article(meta, request, response, spider)
            return response
        log = _health(spider)
        if _document(request) is None or log is None or "health_url" not in meta:
            return response
        outcome = log.outcome(meta)
        outcome.bytes += len(response.body)
        if request.url != meta["health_url"] and not request.meta.get("redirect_urls"):
            return response  # a child sitemap or an older channel page: bytes only
        outcome.status = response.status
        if response.status in (429, 503):
            outcome.retry_after = retry_after(response.headers)
        if response.status == 304:
            outcome.not_modified = True
            raise NotModified(f"{request.url} not modified")
        reasons = request.meta.get("redirect_reasons") or []
        if any(r in PERMANENT_REDIRECTS for r in reasons):
            outcome.state, outcome.final_url = "moved", response.url
        if response.status in BLOCK_STATUSES:
            outcome.state, outcome.error = "blocked", f"HTTP {response.status}"
        elif response.status >= 400:
            outcome.error = f"HTTP {response.status}"
        elif meta["kind"] in ("feed", "sitemap") and _is_html(response):
            wall = WALL.search(response.body[:20_000])
            outcome.state = "blocked" if wall else "moved"
            outcome.final_url = outcome.final_url or response.url
            outcome.error = ("an anti-bot page instead of the " if wall else
                             "HTML instead of a ") + meta["kind"]
        else:
            # kept once the callback has read the body (HealthSpiderMiddleware)
            meta["validators"] = (
                response.headers.get("ETag", b"").decode("latin-1"),
                response.headers.get("Last-Modified", b"").decode("latin-1"))
        return response

    def process_exception(self, request: Request, exception: Exception,
                          spider: Spider | None = None) -> None:
        meta, log = _document(request), _health(self.crawler.spider)
        if meta is None or log is None or isinstance(exception, NotModified):
            return
        if request.url == meta.get("health_url") or request.meta.get("redirect_urls"):
            outcome = log.outcome(meta)
            outcome.error = f"{type(exception).__name__}: {exception}".rstrip(": ")

    def _article(self, meta: dict[str, Any], request: Request, response: Response,
                 spider: Spider) -> None:
        pipeline = getattr(spider, "pipeline", None)
        if pipeline is None or not meta.get("url"):
            return
        # Only a gone URL is recorded here. A redirected article's first URL is marked
        # seen by the batch that stores the article (crawler.batches), never earlier: a
        # run killed in between would leave the link seen and its article unstored.
        if response.status in (404, 410):
            pipeline.store.mark_gone({meta["url"]: response.status})


class HealthSpiderMiddleware:
    """Counts what a document's callback found new, and keeps the document's validators
    only when the callback read it without a problem."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HealthSpiderMiddleware:
        return cls(crawler)

    def process_spider_output(self, response: Response, result: Iterable[Any],
                              spider: Spider | None = None) -> Iterator[Any]:
        watch = self._watch(response)
        for item in result:
            if watch:
                watch.count(item)
            yield item
        if watch:
            watch.done()

    async def process_spider_output_async(self, response: Response,
                                          result: AsyncIterable[Any],
                                          spider: Spider | None = None
                                          ) -> AsyncIterator[Any]:
        watch = self._watch(response)
        async for item in result:
            if watch:
                watch.count(item)
            yield item
        if watch:
            watch.done()

    def _watch(self, response: Response) -> _Watch | None:
        meta, log = _document(response.request), _health(self.crawler.spider)
        if meta is None or log is None or "health_url" not in meta:
            return None
        return _Watch(meta, log.outcome(meta), response, self.crawler)


class _Watch:
    """One document callback's output, watched."""

    def __init__(self, meta: dict[str, Any], outcome: FetchOutcome, response: Response,
                 crawler: Crawler) -> None:
        self.meta, self.outcome, self.response = meta, outcome, response
        self.stats = crawler.stats
        self.before = self._problems()

    def _problems(self) -> int:
        return sum(self.stats.get_value(k, 0) for k in BAD_DOCUMENT_STATS)

    def count(self, item: Any) -> None:
        if isinstance(item, RawPage) or (isinstance(item, Request) and (
                item.meta.get("dozor") or {}).get("kind") == "article"):
            self.outcome.new_items += 1

    def done(self) -> None:
        meta, outcome = self.meta, self.outcome
        if meta.get("unavailable"):
            outcome.state, outcome.error = "unavailable", meta["unavailable"]
        elif self._problems() > self.before:
            outcome.error = outcome.error or f"unreadable {meta['kind']}"
        elif "validators" in meta and self.response.url == meta["health_url"]:
            outcome.etag, outcome.last_modified = meta.pop("validators")

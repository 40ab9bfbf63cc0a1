"""The `news` spider: feeds, sitemaps and listing pages of every source, then articles.

Article URLs are canonicalised before they are scheduled, kept to the source's domains
and recent entries, and checked against the store in one batch per feed/sitemap/listing:
an article the store already has is never requested again. Every article response that
is HTML becomes a `RawPage` carrying the feed's hints; the item pipeline batches them
into the stages.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Self

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.linkextractors import LinkExtractor
from twisted.python.failure import Failure

from crawler.batches import PageProcessor
from crawler.feeds import Entry, NotAFeed, UnsafeXML, parse_feed, parse_sitemap
from crawler.middlewares import RefusedRequest, header_pairs
from crawler.settings import run_config, setting_or_env
from crawler.spiders.base import (
    DozorSpider,
    SourcesArg,
    SourceScope,
    describe_failure,
    is_robots_forbidden,
    listing_entries,
    sitemap_body,
)
from crawler.spiders.telegram import LINKED_FROM_POST, TelegramChannels
from pipelines.archive import PageMeta, is_html, page_from, page_headers
from pipelines.article import utcnow
from pipelines.urls import canonicalize

log = logging.getLogger(__name__)


class NewsSpider(DozorSpider):
    name = "news"

    def __init__(self, sources: SourcesArg = None, pipeline: PageProcessor | None = None,
                 notices: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(sources, **kwargs)
        self.pipeline = pipeline
        self.notices: list[str] = [] if notices is None else notices
        self.scopes: dict[str, SourceScope] = {}
        self.max_age: timedelta  # crawl.max_age_days, set in from_crawler
        self.links = LinkExtractor(unique=True)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.scopes = {s.name: SourceScope(s) for s in spider.sources}
        # the default is CrawlSettings': every crawl's settings come through ConfigAddon
        spider.max_age = timedelta(days=crawler.settings.getint("DOZOR_MAX_AGE_DAYS"))
        if spider.pipeline is None:
            spider.pipeline = spider._own_pipeline(crawler)
        spider.telegram = TelegramChannels(
            setting_or_env(crawler.settings, "DOZOR_TELEGRAM_URL"),
            store=lambda: spider.pipeline.store, crawler=crawler, max_age=spider.max_age,
            errback=spider.failed, follow=spider._linked_articles, notices=spider.notices)
        spider.telegram.follow_sources = frozenset(
            s.name for s in spider.sources if s.follow_links)
        return spider

    def _own_pipeline(self, crawler: Crawler) -> PageProcessor:
        """`scrapy crawl news` without the CLI: the configured store (DOZOR_DB) and stages.

        Crawl and index only; alerts are sent by `dozor run` (or `dozor alerts send`).
        """
        # start-up cost: Scrapy imports every spider module (the sources check too); the
        # stages and a store load only when this spider runs without a given pipeline
        from pipelines.config.backend import store_options
        from pipelines.process import build_pipeline
        from pipelines.store import open_store

        config = run_config(crawler.settings)
        store = open_store(**store_options(config,
                                           db=setting_or_env(crawler.settings, "DOZOR_DB")))
        keep = frozenset(s.name for s in self.sources if s.keep == "relevant")
        pipeline, notices = build_pipeline(store, config, keep)
        for notice in notices:
            log.warning("%s", notice)
        # item pipelines are closed (last batch written) before spider_closed fires
        crawler.signals.connect(store.close, signal=signals.spider_closed)
        return pipeline

    async def start(self) -> AsyncIterator[Request]:
        for source in self.sources:
            for request in self.source_requests(
                    source, feed=self.parse_feed, sitemap=self.parse_sitemap,
                    listing=self.parse_listing, errback=self.failed):
                yield request
            for request in self.telegram.requests(source):
                yield request

    # --- feeds, sitemaps, listings -------------------------------------------------------

    def parse_feed(self, response: Response) -> Iterator[Request]:
        content_type = response.headers.get("Content-Type", b"").decode("latin-1")
        try:
            feed = parse_feed(response.body, response.url, content_type)
        except (UnsafeXML, NotAFeed) as exc:
            self._bad_document(response, exc)
            return
        yield from self._articles(response, feed.entries, feed.lang)

    def parse_sitemap(self, response: Response) -> Iterator[Request]:
        try:
            max_size = self.settings.getint("DOWNLOAD_MAXSIZE")
            sitemap = parse_sitemap(sitemap_body(response, max_size))
        except (UnsafeXML, NotAFeed) as exc:
            self._bad_document(response, exc)
            return
        meta: PageMeta = response.meta["dozor"]
        scope = self.scopes[meta["source"]]
        cutoff = utcnow() - self.max_age
        for child in sitemap.sitemaps:
            url = canonicalize(child.url, base=response.url)
            if scope.allows(url) and not (child.published and child.published < cutoff):
                yield response.follow(url, callback=self.parse_sitemap, errback=self.failed,
                                      meta={"dozor": {**meta}}, priority=10)
        yield from self._articles(response, sitemap.entries, None)

    def parse_listing(self, response: Response) -> Iterator[Request]:
        try:
            entries = listing_entries(response, self.links)
        except NotAFeed as exc:
            self._bad_document(response, exc)
            return
        yield from self._articles(response, entries, None)

    def _bad_document(self, response: Response, exc: Exception) -> None:
        meta: PageMeta = response.meta["dozor"]
        key = "unsafe_xml" if isinstance(exc, UnsafeXML) else "bad_documents"
        self.crawler.stats.inc_value(f"dozor/{key}")
        log.warning("%s: %s %s: %s", meta["source"], meta["kind"], response.url, exc)

    def _linked_articles(self, response: Response, entries: list[Entry]) -> Iterator[Request]:
        """The web articles a channel's posts link to (`follow_links`), on any site."""
        yield from self._articles(response, entries, None, anywhere=True, via=LINKED_FROM_POST)

    def _articles(self, response: Response, entries: Iterable[Entry],
                  doc_lang: str | None, anywhere: bool = False, via: str | None = None
                  ) -> Iterator[Request]:
        """Requests for the entries worth fetching, the store asked once for all of them."""
        meta: PageMeta = response.meta["dozor"]
        scope = self.scopes[meta["source"]]
        cutoff = utcnow() - self.max_age
        stats = self.crawler.stats
        fresh: dict[str, Entry] = {}
        listed = offsite = old = 0
        for entry in entries:
            listed += 1
            url = canonicalize(entry.url, base=response.url)
            if not url.startswith(("http://", "https://")) or not (anywhere or scope.allows(url)):
                offsite += 1
            elif entry.published and entry.published < cutoff:
                old += 1
            else:
                fresh.setdefault(url, entry)
        assert self.pipeline is not None
        seen = self.pipeline.store.seen(list(fresh)) if fresh else set()
        stats.inc_value("dozor/entries", listed)
        stats.inc_value("dozor/offsite", offsite)
        stats.inc_value("dozor/too_old", old)
        stats.inc_value("dozor/seen_skipped", len(seen))
        log.info("%s: %s %s lists %d: %d to fetch, %d already stored, %d older than %d days, "
                 "%d outside the source's domains", meta["source"], meta["kind"], response.url,
                 listed, len(fresh) - len(seen), len(seen), old, self.max_age.days, offsite)
        for url, entry in fresh.items():
            if url in seen:
                continue
            article: PageMeta = {
                "kind": "article",
                "source": meta["source"],
                "via": via or meta["via"],
                "url": url,
                "source_lang": meta.get("source_lang"),
                "feed_lang": entry.lang or doc_lang,
                "feed_title": entry.title,
                "feed_published": entry.published.isoformat() if entry.published else None,
            }
            yield Request(url, callback=self.parse_article, errback=self.failed,
                          meta={"dozor": article})

    # --- articles -------------------------------------------------------------------------

    def parse_article(self, response: Response) -> Iterator[Any]:
        meta: PageMeta = response.meta["dozor"]
        headers = page_headers(header_pairs(response.headers))
        if not is_html(headers, response.url, response.body):
            self.crawler.stats.inc_value("dozor/non_html")
            log.info("%s: %s is %s, not HTML: archived, not processed", meta["source"],
                     response.url, headers.get("content-type") or "of unknown type")
            # fetched, never an article: not worth fetching again
            self.pipeline.store.mark_seen([meta["url"]])
            return
        archived = response.meta.get("dozor_warc")
        fetched_at: datetime = archived.date if archived else utcnow()
        self.crawler.stats.inc_value("dozor/pages")
        yield page_from(meta, response.url, response.status, headers, response.body, fetched_at,
                        archived.file if archived else None,
                        archived.record_id if archived else None)

    def failed(self, failure: Failure) -> None:
        exc = failure.value
        request: Request = failure.request  # type: ignore[attr-defined]
        meta: PageMeta = request.meta.get("dozor", {})
        if isinstance(exc, RefusedRequest):
            return  # logged and counted by the guard
        if is_robots_forbidden(exc):
            log.info("%s: robots.txt forbids %s", meta.get("source"), request.url)
            return  # counted by RobotsTxtMiddleware (robotstxt/forbidden)
        self.crawler.stats.inc_value("dozor/errors")
        log.warning("%s: %s %s failed: %s", meta.get("source"), meta.get("kind", "request"),
                    request.url, describe_failure(exc))

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
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.linkextractors import LinkExtractor
from twisted.python.failure import Failure

from crawler.batches import PageProcessor
from crawler.feeds import Entry, NotAFeed, UnsafeXML, parse_feed, parse_sitemap
from crawler.health import NotModified
from crawler.middlewares import OffsiteRedirect, OverBudget, RefusedRequest, header_pairs
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
from pipelines.urls import BadURL, URLTooLong, canonicalize, site_domain

log = logging.getLogger(__name__)

DROPPED_NAMED = 50


class NewsSpider(DozorSpider):
    name = "news"

    def __init__(self, sources: SourcesArg = None, pipeline: PageProcessor | None = None,
                 notices: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(sources, **kwargs)
        self.pipeline = pipeline
        self.notices: list[str] = [] if notices is None else notices
        self.scopes: dict[str, SourceScope] = {}
        self.sitemaps: dict[str, int] = {}  # child sitemaps followed per source this run
        self.dropped = 0
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
        crawler.signals.connect(pipeline.close, signal=signals.spider_closed)
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
        depth = meta.get("depth", 0) + 1
        for child in sitemap.sitemaps:
            try:
                url = canonicalize(child.url, base=response.url)
            except BadURL as exc:
                self.drop(meta["source"], "bad_links", child.url, f"not a usable URL: {exc}")
                continue
            if not scope.allows(url) or (child.published and child.published < cutoff):
                continue
            # an index of indexes of ... is followed only so deep and so wide per run
            if depth > self.settings.getint("DOZOR_SITEMAP_DEPTH", 3):
                self.drop(meta["source"], "sitemap_bounds", url,
                          f"sitemap index nested deeper than {depth - 1} levels "
                          "(crawl.sitemap_depth)")
                continue
            count = self.sitemaps.get(meta["source"], 0) + 1
            if count > self.settings.getint("DOZOR_SITEMAPS_PER_SOURCE", 50):
                self.drop(meta["source"], "sitemap_bounds", url,
                          f"more than {count - 1} sitemaps this run (crawl.sitemaps_per_source)")
                continue
            self.sitemaps[meta["source"]] = count
            yield response.follow(url, callback=self.parse_sitemap, errback=self.failed,
                                  meta={"dozor": {**meta, "depth": depth}}, priority=10)
        yield from self._articles(response, sitemap.entries, None)

    def parse_listing(self, response: Response) -> Iterator[Request]:
        try:
            entries = listing_entries(response, self.links)
        except NotAFeed as exc:
            self._bad_document(response, exc)
            return
        yield from self._articles(response, entries, None)

    def drop(self, source: str, key: str, url: str, reason: str) -> None:
        """Count an entry or request given up on under `dozor/<key>`, and name it: the run's
        notices list the first DROPPED_NAMED of them."""
        self.crawler.stats.inc_value(f"dozor/{key}")
        self.dropped += 1
        if self.dropped <= DROPPED_NAMED:
            self.notices.append(f"{source}: dropped {url}: {reason}")
        elif self.dropped == DROPPED_NAMED + 1:
            self.notices.append(f"more than {DROPPED_NAMED} entries dropped: the crawl figures "
                                "count them, the log names them")
        log.warning("%s: dropped %s: %s", source, url, reason)

    def _bad_document(self, response: Response, exc: Exception) -> None:
        meta: PageMeta = response.meta["dozor"]
        key = "unsafe_xml" if isinstance(exc, UnsafeXML) else "bad_documents"
        self.crawler.stats.inc_value(f"dozor/{key}")
        log.warning("%s: %s %s: %s", meta["source"], meta["kind"], response.url, exc)

    def _linked_articles(self, response: Response, entries: list[Entry]) -> Iterator[Request]:
        """The web articles a channel's posts link to (`follow_links`), on any site but
        the configured sources' own: those come through their feeds, as their articles."""
        elsewhere = [e for e in entries
                     if not any(scope.allows(e.url) for scope in self.scopes.values())]
        yield from self._articles(response, elsewhere, None, anywhere=True, via=LINKED_FROM_POST)

    def _articles(self, response: Response, entries: Iterable[Entry],
                  doc_lang: str | None, anywhere: bool = False, via: str | None = None
                  ) -> Iterator[Request]:
        """Requests for the entries worth fetching, the store asked once for all of them."""
        meta: PageMeta = response.meta["dozor"]
        scope = self.scopes[meta["source"]]
        listed_at = utcnow()
        cutoff = listed_at - self.max_age
        stats = self.crawler.stats
        fresh: dict[str, Entry] = {}
        listed = offsite = old = 0
        for entry in entries:
            listed += 1
            try:
                url = canonicalize(entry.url, base=response.url)
            except BadURL as exc:
                # one bad link is that entry's problem, not the whole feed's
                key = "too_long" if isinstance(exc, URLTooLong) else "bad_links"
                self.drop(meta["source"], key, entry.url[:200], f"not a usable URL: {exc}")
                continue
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
                "first_seen": listed_at.isoformat(),
                # where this article may be: redirects and its canonical URL are held to it
                "domains": [site_domain(url)] if anywhere else sorted(scope.domains),
            }
            if entry.linked_from:
                article["linked_from"] = list(entry.linked_from)
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
        if isinstance(exc, RefusedRequest | NotModified):
            return  # logged and counted by the guard; unchanged since the last run
        source = meta.get("source", "")
        if isinstance(exc, OffsiteRedirect):
            self.drop(source, "offsite_redirects", request.url, str(exc))
            return
        if isinstance(exc, OverBudget):
            self.drop(source, "over_budget", request.url, str(exc))
            return
        if isinstance(exc, IgnoreRequest) and str(exc) == "max redirections reached":
            hops = self.settings.getint("REDIRECT_MAX_TIMES")
            self.drop(source, "redirect_loops", meta.get("url") or request.url,
                      f"redirect loop, or a chain longer than {hops} hops (last: {request.url})")
            return
        if is_robots_forbidden(exc):
            log.info("%s: robots.txt forbids %s", meta.get("source"), request.url)
            return  # counted by RobotsTxtMiddleware (robotstxt/forbidden)
        self.crawler.stats.inc_value("dozor/errors")
        log.warning("%s: %s %s failed: %s", meta.get("source"), meta.get("kind", "request"),
                    request.url, describe_failure(exc))

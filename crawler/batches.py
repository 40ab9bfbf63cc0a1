"""The thin Scrapy adapter: RawPage items, collected into batches, handed to the stages."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_from_coro

from pipelines.article import RawPage
from pipelines.store import DatabaseUnusable, Ingest
from pipelines.urls import canonicalize

log = logging.getLogger(__name__)

FATAL_STAT = "dozor/fatal"


class PageProcessor(Protocol):
    """What a crawl feeds: `pipelines.process.Pipeline`, or anything shaped like it."""

    store: Ingest

    def process(self, pages: list[RawPage]) -> Any: ...


class BatchPipeline:
    """Item pipeline: every `DOZOR_BATCH_SIZE` pages (and at the end) one `process` call.

    The stages run on the reactor thread: they are CPU-bound and the store is not
    shared across threads, so downloads pause while a batch is processed. A database
    found broken (DatabaseUnusable) ends the crawl: every later batch would fail too.
    Its message is kept in the stats as FATAL_STAT for the runner to raise.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        # crawl.batch_size (its default is CrawlSettings'), put there by ConfigAddon
        self.size = crawler.settings.getint("DOZOR_BATCH_SIZE")
        self.pending: list[RawPage] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BatchPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, RawPage):
            self.pending.append(item)
            if len(self.pending) >= self.size:
                self.flush()
        return item

    def close_spider(self) -> None:
        self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        stats = self.crawler.stats
        if not batch or stats.get_value(FATAL_STAT):
            return
        try:
            done = process_batch(self.crawler.spider.pipeline, batch)
        except DatabaseUnusable as exc:
            log.error("%s: the crawl stops", exc)
            stats.set_value(FATAL_STAT, str(exc))
            stats.inc_value("dozor/pages_failed", len(batch))
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="store_unusable"))
            return
        if done:
            stats.inc_value("dozor/batches")
        else:
            stats.inc_value("dozor/batches_failed")
            stats.inc_value("dozor/pages_failed", len(batch))


def process_batch(processor: PageProcessor, batch: list[RawPage]) -> bool:
    """Run the stages on one batch; False (with the error logged) if they failed."""
    try:
        processor.process(batch)
    except DatabaseUnusable:
        raise  # not this batch's fault: no batch can be stored any more
    except Exception:
        # The pages are in the WARC archive already; `dozor reprocess` runs them again.
        archives = sorted({p.warc_file for p in batch if p.warc_file})
        log.exception("a batch of %d pages failed in the stages; they stay archived in %s "
                      "for `dozor reprocess`", len(batch), ", ".join(archives) or "(none)")
        return False
    # The stages mark what they store by its canonical URL; the URL that was requested
    # and the one redirects ended at must not be fetched again either.
    processor.store.mark_seen({u for p in batch for u in (p.url, canonicalize(p.final_url))})
    return True

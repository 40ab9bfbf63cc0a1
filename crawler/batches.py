"""The thin Scrapy adapter: RawPage items, collected into batches, handed to the stages."""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable

from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import Deferred

from pipelines.article import RawPage
from pipelines.store import DatabaseUnusable, Ingest, StoreError
from pipelines.urls import canonicalize

log = logging.getLogger(__name__)

FATAL_STAT = "dozor/fatal"
# pages fetched and through the stages, per source (+ the source's name): the progress
FETCHED_PREFIX = "dozor/fetched/"
PROCESSED_PREFIX = "dozor/processed/"


class PageProcessor(Protocol):
    """What a crawl feeds: `pipelines.process.Pipeline`, or anything shaped like it."""

    store: Ingest

    def process(self, pages: list[RawPage]) -> Any: ...


@runtime_checkable
class PooledProcessor(PageProcessor, Protocol):
    """A processor whose CPU-bound stages run elsewhere (`pipelines.process.Pipeline`):
    `submit` starts them, `store_batch` finishes a batch in this process."""

    @property
    def workers(self) -> int: ...

    def submit(self, pages: list[RawPage]) -> Future[Any]: ...

    def store_batch(self, pages: list[RawPage], analysed: Any) -> Any: ...


class BatchPipeline:
    """Item pipeline: every `DOZOR_BATCH_SIZE` pages (and at the end) one batch.

    A `PooledProcessor`'s batches go to its worker processes and the crawl goes on; the
    results are stored here, on the reactor thread (the store is not shared across
    threads), in the order the batches were made. When the workers fall behind (more
    than two batches per worker in flight) items are held back, so Scrapy stops
    downloading once the responses waiting behind them fill its scraper slot: memory
    stays bounded and the crawl slows to the stages' pace. Any other processor runs on
    the reactor thread and downloads pause while a batch is processed.

    A database found broken (DatabaseUnusable) ends the crawl: every later batch would
    fail too. Its message is kept in the stats as FATAL_STAT for the runner to raise.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        # crawl.batch_size (its default is CrawlSettings'), put there by ConfigAddon
        self.size = crawler.settings.getint("DOZOR_BATCH_SIZE")
        self.pending: list[RawPage] = []
        self.inflight: deque[tuple[list[RawPage], Future[Any]]] = deque()
        self.waiting: list[Deferred[None]] = []  # items held back until the pool has room
        self.closed: Deferred[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BatchPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, RawPage):
            # dozor/pages is their sum
            self.crawler.stats.inc_value(FETCHED_PREFIX + item.source)
            self.pending.append(item)
            if len(self.pending) >= self.size:
                self.flush()
            if self._full():
                held: Deferred[None] = Deferred()
                self.waiting.append(held)
                return held.addCallback(lambda _: item)
        return item

    def close_spider(self) -> Deferred[None] | None:
        self.flush()
        if not self.inflight:
            return None
        self.closed = Deferred()
        return self.closed

    def _full(self) -> bool:
        processor = self.crawler.spider.pipeline
        workers = processor.workers if isinstance(processor, PooledProcessor) else 0
        return len(self.inflight) >= 2 * max(1, workers)

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch or self.crawler.stats.get_value(FATAL_STAT):
            return
        processor = self.crawler.spider.pipeline
        if not isinstance(processor, PooledProcessor):
            self._finish(batch, None)
            return
        # the reactor is imported here, once Scrapy has installed the one it runs
        from twisted.internet import reactor

        try:
            future = processor.submit(batch)
        except Exception as exc:  # a broken pool: this batch fails like any other
            future = Future()
            future.set_exception(exc)
        self.inflight.append((batch, future))
        future.add_done_callback(lambda _: reactor.callFromThread(self._drain))

    def _drain(self) -> None:
        """Store every finished batch at the head of the queue, in order."""
        while self.inflight and self.inflight[0][1].done():
            batch, future = self.inflight.popleft()
            if self.crawler.stats.get_value(FATAL_STAT):
                self.crawler.stats.inc_value("dozor/pages_failed", len(batch))
            else:
                self._finish(batch, future)
        if not self._full():
            waiting, self.waiting = self.waiting, []
            for held in waiting:
                held.callback(None)
        if self.closed is not None and not self.inflight:
            closed, self.closed = self.closed, None
            closed.callback(None)

    def _finish(self, batch: list[RawPage], analysed: Future[Any] | None) -> None:
        stats = self.crawler.stats
        try:
            done = process_batch(self.crawler.spider.pipeline, batch, analysed)
        except DatabaseUnusable as exc:
            log.error("%s: the crawl stops", exc)
            stats.set_value(FATAL_STAT, str(exc))
            stats.inc_value("dozor/pages_failed", len(batch))
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="store_unusable"))
            return
        if done:
            stats.inc_value("dozor/batches")
            for page in batch:
                stats.inc_value(PROCESSED_PREFIX + page.source)
        else:
            stats.inc_value("dozor/batches_failed")
            stats.inc_value("dozor/pages_failed", len(batch))


def _archives(batch: list[RawPage]) -> str:
    return ", ".join(sorted({p.warc_file for p in batch if p.warc_file})) or "(none)"


def process_batch(processor: PageProcessor, batch: list[RawPage],
                  analysed: Future[Any] | None = None) -> bool:
    """Run the stages on one batch (or, with `analysed`, a `PooledProcessor`'s submitted
    stages on it, finished); False (with the error logged) if they failed."""
    try:
        if analysed is None:
            processor.process(batch)
        else:
            assert isinstance(processor, PooledProcessor)
            processor.store_batch(batch, analysed.result())
    except DatabaseUnusable:
        raise  # not this batch's fault: no batch can be stored any more
    except StoreError as exc:
        # an expected failure (the cluster refused or is out of reach): one line, no trace
        log.error("a batch of %d pages was not stored (%s); they stay archived in %s "
                  "for `dozor reprocess`", len(batch), exc, _archives(batch))
        return False
    except Exception:
        # The pages are in the WARC archive already; `dozor reprocess` runs them again.
        log.exception("a batch of %d pages failed in the stages; they stay archived in %s "
                      "for `dozor reprocess`", len(batch), _archives(batch))
        return False
    # The stages mark what they store by its canonical URL; the URL that was requested
    # and the one redirects ended at must not be fetched again either.
    processor.store.mark_seen({u for p in batch for u in (p.url, canonicalize(p.final_url))})
    return True

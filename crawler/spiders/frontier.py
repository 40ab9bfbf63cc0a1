"""The `frontier` spider: the news spider as one of many workers on a shared Redis frontier.

It starts with no request of its own. Sources come from dozor:due (put there by the
leader `dozor schedule --redis`); their feed, sitemap, listing and channel requests and
the article requests they lead to go into the shared scrapy-redis queue, which every
worker takes from. The leader puts the due revisits straight into that queue
(`enqueue_revisits`): the worker that takes one records what changed through the same
revisit callbacks as `dozor revisit`, and its lease goes once the revision is stored.

The worker's layer settles (health records of the finished polls, alerts) at every idle
moment and, while the worker stays busy, every SETTLE_EVERY seconds in a thread, one
settle at a time. It runs until stopped (or, with `idle_exit`, once the frontier has
been empty that long), reporting its figures to Redis.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Self

import redis
from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response
from scrapy.settings import Settings
from twisted.internet import task, threads
from twisted.python.failure import Failure

from crawler.batches import BatchPipeline
from crawler.frontier import (
    DUE_KEY,
    DUE_SET,
    KEPT_META,
    LEASE_META,
    REVISITS_SET,
    WORKERS_KEY,
    AckOnStore,
    FrontierScheduler,
    poll_key,
    push_marked,
    start_poll,
)
from crawler.spiders.news import NewsSpider
from crawler.spiders.revisit import Revisiting
from pipelines.article import RawPage
from pipelines.health import FetchOutcome
from pipelines.revisit import Revisions
from pipelines.store import StoreError
from pipelines.store.history import RevisitTarget
from pipelines.urls import canonicalize

log = logging.getLogger(__name__)

REPORT_EVERY = 2.0  # seconds between a worker's figures in Redis
FLUSH_AFTER = 1.0  # seconds without a new page before a partial batch is stored
# seconds between a busy worker's settles: a fleet at scale is never idle, and its alerts
# and health records (which tell the leader a source was polled) must not wait for that
SETTLE_EVERY = 30.0

Outcomes = dict[tuple[str, str], FetchOutcome]
# the worker's layer: records the outcomes, alerts (and, `replay`, stores its spool);
# True while stored pages wait in the spool
Settle = Callable[[Outcomes, bool], bool]


class FrontierSpider(NewsSpider, Revisiting):
    name = "frontier"

    def __init__(self, *args: Any, worker_id: str | None = None, idle_exit: float | None = None,
                 settle: Settle | None = None, revisions: Revisions | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if revisions is None:
            raise ValueError("FrontierSpider needs the revisions to apply")
        self.revisions = revisions
        self.idle_exit = idle_exit
        self.settle = settle  # alerts and health records, in the worker's cycle layer
        self.settling = False  # a busy settle runs in its thread
        self.idle_since: float | None = None
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.started = time.time()
        self.last_page = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.by_name = {s.name: s for s in spider.sources}
        spider.pipeline = AckOnStore(spider.pipeline, lambda: spider._scheduler.queue)
        crawler.signals.connect(spider._idle, signal=signals.spider_idle)
        crawler.signals.connect(spider._opened, signal=signals.spider_opened)
        crawler.signals.connect(spider._closed, signal=signals.spider_closed)
        return spider

    async def start(self) -> AsyncIterator[Request]:
        return
        yield  # the requests come from the frontier

    def _opened(self) -> None:
        self.loops = [task.LoopingCall(self._take_sources), task.LoopingCall(self._report),
                      task.LoopingCall(self._settle_busy)]
        for loop, every in zip(self.loops, (0.5, REPORT_EVERY, SETTLE_EVERY), strict=True):
            loop.start(every).addErrback(
                lambda failure: log.error("worker loop stopped: %s", failure.getTraceback()))

    def _closed(self) -> None:
        for loop in self.loops:
            if loop.running:
                loop.stop()
        self._report()  # its last figures stay readable until they expire

    @property
    def _scheduler(self) -> FrontierScheduler:
        scheduler = self.crawler.engine._slot.scheduler  # type: ignore[union-attr]
        assert isinstance(scheduler, FrontierScheduler)
        return scheduler

    def _guard(self, call: Callable[[], Any]) -> Any:
        return self._scheduler._guarded(call)

    def _take_sources(self) -> None:
        """Due sources into the shared frontier (their first requests skip the dupefilter:
        a feed is read again at every due time)."""
        if time.monotonic() - self.last_page > FLUSH_AFTER:
            # a partial batch waits for no more pages: stored now, its leases acknowledged
            # (other workers wait for those leases before they call the frontier empty)
            for component in self.crawler.engine.scraper.itemproc.middlewares:  # type: ignore[union-attr]
                if isinstance(component, BatchPipeline) and component.pending:
                    component.flush()
        server = self._scheduler.server
        if self._guard(lambda: len(self._scheduler.queue)):
            # another worker's requests, or its leases (a dead worker's lapse at a pop):
            # take them now, not at the engine's next heartbeat
            self.crawler.engine._slot.nextcall.schedule()  # type: ignore[union-attr]
        for _ in range(20):
            name = self._guard(lambda: server.lpop(DUE_KEY))
            if not name:
                return
            name = name.decode() if isinstance(name, bytes) else name
            self._guard(lambda n=name: server.srem(DUE_SET, n))
            self.idle_since = None
            source = self.by_name.get(name)
            if source is None:
                log.warning("due source %s is not in this worker's sources.yaml", name)
                self._guard(lambda n=name: start_poll(server, n, ()))  # the leader's again
                continue
            requests = self.source_requests(
                source, feed=self.parse_feed, sitemap=self.parse_sitemap,
                listing=self.parse_listing, errback=self.failed)
            requests += map(self._own, self.telegram.requests(source))
            # marked polling until the health of each document is recorded (by whichever
            # worker fetches it): the leader does not queue the source again meanwhile
            urls = {key[1] for key in map(poll_key, requests) if key is not None}
            self._guard(lambda n=name, u=urls: start_poll(server, n, u))
            for request in requests:
                self.crawler.engine.crawl(request.replace(dont_filter=True))

    def already_stored(self, request: Request) -> bool:
        """A redelivered article request whose page a killed worker had already stored."""
        meta = request.meta.get("dozor", {})
        if meta.get("kind") != "article":
            return False
        url = meta.get("url") or canonicalize(request.url)
        return bool(self.pipeline.store.seen([url]))

    def _report(self) -> None:
        stats = self.crawler.stats
        queued, leased = self._guard(self._scheduler.queue.depth) or (0, 0)
        elapsed = max(time.time() - self.started, 1e-9)
        pages = int(stats.get_value("dozor/pages", 0))
        errors = sum(int(stats.get_value(k, 0)) for k in ("dozor/errors", "dozor/pages_failed",
                                                           "dozor/batches_failed"))
        figures = {"pages": pages, "requests": int(stats.get_value(
            "downloader/request_count", 0)), "errors": errors,
            "pages_per_s": round(pages / elapsed, 2), "queued": queued, "leased": leased,
            "started": round(self.started, 3), "updated": round(time.time(), 3)}
        key = f"{WORKERS_KEY}:{self.worker_id}"

        def write(server: redis.Redis = self._scheduler.server) -> None:
            pipe = server.pipeline()
            pipe.sadd(WORKERS_KEY, self.worker_id).hset(key, mapping=figures)
            pipe.expire(key, int(REPORT_EVERY * 15)).execute()

        self._guard(write)

    def _finished_polls(self) -> Outcomes:
        """The health outcomes of the documents this worker is done with, taken out of
        its log (in the reactor's thread, where the middlewares write them)."""
        health = getattr(self, "health", None)
        if health is None:
            return {}
        busy = self._scheduler.queue.polls()
        outcomes = health.outcomes
        done = {key: outcome for key, outcome in outcomes.items() if key not in busy}
        for key in done:
            del outcomes[key]
        return done

    def _settle_busy(self) -> None:
        """A settle in a thread, the crawl going on meanwhile; none while one runs. The
        spool is left to the batches' writes, which replay it themselves."""
        if self.settle is None or self.settling:
            return
        self.settling = True
        settled = threads.deferToThread(self.settle, self._finished_polls(), False)
        settled.addErrback(lambda failure: log.error("settling failed: %s",
                                                     failure.getTraceback()))
        settled.addBoth(lambda _: setattr(self, "settling", False))

    def _idle(self) -> None:
        # the worker's layer answers True while its work is not done (stored pages that
        # wait in a spool for the store): the worker does not stop then, nor while a
        # busy settle still runs (the next idle moment settles again)
        busy = self.settling or (self.settle is not None and self.settle(
            self._finished_polls(), True))
        now = time.monotonic()
        self.idle_since = self.idle_since or now
        pending = busy or self._guard(lambda: self._scheduler.server.llen(DUE_KEY))
        if self.idle_exit is not None and not pending and now - self.idle_since >= self.idle_exit:
            return  # the frontier stayed empty: this worker may stop
        raise DontCloseSpider

    def parse_article(self, response: Any) -> Iterator[Any]:
        """Each page's lease is acknowledged once its batch is stored (AckOnStore)."""
        return self._keeping(response, super().parse_article(response))

    def parse_telegram(self, response: Any) -> Iterator[Any]:
        """A channel page: its posts' lease is acknowledged once their batch is stored."""
        return self._keeping(response, map(self._own, self.telegram.parse(response)))

    def _keeping(self, response: Any, results: Iterator[Any]) -> Iterator[Any]:
        self.idle_since = None
        self.last_page = time.monotonic()
        lease = response.meta.get(LEASE_META)
        for item in results:
            if lease is not None and isinstance(item, RawPage):
                self.pipeline.keep(item.url, lease)
                response.meta[KEPT_META] = True
            yield item

    # --- revisits, put on the frontier by the leader -------------------------------------

    def revisit_article(self, response: Response) -> Iterator[Any]:
        return self._revised(response, super().revisit_article)

    def revisit_channel(self, response: Response) -> Iterator[Any]:
        return self._revised(response, super().revisit_channel)

    def revisit_failed(self, failure: Failure) -> Iterator[Any]:  # type: ignore[override]
        return self._revised(failure, super().revisit_failed)

    def _revised(self, outcome: Response | Failure,
                 call: Callable[[Any], Iterable[Any] | None]) -> Iterator[Any]:
        """What `call(outcome)` yields; the lease is acknowledged after it (`_acking`),
        the revision stored, unless the store refused it: then the lease lapses and the
        revisit is fetched again, by any worker."""
        self.idle_since = None
        request: Request = outcome.request  # type: ignore[union-attr]
        try:
            yield from call(outcome) or ()
        except StoreError as exc:
            lease = request.meta.get(LEASE_META)
            if lease is not None:
                self._scheduler.queue.release(lease)
                request.meta[KEPT_META] = True
            log.error("revision of %s not stored (%s): revisited again once its lease lapses",
                      request.url, str(exc).splitlines()[0])

    def _own(self, request: Any) -> Any:
        """A request whose callback is the spider's: a request in Redis names its callback
        as a method of the spider, and Telegram's are a helper object's."""
        if isinstance(request, Request) and request.callback == self.telegram.parse:
            return request.replace(callback=self.parse_telegram)
        return request


class _RevisitPlanner(Revisiting, Spider):
    """The frontier spider's revisit requests, made by the leader: the callbacks go into
    the queue by their names, which the worker's FrontierSpider resolves. Named (the
    frontier's) per instance: Scrapy's spider loader lists no spider without a name."""


def enqueue_revisits(server: redis.Redis, settings: Settings,
                     targets: Iterable[RevisitTarget]) -> list[RevisitTarget]:
    """The due `targets` (the store's revisit_targets) onto the shared frontier, each once
    while it waits there: marked `<article id>:<step>` in dozor:revisits with its request,
    the marks the store no longer has due dropped (revised, the article gone). The
    targets enqueued."""
    due = {f"{t.article_id}:{t.step}": t for t in targets}
    waiting = {m.decode() for m in server.smembers(REVISITS_SET)}
    if done := waiting - due.keys():
        server.srem(REVISITS_SET, *done)
    new = {mark: t for mark, t in due.items() if mark not in waiting}
    if new:
        crawler = Crawler(_RevisitPlanner, settings)
        planner = _RevisitPlanner.from_crawler(crawler, name=FrontierSpider.name)
        push_marked(server, planner, planner.revisit_requests(new.values()), REVISITS_SET,
                    new.keys())
    return list(new.values())

"""Distributed crawling on a shared Redis frontier: `dozor worker` and the leader that
`dozor schedule --redis` runs.

Any number of workers take due sources, article requests and revisits from Redis
(`crawler.frontier`), run the stages and write to Elasticsearch; alerts stay
exactly-once through the delivery log there, whichever worker matched. One scheduler at
a time enqueues the due sources and revisits: it holds a lease on dozor:leader, renewed
while it lives.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import redis

from crawler.frontier import WORKERS_KEY, finish_polls, polling, queue_due
from crawler.health import HealthLog
from crawler.spiders.frontier import Outcomes, enqueue_revisits
from crawler.worker import VISIBILITY_TIMEOUT, crawl_settings, work
from dozor.run import record_health
from pipelines.alert import notify
from pipelines.alert.rules import HealthAlerts, load_health
from pipelines.article import utcnow
from pipelines.config import paths
from pipelines.config.backend import store_options
from pipelines.config.config import Config
from pipelines.config.sources import load_sources
from pipelines.errors import DozorError
from pipelines.health import HealthRecord, due_sources
from pipelines.process import Pipeline, build_pipeline
from pipelines.revisit import Revisions, RevisitReport
from pipelines.store import SourceHealth, Store, StoreError, open_store
from pipelines.store.elastic.writes import ElasticWrites

log = logging.getLogger("dozor.worker")

LEADER_KEY = "dozor:leader"
T = TypeVar("T")

# renew the lease only while it is still ours; release it likewise
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class FrontierError(DozorError, RuntimeError):
    """Redis (the frontier) out of reach or refusing; str() says which and why."""


def redis_client(url: str) -> redis.Redis:
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
    except ValueError as exc:
        raise FrontierError(f"--redis {url!r}: {exc}") from None


def with_backoff(what: str, call: Callable[[], T], *, attempts: int | None = None,
                 first: float = 1.0, most: float = 60.0,
                 errors: tuple[type[BaseException], ...] = (redis.RedisError, StoreError),
                 ) -> T:
    """`call()`, retried with doubling delays while `what` is out of reach: one line per
    failed attempt (`attempts`: give up after that many, raising FrontierError)."""
    delay, tried = first, 0
    while True:
        try:
            return call()
        except errors as exc:
            tried += 1
            cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if attempts is not None and tried >= attempts:
                raise FrontierError(f"{what} unreachable: {cause}") from None
            log.error("%s unreachable (%s): retrying in %.0f s", what, cause, delay)
            time.sleep(delay)
            delay = min(delay * 2, most)


@dataclass
class WorkerReport:
    crawl: dict[str, int] = field(default_factory=dict)
    new_ids: int = 0
    alerts_sent: int = 0


def run_worker(config: Config, redis_url: str, es: str | None, *,
               sources_file: Path | None = None, alerts_file: Path | None = None,
               topic_file: Path | None = None, allow_private_network: bool = False,
               idle_exit: float | None = None, visibility_timeout: float = VISIBILITY_TIMEOUT,
               log_level: str | None = None, worker_id: str | None = None) -> WorkerReport:
    """Crawl from the frontier until stopped (or idle for `idle_exit` seconds)."""
    sources = load_sources(sources_file or paths.default_sources())
    rules_file = alerts_file or paths.default_alerts()
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
    server = redis_client(redis_url)
    with_backoff(f"Redis at {redis_url}", server.ping)
    store = with_backoff("Elasticsearch", lambda: _open_store(config, es))
    report = WorkerReport()
    try:
        keep = frozenset(s.name for s in sources if s.keep == "relevant")
        pipeline, notices = build_pipeline(store, config, keep, topic_file)
        for notice in notices:
            log.warning("%s", notice)
        if pipeline.pool is not None:
            # before the reactor: a pool started by the first batch blocks the crawl
            pipeline.pool.start()
        health = HealthLog(store.health_records() if isinstance(store, SourceHealth) else ())
        # the revisits the leader put on the frontier, recorded as `dozor revisit` does
        revisions = Revisions(store, pipeline.profile, config.settings.revisit.delays,
                              tuple(config.settings.languages))
        settle = _Settle(store, pipeline, health, config, load_health(rules_file), rules_file,
                         report, revisions.report, lambda records: _polled(server, records))
        try:
            report.crawl = work(sources, pipeline, config, redis_url, worker_id,
                                revisions=revisions,
                                allow_private_network=allow_private_network,
                                log_level=log_level, health=health, idle_exit=idle_exit,
                                settle=settle, visibility_timeout=visibility_timeout)
        finally:
            pipeline.close()
        settle(health.outcomes)
        report.new_ids = len(pipeline.totals.new_ids)
        if revisions.report.checked:
            log.info("%s", revisions.report.line())
    finally:
        store.close()
    return report


class _Settle:
    """What the frontier's pages, polls and revisits brought, at the worker's idle moments
    and every while it is busy (then in a thread, the crawl going on: one call at a time):
    articles an unreachable Elasticsearch left in the spool (`replay`: idle only), the
    finished polls' health records and alerts (on new articles and on the revisits'
    events), retried with doubling delays while Elasticsearch fails. Answers True while
    the spool holds articles: the worker does not stop on an empty frontier then (a
    failed alert or health record does not hold it: the stories keep their mark for the
    next run)."""

    def __init__(self, store: Store, pipeline: Pipeline, health: HealthLog, config: Config,
                 alerting: HealthAlerts | None, rules_file: Path, report: WorkerReport,
                 revised: RevisitReport, polled: Callable[[list[HealthRecord]], None]
                 ) -> None:
        self.store, self.pipeline, self.health = store, pipeline, health
        self.config, self.alerting, self.rules_file, self.report = (config, alerting,
                                                                    rules_file, report)
        self.revised, self.polled = revised, polled
        self.done = 0  # pipeline.totals.new_ids already put through the rules
        self.changes = 0  # revisions with events (changed, removed, restored) alerted on
        self.replayed: list[str] = []  # stored from the spool, not through the rules yet
        self.outcomes: Outcomes = {}  # finished polls, not recorded yet
        self.left = 0  # spooled batches, at the last try
        self.retry_at = 0.0
        self.delay = 1.0

    def __call__(self, outcomes: Outcomes, replay: bool = True) -> bool:
        self.outcomes.update(outcomes)
        if time.monotonic() < self.retry_at:
            return self.left > 0
        try:
            left = self._replay() if replay else 0
            if isinstance(self.store, SourceHealth) and self.outcomes:
                polls = HealthLog()
                polls.previous, polls.outcomes = self.health.previous, self.outcomes
                records = record_health(self.store, polls, self.config, self.alerting)
                self.health.previous.update({r.key: r for r in records})
                self.outcomes = {}
                self.polled(records)
            # the crawl appends to the totals meanwhile (a busy settle runs in a thread):
            # up to their length now, the rest next time
            totals = self.pipeline.totals.new_ids
            upto = len(totals)
            new_ids = list(dict.fromkeys(self.replayed + totals[self.done:upto]))
            changes = self.revised.changed + self.revised.removed + self.revised.restored
            if new_ids or changes > self.changes:
                # the events of the revisions wait in the store for the rules
                alerts = notify(self.store, self.rules_file, new_ids, self.config)
                self.report.alerts_sent += len(alerts.sent) if alerts is not None else 0
            self.done, self.replayed, self.changes = upto, [], changes
        except StoreError as exc:
            why = str(exc).splitlines()[0]
        else:
            if not left:
                if replay:
                    self.delay = 1.0
                return False
            why = f"{left} spooled batch(es) still refused"
        log.error("%s; retrying in %.0f s", why, self.delay)
        self.retry_at = time.monotonic() + self.delay
        self.delay = min(self.delay * 2, 60.0)
        return self.left > 0

    def _replay(self) -> int:
        """Spooled batches left after storing what the spool holds."""
        if not isinstance(self.store, ElasticWrites):
            return 0
        self.left = self.store.spool.batches_waiting()  # unless the replay stores them
        result, self.left = self.store.replay_spool()
        self.replayed += result.new
        return self.left


def _polled(server: redis.Redis, records: list[HealthRecord]) -> None:
    """The polls just recorded no longer hold their sources back from the leader."""
    try:
        finish_polls(server, [(r.source, r.url) for r in records])
    except redis.RedisError as exc:
        log.error("Redis unreachable (%s): the polls' marks left to expire", exc)


def _open_store(config: Config, es: str | None) -> Store:
    options = store_options(config, es=es)
    if not options["es"]:
        raise FrontierError("dozor worker writes to Elasticsearch: give --es URL (or set "
                            "ELASTICSEARCH_URL); the SQLite store is one machine's")
    store = open_store(**options)
    store.count()  # reach the cluster now, not at the first batch
    return store


# --- the leader scheduler ----------------------------------------------------------------


class Leader:
    """A lease on dozor:leader: at most one holder at a time, lost if not renewed."""

    def __init__(self, server: redis.Redis, ttl: float = 30.0) -> None:
        self.server = server
        self.token = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
        self.ttl_ms = int(ttl * 1000)
        self._renew = server.register_script(_RENEW)
        self._release = server.register_script(_RELEASE)
        self.held = False

    def hold(self) -> bool:
        """True while this process leads (taking the lease when it is free)."""
        if self.held and self._renew(keys=[LEADER_KEY], args=[self.token, self.ttl_ms]):
            return True
        self.held = bool(self.server.set(LEADER_KEY, self.token, nx=True, px=self.ttl_ms))
        return self.held

    def release(self) -> None:
        if self.held:
            self._release(keys=[LEADER_KEY], args=[self.token])
            self.held = False


def enqueue_due(server: redis.Redis, names: Iterable[str], store: SourceHealth | None
                ) -> list[str]:
    """Put the due sources (by their adaptive schedule, `pipelines.health.due_sources`)
    on the frontier, each once while it waits there or its poll is not recorded."""
    names = list(names)
    # the marks first: a poll recorded after this is in the records read next
    busy = polling(server, names)
    records = store.health_records() if store is not None else []
    due = due_sources([n for n in names if n not in busy], records, utcnow())
    return [name for name in due if queue_due(server, name)]


def lead(config: Config, redis_url: str, es: str | None, every: float, *,
         sources_file: Path | None = None, cycles: int | None = None,
         ttl: float = 30.0) -> int:
    """`dozor schedule --redis`: every `every` seconds, while leading, enqueue the due
    sources and the stored articles due for a revisit (`revisit.schedule`). Returns the
    number of ticks that enqueued."""
    server = redis_client(redis_url)
    with_backoff(f"Redis at {redis_url}", server.ping)
    store = with_backoff("Elasticsearch", lambda: _open_store(config, es))
    leader = Leader(server, ttl=max(ttl, 3 * every))
    names = [s.name for s in load_sources(sources_file or paths.default_sources())]
    settings = crawl_settings(config, redis_url)
    delays = config.settings.revisit.delays
    ticks = 0
    try:
        while cycles is None or ticks < cycles:
            try:
                if leader.hold():
                    queued = enqueue_due(server, names,
                                         store if isinstance(store, SourceHealth) else None)
                    revisits = enqueue_revisits(server, settings,
                                                store.revisit_targets(utcnow(), delays))
                    ticks += 1
                    log.info("leader: %d source(s) due put on the frontier: %s", len(queued),
                             ", ".join(queued) or "none")
                    log.info("leader: %d revisit(s) due put on the frontier", len(revisits))
                else:
                    log.info("another scheduler leads: standing by")
            except redis.RedisError as exc:
                log.error("Redis at %s unreachable (%s): retrying at the next tick",
                          redis_url, exc)
            except StoreError as exc:
                log.error("%s: retrying at the next tick", str(exc).splitlines()[0])
            time.sleep(every)
    finally:
        try:
            leader.release()
        except redis.RedisError:
            pass  # the lease expires by itself
        store.close()
    return ticks


def worker_figures(server: redis.Redis) -> list[dict[str, str]]:
    """Each live worker's last report (pages/s, queue depth, errors), for `dozor stats`."""
    out = []
    for raw in sorted(server.smembers(WORKERS_KEY)):
        wid = raw.decode() if isinstance(raw, bytes) else raw
        figures = server.hgetall(f"{WORKERS_KEY}:{wid}")
        if not figures:
            server.srem(WORKERS_KEY, wid)  # its report expired: the worker is gone
            continue
        out.append({"worker": wid, **{k.decode(): v.decode() for k, v in figures.items()}})
    return out

"""One `dozor worker` crawl: the frontier spider on the shared Redis frontier, in this
process's reactor until stopped (or idle for `idle_exit` seconds)."""

from __future__ import annotations

from collections.abc import Sequence

from scrapy.settings import Settings

from crawler.batches import PageProcessor
from crawler.health import HealthLog
from crawler.runner import _run, _settings, figures
from crawler.spiders.frontier import FrontierSpider, Settle
from pipelines.archive import check_archive_dir
from pipelines.config.config import Config
from pipelines.config.sources import Source
from pipelines.revisit import Revisions

VISIBILITY_TIMEOUT = 120.0  # seconds a taken request stays leased without a heartbeat


def frontier_settings(redis_url: str, visibility_timeout: float) -> dict[str, object]:
    """Scrapy settings that put the crawl on scrapy-redis's scheduler and dupefilter."""
    return {
        "SCHEDULER": "crawler.frontier.FrontierScheduler",
        "SCHEDULER_QUEUE_CLASS": "crawler.frontier.ReliableQueue",
        "SCHEDULER_QUEUE_KEY": "dozor:%(spider)s:requests",
        "SCHEDULER_DUPEFILTER_KEY": "dozor:%(spider)s:dupefilter",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_PERSIST": True,  # the frontier outlives every worker
        "REDIS_URL": redis_url,
        "DOZOR_VISIBILITY_TIMEOUT": visibility_timeout,
    }


def crawl_settings(config: Config, redis_url: str, *, allow_private_network: bool = False,
                   log_level: str | None = None,
                   visibility_timeout: float = VISIBILITY_TIMEOUT) -> Settings:
    """The settings of a crawl on the frontier (a worker's, or the leader's revisit
    requests)."""
    settings = _settings(config, allow_private_network, log_level)
    settings.setdict(frontier_settings(redis_url, visibility_timeout), priority="cmdline")
    return settings


def work(sources: Sequence[Source], pipeline: PageProcessor, config: Config, redis_url: str,
         worker_id: str, *, revisions: Revisions, allow_private_network: bool = False,
         log_level: str | None = None, health: HealthLog | None = None,
         idle_exit: float | None = None, settle: Settle | None = None,
         visibility_timeout: float = VISIBILITY_TIMEOUT) -> dict[str, int]:
    """Crawl from the frontier, revisits applied through `revisions`; the figures when
    it stops."""
    settings = crawl_settings(config, redis_url, allow_private_network=allow_private_network,
                              log_level=log_level, visibility_timeout=visibility_timeout)
    # the politeness slots are taken as the download starts: a request the middlewares
    # drop takes none
    handlers = dict(settings.getdict("DOWNLOAD_HANDLERS"))
    handlers.update(dict.fromkeys(("http", "https"), "crawler.frontier.PoliteDownloadHandler"))
    settings.set("DOWNLOAD_HANDLERS", handlers, priority="cmdline")
    # one archive folder per worker: names never collide across hosts, and `dozor
    # reprocess` reads every WARC below the archive
    warc = config.paths.warc / worker_id
    settings.set("DOZOR_WARC_DIR", str(warc), priority="cmdline")
    if settings.getbool("DOZOR_ARCHIVE"):
        check_archive_dir(warc)
    return figures(_run(settings, FrontierSpider, sources=list(sources), pipeline=pipeline,
                        health=health, idle_exit=idle_exit, settle=settle,
                        worker_id=worker_id, revisions=revisions))

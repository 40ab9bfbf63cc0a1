"""Run a crawl in this process and return the figures that matter.

Twisted's reactor cannot be restarted, so each function here runs at most once per
process; `dozor schedule` starts every cycle in a fresh child process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from crawler.batches import FATAL_STAT, PageProcessor
from crawler.health import HealthLog
from crawler.netguard import parse_networks
from crawler.progress import PROGRESS_SETTING, Shared
from crawler.settings import apply_config, setting_or_env
from crawler.spiders.check import DocumentCheck, SourcesCheckSpider
from crawler.spiders.news import NewsSpider
from crawler.spiders.revisit import RevisitSpider
from pipelines.archive import check_archive_dir
from pipelines.config.config import Config
from pipelines.config.sources import Source
from pipelines.progress import Reporter
from pipelines.revisit import Revisions
from pipelines.store import DatabaseUnusable
from pipelines.store.history import RevisitTarget

# name in the returned figures -> Scrapy stats key
_STATS = {
    "requests": "downloader/request_count",
    "seconds": "elapsed_time_seconds",  # the crawl's wall time
    "pages": "dozor/pages",
    "archived": "dozor/archived",
    "entries": "dozor/entries",
    "seen_skipped": "dozor/seen_skipped",
    "too_old": "dozor/too_old",
    "offsite": "dozor/offsite",
    "non_html": "dozor/non_html",
    "refused": "dozor/refused",
    "robots_forbidden": "robotstxt/forbidden",
    "errors": "dozor/errors",
    "unsafe_xml": "dozor/unsafe_xml",
    "bad_documents": "dozor/bad_documents",
    "batches": "dozor/batches",
    "batches_failed": "dozor/batches_failed",
    "pages_failed": "dozor/pages_failed",
    "bad_links": "dozor/bad_links",
    "too_long": "dozor/too_long",
    "offsite_redirects": "dozor/offsite_redirects",
    "redirect_loops": "dozor/redirect_loops",
    "sitemap_bounds": "dozor/sitemap_bounds",
    "over_budget": "dozor/over_budget",
    "telegram_pages": "dozor/telegram_pages",
    "telegram_posts": "dozor/telegram_posts",
    "telegram_skipped": "dozor/telegram_skipped",
    "telegram_unavailable": "dozor/telegram_unavailable",
    "telegram_layout": "dozor/telegram_layout",
    "not_modified": "downloader/response_status_count/304",
}
_STATUS_PREFIX = "downloader/response_status_count/"

_started = False


def _settings(config: Config, allow_private_network: bool, log_level: str | None,
              progress: Reporter | None = None) -> Settings:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    apply_config(settings, config)
    if allow_private_network:
        settings.set("DOZOR_ALLOW_PRIVATE_NETWORK", True, priority="cmdline")
    if log_level:
        settings.set("LOG_LEVEL", log_level, priority="cmdline")
    if progress is not None:
        settings.set(PROGRESS_SETTING, Shared(progress), priority="cmdline")
    # a bad CIDR is a ConfigError now, not a failure deep inside the crawl
    parse_networks(setting_or_env(settings, "DOZOR_ALLOWED_NETWORKS"))
    return settings


def _run(settings: Settings, spider: type, *, then: Revisit | None = None,
         **kwargs: Any) -> dict[str, Any]:
    """One crawl; `then`, revisits crawled after it in the same reactor (one after the
    other, so the revisits keep within the crawl's per-domain limits)."""
    global _started
    if _started:
        raise RuntimeError("a crawl already ran in this process; Twisted's reactor cannot "
                           "restart: run each crawl in its own process")
    _started = True
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(spider)
    done = process.crawl(crawler, **kwargs)
    if then is not None and then.targets:
        revisits = process.create_crawler(RevisitSpider)
        done.addCallback(lambda _: process.crawl(revisits, targets=then.targets,
                                                 revisions=then.revisions))
    process.start()
    assert crawler.stats is not None
    return crawler.stats.get_stats()


@dataclass
class Revisit:
    """Stored articles to fetch again, and what applies the answers."""

    targets: list[RevisitTarget]
    revisions: Revisions


def revisit(job: Revisit, config: Config, allow_private_network: bool = False, *,
            log_level: str | None = None, progress: Reporter | None = None) -> dict[str, int]:
    """Fetch `job.targets` again (`dozor revisit`)."""
    settings = _settings(config, allow_private_network, log_level, progress)
    if settings.getbool("DOZOR_ARCHIVE"):
        check_archive_dir(config.paths.warc)
    return figures(_run(settings, RevisitSpider, targets=job.targets, revisions=job.revisions))


def figures(stats: dict[str, Any]) -> dict[str, int]:
    out = {name: int(stats.get(key, 0)) for name, key in _STATS.items()}
    for cls in ("2xx", "3xx", "4xx", "5xx"):
        out[f"responses_{cls}"] = 0
    for key, count in stats.items():
        if key.startswith(_STATUS_PREFIX):
            status = key[len(_STATUS_PREFIX):]
            out[f"responses_{status[:1]}xx"] = out.get(f"responses_{status[:1]}xx", 0) + count
    return out


def crawl(sources: Sequence[Source], pipeline: PageProcessor, config: Config,
          allow_private_network: bool = False, *, log_level: str | None = None,
          notices: list[str] | None = None,
          health: HealthLog | None = None, then: Revisit | None = None,
          progress: Reporter | None = None) -> dict[str, int]:
    """Crawl `sources` once, feeding fetched pages to `pipeline.process` in batches.

    Problems the analyst should hear of (a Telegram channel without a preview, ...) are
    appended to `notices`, one line each; what each feed, sitemap, listing and channel
    answered goes to `health`; how the crawl (and `then`) goes, to `progress`."""
    settings = _settings(config, allow_private_network, log_level, progress)
    if settings.getbool("DOZOR_ARCHIVE"):
        check_archive_dir(config.paths.warc)  # before the crawl, not on every response
    stats = _run(settings, NewsSpider, sources=list(sources), pipeline=pipeline,
                 notices=notices, health=health, then=then)
    if stats.get(FATAL_STAT):
        # the crawl stopped on it: the cause, not the advice to reprocess
        raise DatabaseUnusable(f"{stats[FATAL_STAT]}; the run stopped")
    return figures(stats)


def check_sources(sources: Sequence[Source], config: Config,
                  allow_private_network: bool = False, *,
                  log_level: str | None = None) -> list[DocumentCheck]:
    """Fetch every feed, sitemap and listing once; one DocumentCheck each, in source order."""
    results: list[DocumentCheck] = []
    _run(_settings(config, allow_private_network, log_level), SourcesCheckSpider,
         sources=list(sources), results=results)
    return results

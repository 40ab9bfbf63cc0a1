"""Progress of a crawl, sent to the reporter its starter gave (Scrapy's LogStats pattern).

`crawler.runner` puts a `pipelines.progress.Reporter` into the settings as
DOZOR_PROGRESS (in a `Shared`); without one (`scrapy crawl news`, the sources check)
the extension is not configured. Every `reporter.interval` seconds, and once when the
spider closes, the reporter gets a snapshot: pages fetched and through the stages, per source, for
the news crawl; revisits done of those due for the revisit crawl.
"""

from __future__ import annotations

from typing import Any, Self

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.statscollectors import StatsCollector
from scrapy.utils.asyncio import create_looping_call

from crawler.batches import FETCHED_PREFIX, PROCESSED_PREFIX
from crawler.spiders.revisit import RevisitSpider
from pipelines.progress import Count, Reporter, Snapshot

PROGRESS_SETTING = "DOZOR_PROGRESS"


class Shared:
    """A reporter in the settings: Scrapy deep-copies settings for each crawler, and a
    reporter (a live display, the stages it reads) is one object, not copied."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def __deepcopy__(self, memo: dict[int, Any]) -> Shared:
        return self


def crawl_snapshot(stats: dict[str, Any], final: bool = False) -> Snapshot:
    fetched = {k[len(FETCHED_PREFIX):]: int(v) for k, v in stats.items()
               if k.startswith(FETCHED_PREFIX)}
    processed = {k[len(PROCESSED_PREFIX):]: int(v) for k, v in stats.items()
                 if k.startswith(PROCESSED_PREFIX)}
    counts = [Count("fetched", sum(fetched.values())),
              Count("processed", sum(processed.values()), sum(fetched.values()))]
    if failed := int(stats.get("dozor/pages_failed", 0)):
        counts.append(Count("failed", failed))
    parts = {source: (count, processed.get(source, 0)) for source, count in sorted(fetched.items())}
    return Snapshot("crawl", "pages", tuple(counts), parts, final)


def snapshot(spider: Spider, stats: StatsCollector, final: bool = False) -> Snapshot:
    if isinstance(spider, RevisitSpider):
        return Snapshot("revisit", "revisits",
                        (Count("checked", spider.revisions.report.checked, len(spider.targets)),),
                        final=final)
    return crawl_snapshot(stats.get_stats(), final)


class ProgressStats:
    """Scrapy extension: the crawl's snapshots to DOZOR_PROGRESS's reporter."""

    def __init__(self, crawler: Crawler, reporter: Reporter) -> None:
        self.crawler = crawler
        self.reporter = reporter
        self.task: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        shared = crawler.settings.get(PROGRESS_SETTING)
        if shared is None:
            raise NotConfigured
        extension = cls(crawler, shared.reporter)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def report(self, spider: Spider, final: bool = False) -> None:
        assert self.crawler.stats is not None
        self.reporter(snapshot(spider, self.crawler.stats, final))

    def spider_opened(self, spider: Spider) -> None:
        self.task = create_looping_call(self.report, spider)
        self.task.start(self.reporter.interval)  # now too: the work's start

    def spider_closed(self, spider: Spider) -> None:
        # sent after the item pipelines closed: the last batches are counted
        if self.task is not None and self.task.running:
            self.task.stop()
        self.report(spider, final=True)

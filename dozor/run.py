"""One cycle: crawl every source, run the stages on what was fetched, send alerts.

`dozor run`, `dozor schedule` (one cycle per tick, in a child process) and
`dozor demo` all come through `run_cycle`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from crawler.batches import PageProcessor, process_batch
from crawler.runner import crawl
from pipelines.alert import AlertReport, notify
from pipelines.archive import read_pages, warc_files
from pipelines.article import RawPage
from pipelines.config import paths
from pipelines.config.config import Config
from pipelines.config.sources import load_sources
from pipelines.process import BatchResult, build_pipeline
from pipelines.store import Store

log = logging.getLogger(__name__)


@dataclass
class CycleReport:
    crawl: dict[str, int] = field(default_factory=dict)  # Scrapy's figures that matter
    batches: BatchResult = field(default_factory=BatchResult)
    messages: list[str] = field(default_factory=list)  # one line each, for the analyst
    alerts: AlertReport | None = None


def run_cycle(
    store: Store,
    config: Config,
    sources_file: Path | None = None,
    alerts_file: Path | None = None,
    allow_private_network: bool = False,
    topic_file: Path | None = None,
    log_level: str | None = None,
) -> CycleReport:
    sources = load_sources(sources_file or paths.default_sources())
    keep = frozenset(s.name for s in sources if s.keep == "relevant")
    pipeline, notices = build_pipeline(store, config, keep, topic_file)
    report = CycleReport(messages=list(notices))
    report.crawl = crawl(sources, pipeline, config, allow_private_network=allow_private_network,
                         log_level=log_level, notices=report.messages)
    report.batches = pipeline.totals
    report.alerts = notify(store, alerts_file or paths.default_alerts(),
                           pipeline.totals.new_ids, config)
    return report


@dataclass
class ReprocessReport:
    files: int = 0
    pages: int = 0
    batches: int = 0
    batches_failed: int = 0
    pages_failed: int = 0
    current: int = 0  # archived pages left alone: not among the records asked for


def reprocess_archive(pipeline: PageProcessor, config: Config, warc: Path | None = None,
                      only: frozenset[str] | None = None) -> ReprocessReport:
    """Run the archived article pages (a WARC file or directory, default: the archive)
    through the stages again, in crawl-sized batches, without the network; with `only`,
    just the pages of those WARC record ids (`pipelines.process.stale_records`)."""
    crawl_settings = config.settings.crawl
    report = ReprocessReport()
    batch: list[RawPage] = []

    def flush() -> None:
        if not batch:
            return
        if process_batch(pipeline, batch):
            report.batches += 1
        else:
            report.batches_failed += 1
            report.pages_failed += len(batch)
        batch.clear()

    for path in warc_files(warc or config.paths.warc):
        report.files += 1
        for page in read_pages(path, crawl_settings.download_maxsize):
            if only is not None and page.warc_record_id not in only:
                report.current += 1
                continue
            report.pages += 1
            batch.append(page)
            if len(batch) >= crawl_settings.batch_size:
                flush()
    flush()
    return report

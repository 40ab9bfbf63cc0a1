"""One cycle: crawl every source, run the stages on what was fetched, send alerts.

`dozor run`, `dozor schedule` (one cycle per tick, in a child process) and
`dozor demo` all come through `run_cycle`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from crawler.batches import PageProcessor, PooledProcessor, process_batch
from crawler.health import HealthLog
from crawler.runner import Revisit, crawl
from crawler.runner import revisit as run_revisits
from pipelines.alert import AlertReport, notify
from pipelines.alert.health import notify_health
from pipelines.alert.mailer import mail_from, mailer_for
from pipelines.alert.rules import HealthAlerts, load_health
from pipelines.archive import read_pages, warc_files
from pipelines.article import RawPage, utcnow
from pipelines.config import paths
from pipelines.config.config import Config
from pipelines.config.sources import load_sources
from pipelines.health import HealthRecord, advance, due_sources
from pipelines.pool import ordered
from pipelines.process import BatchResult, Pipeline, build_pipeline
from pipelines.progress import Count, Reporter, Snapshot
from pipelines.relevance import TopicProfile, load_topic
from pipelines.revisit import Revisions, RevisitReport
from pipelines.store import SourceHealth, Store

log = logging.getLogger(__name__)


@dataclass
class CycleReport:
    crawl: dict[str, int] = field(default_factory=dict)  # Scrapy's figures that matter
    batches: BatchResult = field(default_factory=BatchResult)
    messages: list[str] = field(default_factory=list)  # one line each, for the analyst
    alerts: AlertReport | None = None
    failures: list[str] = field(default_factory=list)  # one line per failing URL
    health_lines: list[str] = field(default_factory=list)  # the health e-mails sent
    crawled_sources: int = 0
    failed_sources: int = 0  # of them, every URL failed
    skipped_sources: int = 0  # not due (due_only)
    revisits: RevisitReport | None = None

    @property
    def all_failed(self) -> bool:
        return self.crawled_sources > 0 and self.failed_sources == self.crawled_sources


def run_cycle(
    store: Store,
    config: Config,
    sources_file: Path | None = None,
    alerts_file: Path | None = None,
    allow_private_network: bool = False,
    topic_file: Path | None = None,
    log_level: str | None = None,
    due_only: bool = False,
    progress: Reporter | None = None,
) -> CycleReport:
    """`due_only`: only the sources whose next poll is due (adaptive polling); how the
    crawl, its translation and the revisits go, to `progress`."""
    sources = load_sources(sources_file or paths.default_sources())
    keep = frozenset(s.name for s in sources if s.keep == "relevant")
    pipeline, notices = build_pipeline(store, config, keep, topic_file)
    report = CycleReport(messages=list(notices))
    previous = store.health_records()
    if due_only:
        due = set(due_sources([s.name for s in sources], previous, utcnow()))
        report.skipped_sources = len(sources) - len(due)
        sources = [s for s in sources if s.name in due]
        if not sources:
            # nothing to crawl, but the e-mails a refused send left pending go now
            pipeline.close()
            rules_file = alerts_file or paths.default_alerts()
            report.health_lines = notify_health(store, list(previous), load_health(rules_file),
                                                mailer_for(config), mail_from(config.env))
            report.alerts = notify(store, rules_file, [], config)
            return report
    health = HealthLog(previous)
    # the stored articles whose revisit is due, crawled after the sources
    job = revisit_job(store, config, pipeline.profile)
    shown = WithTranslation(progress, pipeline) if progress else None
    try:
        report.crawl = crawl(sources, pipeline, config,
                             allow_private_network=allow_private_network,
                             log_level=log_level, notices=report.messages, health=health,
                             then=job, progress=shown)
    finally:
        pipeline.close()  # the stage workers: the alerts below match in this process
    report.batches = pipeline.totals
    if job.targets:
        report.revisits = job.revisions.report
    rules_file = alerts_file or paths.default_alerts()
    alerting = load_health(rules_file)
    records = record_health(store, health, config, alerting)
    # an unavailable channel already has its line among the notices (the Telegram crawl's)
    report.failures = [f"{r.source}: {r.kind} {r.url} failed: {r.error}"
                       for r in records if r.error and r.state != "unavailable"]
    report.crawled_sources = len({r.source for r in records})
    report.failed_sources = report.crawled_sources - len({r.source for r in records
                                                          if not r.error})
    # every record: a transition a refused send left unannounced goes now, crawled or not
    stored = {r.key: r for r in previous} | {r.key: r for r in records}
    report.health_lines = notify_health(store, list(stored.values()), alerting,
                                        mailer_for(config), mail_from(config.env))
    report.alerts = notify(store, rules_file, pipeline.totals.new_ids, config)
    return report


@dataclass
class WithTranslation:
    """A reporter's crawl snapshots with the articles translated of those to translate:
    translation is a stage of each batch, so the crawl's figures do not have it."""

    reporter: Reporter
    pipeline: Pipeline

    @property
    def interval(self) -> float:
        return self.reporter.interval

    def __call__(self, snapshot: Snapshot) -> None:
        totals = self.pipeline.totals
        if snapshot.work == "crawl" and self.pipeline.translator is not None:
            snapshot = snapshot.adding(Count("translated", totals.translated,
                                             totals.to_translate))
        self.reporter(snapshot)


def record_health(store: SourceHealth, health: HealthLog, config: Config,
                  alerting: HealthAlerts | None) -> list[HealthRecord]:
    """This run's outcomes folded into the stored records, stored; the records touched."""
    now = utcnow()
    failing_after = alerting.failing_after if alerting else HealthAlerts.model_fields[
        "failing_after"].default
    silent_factor = alerting.silent_factor if alerting else HealthAlerts.model_fields[
        "silent_factor"].default
    records = [advance(health.previous.get(key), outcome, now, config.settings.polling,
                       silent_factor, failing_after)
               for key, outcome in health.outcomes.items()]
    store.put_health(records)
    return records


def revisit_job(store: Store, config: Config, profile: TopicProfile, source: str | None = None,
                everything: bool = False) -> Revisit:
    """The stored articles due for a revisit (`everything`: all whose schedule is not
    done)."""
    delays = config.settings.revisit.delays
    targets = store.revisit_targets(utcnow(), delays, source, everything)
    return Revisit(targets, Revisions(store, profile, delays, tuple(config.settings.languages)))


def revisit_cycle(store: Store, config: Config, alerts_file: Path | None = None,
                  source: str | None = None, everything: bool = False,
                  allow_private_network: bool = False, topic_file: Path | None = None,
                  log_level: str | None = None, progress: Reporter | None = None
                  ) -> tuple[RevisitReport, AlertReport | None]:
    """`dozor revisit`: fetch the due (or every) stored article again, record what
    changed, then alert on the events."""
    job = revisit_job(store, config, load_topic(topic_file or config.paths.topic), source,
                      everything)
    if job.targets:
        run_revisits(job, config, allow_private_network, log_level=log_level,
                     progress=progress)
    alerts = notify(store, alerts_file or paths.default_alerts(), [], config)
    return job.revisions.report, alerts


@dataclass
class ReprocessReport:
    files: int = 0
    pages: int = 0
    batches: int = 0
    batches_failed: int = 0
    pages_failed: int = 0
    current: int = 0  # archived pages left alone: not among the records asked for


def reprocess_archive(pipeline: PageProcessor, config: Config, warc: Path | None = None,
                      only: frozenset[str] | None = None,
                      progress: Reporter | None = None) -> ReprocessReport:
    """Run the archived article pages (a WARC file or directory, default: the archive)
    through the stages again, in crawl-sized batches, without the network; with `only`,
    just the pages of those WARC record ids (`pipelines.process.stale_records`). After
    each batch `progress` hears the WARC files read of all and the pages processed (of
    the records asked for, with `only`)."""
    crawl_settings = config.settings.crawl
    report = ReprocessReport()
    files = warc_files(warc or config.paths.warc)

    def tell(final: bool = False) -> None:
        if progress is not None:
            done = report.pages - report.pages_failed
            progress(Snapshot("reprocess", "pages", (
                Count("processed", done, len(only) if only is not None else None),
                Count("WARC files", report.files, len(files)),
                *([Count("failed", report.pages_failed)] if report.pages_failed else [])),
                final=final))

    def batches() -> Iterator[list[RawPage]]:
        batch: list[RawPage] = []
        for path in files:
            report.files += 1
            for page in read_pages(path, crawl_settings.download_maxsize,
                                   crawl_settings.max_age_days):
                if only is not None and page.warc_record_id not in only:
                    report.current += 1
                    continue
                report.pages += 1
                batch.append(page)
                if len(batch) >= crawl_settings.batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    if isinstance(pipeline, PooledProcessor):
        # the stage workers analyse the next batches while this process stores one;
        # reading the archive waits when they fall behind, as the crawl does
        results = ((batch, process_batch(pipeline, batch, analysed)) for batch, analysed
                   in ordered(batches(), pipeline.submit, 2 * max(1, pipeline.workers)))
    else:
        results = ((batch, process_batch(pipeline, batch)) for batch in batches())
    tell()
    for batch, done in results:
        if done:
            report.batches += 1
        else:
            report.batches_failed += 1
            report.pages_failed += len(batch)
        tell()
    tell(final=True)
    return report

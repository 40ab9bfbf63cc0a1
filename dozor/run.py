"""One cycle: crawl every source, run the stages on what was fetched, send alerts.

`dozor run`, `dozor schedule` (one cycle per tick, in a child process) and
`dozor demo` all come through `run_cycle`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from dozor import paths
from dozor.config import load_sources
from dozor.settings import get_settings
from pipelines import relevance, translate
from pipelines.process import BatchResult, Pipeline
from pipelines.store import Store

log = logging.getLogger(__name__)


@dataclass
class CycleReport:
    crawl: dict[str, int] = field(default_factory=dict)  # Scrapy's figures that matter
    batches: BatchResult = field(default_factory=BatchResult)
    messages: list[str] = field(default_factory=list)  # one line each, for the analyst
    alerts: object | None = None


def build_pipeline(store: Store, sources_keep_relevant: frozenset[str] = frozenset(),
                   topic_file: Path | None = None) -> tuple[Pipeline, list[str]]:
    """The stage pipeline with the configured topic and translator, plus notices."""
    settings = get_settings()
    profile = relevance.load_topic(topic_file or paths.default_topic())
    translator, notices = translate.load_translator(settings.translation, settings.languages)
    pipeline = Pipeline(
        store=store,
        profile=profile,
        languages=tuple(settings.languages),
        translator=translator,
        keep_relevant_only=sources_keep_relevant,
    )
    return pipeline, notices


def run_cycle(
    store: Store,
    sources_file: Path | None = None,
    alerts_file: Path | None = None,
    allow_private_network: bool = False,
    topic_file: Path | None = None,
) -> CycleReport:
    from crawler.runner import crawl
    from pipelines import alert

    sources = load_sources(sources_file or paths.default_sources())
    keep = frozenset(s.name for s in sources if s.keep == "relevant")
    pipeline, notices = build_pipeline(store, keep, topic_file)
    report = CycleReport(messages=list(notices))
    report.crawl = crawl(sources, pipeline, allow_private_network=allow_private_network)
    report.batches = pipeline.totals
    report.alerts = alert.notify(store, alerts_file or paths.default_alerts(),
                                 pipeline.totals.new_ids)
    return report

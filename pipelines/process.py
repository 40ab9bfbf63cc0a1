"""The stages in order, over one batch of fetched pages.

Called by the Scrapy adapter during a crawl, by `dozor reprocess` over archived
pages, and by tests directly. Each stage is a plain function over a list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import dedup, extract, language, models, relevance, translate
from pipelines.article import RawPage
from pipelines.config.config import Config
from pipelines.store import ArticlesReader, Ingest
from pipelines.terms.normalisation import TERMS_VERSION, analyse

log = logging.getLogger(__name__)

# stamped on every article the stages make (Article.derived_version)
DERIVED_VERSION = f"terms-{TERMS_VERSION}.dedup-{dedup.SIGNATURE_VERSION}"


@dataclass
class BatchResult:
    pages: int = 0
    articles: int = 0
    relevant: int = 0
    dropped: int = 0  # kept out by a source's `keep: relevant`
    new_ids: list[str] = field(default_factory=list)
    spooled: int = 0


@dataclass
class Pipeline:
    """Everything a batch needs besides the pages themselves."""

    store: Ingest
    profile: relevance.TopicProfile
    languages: tuple[str, ...] = ("ru", "uk", "en")
    translator: translate.Translator | None = None
    keep_relevant_only: frozenset[str] = frozenset()  # sources with `keep: relevant`
    totals: BatchResult = field(default_factory=BatchResult)

    def process(self, pages: list[RawPage]) -> BatchResult:
        result = BatchResult(pages=len(pages))
        articles = extract.extract(pages)
        articles = language.detect(articles, self.languages)
        articles = analyse(articles)
        articles = relevance.classify(articles, self.profile)
        kept = [a for a in articles if a.relevant or a.source not in self.keep_relevant_only]
        result.dropped = len(articles) - len(kept)
        if result.dropped:
            kept_ids = {a.id for a in kept}
            # not stored, but never fetched again either
            self.store.mark_seen([a.canonical_url for a in articles if a.id not in kept_ids])
        kept = dedup.dedup(kept, self.store)
        if self.translator is not None:
            kept = self.translator.translate(kept)
            kept = analyse(kept)
        for article in kept:
            article.derived_version = DERIVED_VERSION
        written = self.store.write(kept)
        result.articles = len(kept)
        result.relevant = sum(a.relevant for a in kept)
        result.new_ids = written.new
        result.spooled = written.spooled
        self._add(result)
        return result

    def _add(self, result: BatchResult) -> None:
        t = self.totals
        t.pages += result.pages
        t.articles += result.articles
        t.relevant += result.relevant
        t.dropped += result.dropped
        t.new_ids.extend(result.new_ids)
        t.spooled += result.spooled


def stale_records(store: ArticlesReader) -> frozenset[str]:
    """The WARC records of stored articles made by older code (another
    `derived_version`): what `dozor reprocess --stale` runs through the stages again."""
    return frozenset(a.warc_record_id for a in store.iter_articles()
                     if a.derived_version != DERIVED_VERSION and a.warc_record_id)


def build_pipeline(store: Ingest, config: Config,
                   sources_keep_relevant: frozenset[str] = frozenset(),
                   topic_file: Path | None = None) -> tuple[Pipeline, list[str]]:
    """The stage pipeline with the configured topic and translator, plus notices."""
    settings = config.settings
    profile = relevance.load_topic(topic_file or config.paths.topic)
    translator, notices = translate.load_translator(settings.translation, settings.languages,
                                                    models.models_dir(config))
    pipeline = Pipeline(
        store=store,
        profile=profile,
        languages=tuple(settings.languages),
        translator=translator,
        keep_relevant_only=sources_keep_relevant,
    )
    return pipeline, notices

"""The stages in order, over one batch of fetched pages.

Called by the Scrapy adapter during a crawl, by `dozor reprocess` over archived
pages, and by tests directly. Each stage is a plain function over a list.

A batch goes in two halves. `analyse_pages` (extract, language, terms, relevance and
the signatures of dedup) reads nothing but the pages: with a `StagePool` it runs in
worker processes, one per core by default (`crawl.stage_workers`). `Pipeline.store_batch`
(the store lookups of dedup, translation, the write) runs in the one process that owns
the store, on each batch's results in the order the batches were submitted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import dedup, extract, language, linked, models, relevance, translate
from pipelines.article import Article, RawPage
from pipelines.config.config import Config
from pipelines.pool import StagePool, done_future, worker_count
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
    translated: int = 0
    to_translate: int = 0  # articles the translation settings select (done, failed, pending)
    # CPU seconds per stage (the analysing stages' in whichever process ran them)
    seconds: dict[str, float] = field(default_factory=dict)


Analysed = tuple[list[Article], dict[str, float]]  # the articles and their stage seconds


@contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    start = time.process_time()
    try:
        yield
    finally:
        seconds[stage] = seconds.get(stage, 0.0) + time.process_time() - start


def analyse_pages(pages: list[RawPage], languages: tuple[str, ...],
                  profile: relevance.TopicProfile) -> Analysed:
    """The stages that read nothing but the pages, with the CPU seconds of each."""
    seconds: dict[str, float] = {}
    with _timed(seconds, "extract"):
        articles = extract.extract(pages)
    with _timed(seconds, "language"):
        language.detect(articles, languages)
    with _timed(seconds, "terms"):
        analyse(articles)
    with _timed(seconds, "relevance"):
        relevance.classify(articles, profile)
    with _timed(seconds, "signatures"):
        for article in articles:
            dedup.fingerprint(article)
    return articles, seconds


# what a worker process keeps between batches: set once by `_worker_setup`
_worker: dict[str, object] = {}


def _worker_setup(languages: tuple[str, ...], topic_file: str) -> None:
    _worker["languages"] = languages
    _worker["profile"] = relevance.load_topic(topic_file)  # compiled once per process


def _worker_analyse(pages: list[RawPage]) -> Analysed:
    profile = _worker["profile"]
    assert isinstance(profile, relevance.TopicProfile)
    return analyse_pages(pages, _worker["languages"], profile)  # type: ignore[arg-type]


@dataclass
class Pipeline:
    """Everything a batch needs besides the pages themselves."""

    store: Ingest
    profile: relevance.TopicProfile
    languages: tuple[str, ...] = ("ru", "uk", "en")
    translator: translate.Translator | None = None
    keep_relevant_only: frozenset[str] = frozenset()  # sources with `keep: relevant`
    totals: BatchResult = field(default_factory=BatchResult)
    pool: StagePool | None = None  # None: the analysing stages run in this process

    @property
    def workers(self) -> int:
        return self.pool.workers if self.pool is not None else 0

    def process(self, pages: list[RawPage]) -> BatchResult:
        return self.store_batch(pages, self.submit(pages).result())

    def submit(self, pages: list[RawPage]) -> Future[Analysed]:
        """The analysing stages on `pages`: in the pool, or here and now without one."""
        if self.pool is None:
            return done_future(analyse_pages, pages, self.languages, self.profile)
        return self.pool.submit(_worker_analyse, pages)

    def store_batch(self, pages: list[RawPage], analysed: Analysed) -> BatchResult:
        """The stages that need the store, on what `submit` gave for `pages`."""
        articles, seconds = analysed
        result = BatchResult(pages=len(pages), seconds=dict(seconds))
        # posts judged on the articles they link to (`follow_links`); a post whose links
        # are fetched is kept whatever `keep: relevant` says
        following, decided = linked.judge_posts(articles, pages, self.store)
        kept = [a for a in articles
                if a.relevant or a.id in following or a.source not in self.keep_relevant_only]
        result.dropped = len(articles) - len(kept)
        if result.dropped:
            kept_ids = {a.id for a in kept}
            # not stored, but never fetched again either
            self.store.mark_seen([a.canonical_url for a in articles if a.id not in kept_ids])
        with _timed(result.seconds, "dedup"):
            kept = dedup.dedup(kept, self.store)
        if self.translator is not None:
            with _timed(result.seconds, "translate"):
                kept = self.translator.translate(kept)
                result.translated = sum(a.translation_status == "done" for a in kept)
                result.to_translate = sum(a.translation_status != "skipped" for a in kept)
                # only a translated article has new (English) terms
                analyse([a for a in kept if a.title_en or a.text_en])
        for article in kept:
            article.derived_version = DERIVED_VERSION
        with _timed(result.seconds, "store"):
            written = self.store.write(kept + decided)
        result.articles = len(kept)
        result.relevant = sum(a.relevant for a in kept) + len(decided)
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
        t.translated += result.translated
        t.to_translate += result.to_translate
        for stage, spent in result.seconds.items():
            t.seconds[stage] = t.seconds.get(stage, 0.0) + spent

    def close(self) -> None:
        """Stop the pool's workers (nothing to do without one)."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None


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
    languages = tuple(settings.languages)
    workers = worker_count(settings.crawl.stage_workers)
    pool = StagePool(workers, _worker_setup,
                     (languages, str(topic_file or config.paths.topic)),
                     preload=[__name__]) if workers else None
    pipeline = Pipeline(
        store=store,
        profile=profile,
        languages=languages,
        translator=translator,
        keep_relevant_only=sources_keep_relevant,
        pool=pool,
    )
    return pipeline, notices

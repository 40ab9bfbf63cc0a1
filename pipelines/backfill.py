"""Translating stored articles left pending (stored before a model was installed, or
failed): the loop behind `dozor translate`.

Each chunk is translated here (CTranslate2 spreads it over the usable CPUs), its terms
recomputed (they hold the English words too) in the stage pool's worker processes while
the next chunk is translated, and saved in the order read. An interrupted backfill
loses only the chunks in flight (at most two per worker): the next one takes up only
what is still pending.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future

from pipelines.article import Article
from pipelines.pool import StagePool, done_future, ordered
from pipelines.store import TranslationQueue
from pipelines.terms.normalisation import analyse
from pipelines.translate import Translator

CHUNK = 32  # articles per store page; their sentences are translated together
_COUNT_PAGE = 500


def requeue_failed(store: TranslationQueue) -> int:
    """Mark failed translations pending again, so the backfill takes them up."""
    failed: list[Article] = []
    count = 0
    for article in store.iter_articles():
        if article.translation_status == "failed":
            article.translation_status = "pending"
            failed.append(article)
        if len(failed) >= CHUNK:
            store.mark_translation(failed)
            count += len(failed)
            failed = []
    store.mark_translation(failed)
    return count + len(failed)


def count_pending(store: TranslationQueue, langs: set[str]) -> int:
    """Pending articles in one of `langs`."""
    total, after = 0, ""
    while page := store.pending_translation(limit=_COUNT_PAGE, after_id=after):
        total += sum(a.lang in langs for a in page)
        after = page[-1].id
    return total


def translate_pending(store: TranslationQueue, translator: Translator, limit: int,
                      pool: StagePool | None = None) -> Iterator[list[Article]]:
    """Translate up to `limit` pending articles of the translator's languages, chunk by
    chunk; yields each chunk once it is saved (translation_status says how it went).
    With `pool`, the terms are analysed in its workers (none: here)."""

    def submit(todo: list[Article]) -> Future[list[str]]:
        if pool is None:
            return done_future(terms_of, todo)
        return pool.submit(terms_of, todo)

    workers = pool.workers if pool is not None else 0
    for todo, terms in ordered(_translated(store, translator, limit), submit,
                               2 * max(1, workers)):
        for article, value in zip(todo, terms.result(), strict=True):
            article.terms = value
        store.mark_translation(todo)
        yield todo


def terms_of(articles: list[Article]) -> list[str]:
    """Each article's terms (only they travel back from a worker, not the texts)."""
    return [a.terms for a in analyse(articles)]


def _translated(store: TranslationQueue, translator: Translator,
                limit: int) -> Iterator[list[Article]]:
    langs = set(translator.pairs)
    after, seen = "", 0
    while seen < limit and (page := store.pending_translation(CHUNK, after)):
        after = page[-1].id
        todo = [a for a in page if a.lang in langs][: limit - seen]
        if not todo:
            continue
        translator.translate(todo)
        seen += len(todo)
        yield todo

"""Translating stored articles left pending (stored before a model was installed, or
failed): the loop behind `dozor translate`.

Each chunk is translated, its terms recomputed (they hold the English words too) and
saved before the next is read, so an interrupted backfill loses at most one chunk and
the next one takes up only what is still pending.
"""

from __future__ import annotations

from collections.abc import Iterator

from pipelines.article import Article
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


def translate_pending(store: TranslationQueue, translator: Translator,
                      limit: int) -> Iterator[list[Article]]:
    """Translate up to `limit` pending articles of the translator's languages, chunk by
    chunk; yields each chunk once it is saved (translation_status says how it went)."""
    langs = set(translator.pairs)
    after, seen = "", 0
    while seen < limit and (page := store.pending_translation(CHUNK, after)):
        after = page[-1].id
        todo = [a for a in page if a.lang in langs][: limit - seen]
        if not todo:
            continue
        translator.translate(todo)
        analyse(todo)
        store.mark_translation(todo)
        seen += len(todo)
        yield todo

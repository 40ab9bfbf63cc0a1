"""The TranslationQueue role on every backend: pending articles by id, resumable, and
translations written back without touching the other fields."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipelines.store import Store, StoreError
from pipelines.terms.normalisation import analyse
from tests.support.articles import article, corpus, search


def test_pending_translation_pages_by_id_and_resumes(store: Store) -> None:
    docs = [
        article(f"https://example.org/p{i}", f"Статья {i}", "Осуждённые подписали контракт.",
                lang="ru", source="s",
                translation_status="pending" if i % 4 else "skipped")
        for i in range(20)
    ]
    store.write(docs)
    expected = sorted(d.id for d in docs if d.translation_status == "pending")

    seen: list[str] = []
    after = ""
    while page := store.pending_translation(limit=4, after_id=after):
        assert len(page) <= 4
        seen += [a.id for a in page]
        after = page[-1].id
    assert seen == expected
    assert [a.id for a in store.pending_translation(limit=2)] == expected[:2]

    # translating the first page takes it out of the backlog, and only translation
    # fields and terms change
    page = store.pending_translation(limit=4)
    for doc in page:
        doc.title = "changed here but not by mark_translation"
        doc.title_en, doc.text_en = "Article", "Convicts signed a contract."
        doc.translation_status = "done"
        doc.translation_engine, doc.translation_model = "ctranslate2", "ru-en"
    store.mark_translation(analyse(page))
    assert [a.id for a in store.pending_translation(limit=100)] == expected[4:]
    back = store.get(page[0].id)
    assert back.title.startswith("Статья")
    assert (back.text_en, back.translation_status) == ("Convicts signed a contract.", "done")
    assert back.title_en == "Article"
    # the English text is searchable through the normalised terms
    hits = search(store, "convicts")
    assert {h.article.id for h in hits} == {a.id for a in page}
    assert "[Convicts]" in hits[0].snippet

    bad = store.get(expected[5])
    bad.translation_status = "half-done"
    with pytest.raises(StoreError, match="half-done"):
        store.mark_translation([bad])
    store.mark_translation([])


def test_bad_translation_status_is_refused(store: Store) -> None:
    uk = corpus()["uk"]
    store.write([uk])
    with pytest.raises(StoreError, match="translation_status 'maybe'"):
        store.mark_translation([replace(uk, translation_status="maybe")])
    assert store.get(uk.id).translation_status == uk.translation_status

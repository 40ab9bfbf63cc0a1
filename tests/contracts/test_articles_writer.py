"""The ArticlesWriter role on every backend: upsert by id, first stored_at kept, one
record per id, a bad batch refused whole."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from pipelines import dedup
from pipelines.store import Store, StoreError
from tests.support.articles import article, corpus, search


def test_write_round_trips_every_field(store: Store) -> None:
    doc = article(
        "https://example.org/a?id=1", "Заголовок", "Текст статьи.", lang="ru", source="src",
        published=datetime(2026, 5, 1, 7, 15, tzinfo=UTC),
        final_url="https://example.org/a?id=1&from=rss", discovered_via="sitemap", status=200,
        authors=["Иван Петров", "Anna Smith"], description="Описание", site_name="Пример",
        html_lang="ru-RU", lang_hint="ru", lang_confidence=0.97, relevant=True, score=2.5,
        matched_terms=["колония", '"Шторм Z"'], title_en="Title", text_en="Text.",
        translation_status="done", translation_engine="ctranslate2", translation_model="ru-en 1.9",
        content_hash="ab" * 20, cluster_id="c" * 40, lsh_bands=["00:aa", "01:bb"],
        warc_file="dozor-0001.warc.gz", warc_record_id="<urn:uuid:1>", minhash=[0, 7, 2**32 - 1],
    )
    result = store.write([doc])
    assert result.new == [doc.id] and result.updated == []
    back = store.get(doc.id)
    assert back is not None
    assert back.stored_at is not None and back.stored_at == doc.stored_at
    assert back.to_dict() == doc.to_dict()
    assert store.get("0" * 40) is None
    # what the dedup stage sets (signature, band keys, cluster) comes back as it went in
    original = dedup.dedup([corpus()["ru_wire"]], store)[0]
    original.minhash = original.minhash or [1, 2, 4294967295]
    store.write([original])
    assert store.get(original.id).to_dict() == original.to_dict()


def test_upsert_reports_new_and_updated_and_keeps_first_stored_at(store: Store) -> None:
    docs = corpus()
    first = store.write([docs["ru_wire"], docs["uk"]])
    assert sorted(first.new) == sorted([docs["ru_wire"].id, docs["uk"].id])
    assert first.updated == []
    stored_at = store.get(docs["uk"].id).stored_at

    changed = article(docs["uk"].url, "Новий заголовок", docs["uk"].text, lang="uk",
                      source="pravda-uk")
    second = store.write([changed, docs["en_wire"]])
    assert second.new == [docs["en_wire"].id]
    assert second.updated == [docs["uk"].id]
    back = store.get(docs["uk"].id)
    assert back.title == "Новий заголовок"
    assert back.stored_at == stored_at
    assert store.count() == 3
    # the search index follows the update
    assert [h.article.id for h in search(store, "новий")] == [docs["uk"].id]

    # the whole corpus, then one story again: only that one is updated
    batch = list(docs.values())
    store.write(batch)
    stored_at = {a.id: store.get(a.id).stored_at for a in batch}
    again = store.write([replace(docs["uk"], title="Оновлений заголовок")])
    assert again.new == [] and again.updated == [docs["uk"].id]
    updated = store.get(docs["uk"].id)
    assert updated.title == "Оновлений заголовок"
    assert updated.stored_at == stored_at[docs["uk"].id]
    assert store.count() == len(batch)


def test_one_record_per_id_within_a_batch(store: Store) -> None:
    a = article("https://example.org/x", "Первый", "текст", lang="ru", source="s")
    b = article("https://example.org/x", "Второй", "текст", lang="ru", source="s")
    result = store.write([a, b])
    assert result.new == [a.id]
    assert store.count() == 1
    assert store.get(a.id).title == "Второй"  # as if written one after the other


def test_bad_article_is_refused_and_nothing_of_the_batch_is_written(store: Store) -> None:
    good = article("https://example.org/good", "Хорошая", "текст", lang="ru", source="s")
    bad = article("https://example.org/bad", "Плохая", "текст", lang="ru", source="s",
                  translation_status="maybe")
    with pytest.raises(StoreError, match="translation_status 'maybe'"):
        store.write([good, bad])
    assert store.count() == 0
    with pytest.raises(StoreError, match="translation_status 'maybe'"):
        store.write([replace(corpus()["uk"], translation_status="maybe")])
    assert store.count() == 0

"""Dedup over a real SQLite store: exact copies, syndicated copies, look-alikes."""

from __future__ import annotations

import pytest

from pipelines import dedup as dd
from pipelines.article import Article
from pipelines.store.sqlite import SQLiteStore
from tests.sample_articles import (
    EN_COPY,
    EN_OTHER,
    EN_WIRE,
    RU_COPY,
    RU_OTHER,
    RU_WIRE,
    article,
    corpus,
)


def run(store: SQLiteStore, articles: list[Article]) -> list[Article]:
    """One pipeline batch: dedup then write, as pipelines.process does."""
    out = dd.dedup(articles, store)
    store.write(out)
    return out


def test_content_hash_folds_whitespace_and_case() -> None:
    assert dd.content_hash("Осуждённые  подписали\nКОНТРАКТ ") == dd.content_hash(
        "осуждённые подписали контракт")
    assert dd.content_hash("осуждённые подписали контракт") != dd.content_hash(
        "осужденные подписали контракт")
    assert dd.content_hash("   \n") == ""


@pytest.mark.parametrize(
    ("original", "copy", "other"), [(RU_WIRE, RU_COPY, RU_OTHER), (EN_WIRE, EN_COPY, EN_OTHER)]
)
def test_similarity_separates_copies_from_other_reports(original: str, copy: str,
                                                        other: str) -> None:
    sig = dd.signature(original)
    assert dd.similarity(sig.hashvalues.tolist(), dd.signature(copy).hashvalues.tolist()) > 0.75
    # the same subject, told by someone else, is another story
    assert dd.similarity(sig.hashvalues.tolist(), dd.signature(other).hashvalues.tolist()) < 0.1


def test_band_keys_follow_datasketch_parameters() -> None:
    sig = dd.signature(RU_WIRE)
    keys = dd.band_keys(sig)
    assert len(keys) == len(dd._BANDS) == len(set(keys))
    assert keys == dd.band_keys(dd.signature(RU_WIRE))  # deterministic across calls
    # an identical band shared, none with an unrelated text
    assert set(keys) & set(dd.band_keys(dd.signature(RU_COPY)))
    assert not set(keys) & set(dd.band_keys(dd.signature(EN_WIRE)))


def test_syndicated_copies_join_the_stored_original(store: SQLiteStore) -> None:
    docs = corpus()
    run(store, [docs["ru_wire"], docs["en_wire"]])
    later = run(store, [docs["ru_copy"], docs["en_copy"], docs["ru_other"], docs["en_other"]])
    by_source = {a.source: a for a in later}
    assert by_source["ural-news"].cluster_id == docs["ru_wire"].id
    assert by_source["aggregator"].cluster_id == docs["en_wire"].id
    # other reports on the same subject are their own stories
    assert by_source["meduza"].cluster_id == docs["ru_other"].id
    assert by_source["guardian"].cluster_id == docs["en_other"].id
    # and what dedup decided is what the store holds
    assert store.get(docs["ru_copy"].id).cluster_id == docs["ru_wire"].id
    assert len(store.get(docs["ru_copy"].id).minhash) == dd.NUM_PERM


def test_copies_within_one_batch_cluster_under_the_first(store: SQLiteStore) -> None:
    docs = corpus()
    out = run(store, list(docs.values()))
    clusters: dict[str, set[str]] = {}
    for a in out:
        clusters.setdefault(a.cluster_id, set()).add(a.source)
    assert clusters[docs["ru_wire"].id] == {"ria", "ural-news"}
    assert clusters[docs["en_wire"].id] == {"reuters", "aggregator"}
    # every other article stands alone, named after itself
    assert sum(1 for members in clusters.values() if len(members) == 1) == len(docs) - 4
    assert all(a.cluster_id == a.id for a in out if a.source not in ("ural-news", "aggregator"))


def test_exact_copy_under_another_url_takes_the_original_cluster(store: SQLiteStore) -> None:
    first = article("https://a.example/1", "Заголовок", RU_WIRE, lang="ru", source="a")
    run(store, [first])
    # same text, reflowed and re-cased by another CMS
    reflowed = RU_WIRE.replace("\n", "\n\n").upper()
    copy = article("https://b.example/2", "Другой заголовок", reflowed, lang="ru", source="b")
    out = run(store, [copy])
    assert out[0].content_hash == first.content_hash
    assert out[0].cluster_id == first.id


def test_short_texts_cluster_only_when_identical(store: SQLiteStore) -> None:
    brief = "Заключённые колонии № 6 подписали контракты с Минобороны, сообщают родственники."
    edited = "Заключённые колонии № 6 подписали контракты с Минобороны, сообщили родственники."
    a = article("https://a.example/brief", "Коротко", brief, lang="ru", source="a")
    b = article("https://b.example/brief", "Коротко", brief, lang="ru", source="b")
    c = article("https://c.example/brief", "Коротко", edited, lang="ru", source="c")
    out = run(store, [a, b, c])
    assert [x.cluster_id for x in out] == [a.id, a.id, c.id]
    assert all(x.minhash == [] and x.lsh_bands == [] for x in out)


def test_empty_texts_are_not_one_story(store: SQLiteStore) -> None:
    out = run(store, [article(f"https://v.example/{i}", f"Видео {i}", "", lang="ru",
                              source="v") for i in range(3)])
    assert [x.cluster_id for x in out] == [x.id for x in out]


def test_one_record_per_canonical_url(store: SQLiteStore) -> None:
    docs = corpus()
    again = article(docs["uk"].url, "Той самий", docs["uk"].text, lang="uk", source="x")
    out = dd.dedup([docs["uk"], again, docs["en_wire"]], store)
    assert [a.id for a in out] == [docs["uk"].id, docs["en_wire"].id]
    assert out[0] is docs["uk"]


def test_reprocessing_keeps_clusters(store: SQLiteStore) -> None:
    docs = corpus()
    run(store, [docs["ru_wire"]])
    run(store, [docs["ru_copy"]])
    # the original's own stored record is not a copy of it, but its copy points back to it
    again = run(store, [article(docs["ru_wire"].url, docs["ru_wire"].title, RU_WIRE,
                                lang="ru", source="ria")])
    assert again[0].cluster_id == docs["ru_wire"].id
    copy_again = run(store, [article(docs["ru_copy"].url, docs["ru_copy"].title, RU_COPY,
                                     lang="ru", source="ural-news")])
    assert copy_again[0].cluster_id == docs["ru_wire"].id
    assert store.count() == 2

"""The ArticlesReader role on every backend: reading back by id and in the order stored,
counts, near-duplicate clusters, and search with the query language's own semantics."""

from __future__ import annotations

import inspect

import pytest

from pipelines import dedup
from pipelines.article import Article
from pipelines.query import QueryError
from pipelines.store import Store
from pipelines.store.roles import ROLES
from tests.contracts.conftest import Backend
from tests.support.articles import FETCHED, article, check_search_pages, corpus, search


@pytest.fixture
def stored(store: Store) -> dict[str, Article]:
    docs = corpus()
    store.write(dedup.dedup(list(docs.values()), store))
    return docs


def test_implements_every_role_exactly(store: Store) -> None:
    assert isinstance(store, Store)
    for role in (*ROLES, Store):
        assert isinstance(store, role), role.__name__
        for name, member in inspect.getmembers(role, inspect.isfunction):
            if name.startswith("_"):
                continue
            ours = inspect.signature(getattr(type(store), name))
            theirs = inspect.signature(member)
            assert list(ours.parameters) == list(theirs.parameters), name
            for p in theirs.parameters.values():
                assert ours.parameters[p.name].default == p.default, (name, p.name)


def test_iter_articles_in_stored_order_and_by_ids(backend: Backend) -> None:
    store = backend.store
    docs = [article(f"https://example.org/{i}", f"Статья {i}", "текст", lang="ru", source="s")
            for i in range(1203)]  # more than one read page
    store.write(docs[:700])
    store.write(docs[700:])
    # in the order stored: SQLite's row order; on Elasticsearch one write is one
    # stored_at, then by id
    if backend.elastic:
        expected = sorted(d.id for d in docs[:700]) + sorted(d.id for d in docs[700:])
    else:
        expected = [d.id for d in docs]
    assert [a.id for a in store.iter_articles()] == expected
    wanted = [docs[5].id, "missing", docs[2].id, docs[1100].id]
    assert [a.id for a in store.iter_articles(wanted)] == [docs[5].id, docs[2].id, docs[1100].id]
    assert store.count() == 1203


def test_stats_count_by_language_source_and_translation(
        store: Store, stored: dict[str, Article]) -> None:
    docs = list(stored.values())
    stats = store.stats()
    assert stats.total == len(docs) == store.count()
    assert stats.relevant == sum(a.relevant for a in docs)
    assert stats.by_lang == {"ru": 5, "uk": 1, "en": 4}
    assert stats.by_source["reuters"] == 1 and sum(stats.by_source.values()) == len(docs)
    assert stats.by_translation == {"done": 1, "pending": 1, "skipped": len(docs) - 2}


def test_cluster_members_dated_first_oldest_first(
        store: Store, stored: dict[str, Article]) -> None:
    wire = store.get(stored["ru_wire"].id)
    members = store.cluster_members(wire.cluster_id)
    assert {m.id for m in members} == {wire.id, stored["ru_copy"].id}
    undated = article("https://late.example/copy", "Копия", stored["ru_copy"].text, lang="ru",
                      source="late")
    undated.published_at = None
    undated.cluster_id = wire.cluster_id
    older = article("https://old.example/copy", "Копия", stored["ru_copy"].text, lang="ru",
                    source="old", published=FETCHED.replace(year=2025))
    older.cluster_id = wire.cluster_id
    store.write([undated, older])
    ordered = [m.source for m in store.cluster_members(wire.cluster_id)]
    assert ordered[0] == "old" and ordered[-1] == "late"
    assert store.cluster_members(wire.cluster_id)[-1].published_at is None
    assert [m.source for m in store.cluster_members(wire.cluster_id, limit=1)] == ["old"]
    assert store.cluster_members("no-such-cluster") == []
    # every cluster in that order: dated first by date, then by fetch time, then id
    for cluster in {a.cluster_id for a in store.iter_articles()}:
        members = store.cluster_members(cluster)
        assert members == sorted(members, key=lambda a: (
            a.published_at is None, a.published_at or FETCHED, a.fetched_at, a.id))


def test_search_finds_inflected_forms_and_filters_language(
        store: Store, stored: dict[str, Article]) -> None:
    hits = search(store, "колонии")
    ids = [h.article.id for h in hits]
    # inflected forms match: "колонии" finds колонии/колониях/колония
    assert set(ids) == {stored["ru_wire"].id, stored["ru_copy"].id, stored["ru_other"].id}
    assert {h.article.source for h in hits} == {"ria", "ural-news", "meduza"}
    assert all(h.matched_terms == ["колонии"] for h in hits)
    assert all("[колони" in h.snippet.lower() for h in hits)
    # the two with the word in their title rank above the one with it only in the text
    assert ids[-1] == stored["ru_other"].id
    assert hits[0].rank >= hits[1].rank > hits[2].rank

    assert [h.article.lang for h in search(store, "колонії")] == ["uk"]
    assert search(store, "колонии", lang="en") == []
    assert {h.article.lang for h in search(store, "колонии", lang="ru")} == {"ru"}
    assert len(search(store, "колонии", limit=2)) == 2
    # a field-only query (no words): newest first
    recent = search(store, "relevant:true AND lang:en")
    assert recent and {h.article.lang for h in recent} == {"en"}
    assert all(h.article.relevant for h in recent)
    assert [h.article.published_at for h in recent] == sorted(
        (h.article.published_at for h in recent), reverse=True)


def test_search_page_two_starts_where_page_one_ended(
        store: Store, stored: dict[str, Article]) -> None:
    check_search_pages(store)
    # the offset counts hits, not the candidates the query's matcher turns away
    hits = search(store, "Вагнер AND NOT опера")
    assert [h.article.id for h in hits] == [stored["ru_other"].id]
    assert search(store, "Вагнер AND NOT опера", offset=1) == []
    with pytest.raises(ValueError, match="offset"):
        search(store, "колонии", offset=-1)


def test_search_semantics_are_the_query_language(
        store: Store, stored: dict[str, Article]) -> None:
    def ids(q: str, **kw: str) -> set[str]:
        return {h.article.id for h in search(store, q, **kw)}

    # "вербовка" of IT staff is there, but recruitment of prisoners is not it
    assert ids("вербовка AND (колония OR заключённый)") == set()
    assert ids("вербовка") == {stored["ru_it"].id}
    assert ids("Вагнер AND NOT опера") == {stored["ru_other"].id}
    assert ids('"Шторм-Z" AND lang:uk') == {stored["uk"].id}
    # English words find the English originals and the translated Russian story
    assert stored["ru_wire"].id in ids("convicts")
    assert ids("relevant:false", lang="ru") == {stored["ru_composer"].id, stored["ru_it"].id}
    with pytest.raises(QueryError) as err:
        search(store, "колония AND (Шторм")
    assert "column" in str(err.value)

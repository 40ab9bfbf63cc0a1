"""Date fields, title:/text:, sorting and search summaries (total and facets) on every
backend: the store's answer is the one the query's own matcher gives over the corpus."""

from __future__ import annotations

from collections import Counter

import pytest

from pipelines import dedup
from pipelines.article import Article
from pipelines.query import parse_query
from pipelines.store import Store
from pipelines.store.base import FACETS, facet_values, story_key
from tests.support.articles import corpus, search


@pytest.fixture
def docs(store: Store) -> dict[str, Article]:
    docs = corpus()
    docs["ru_composer"].published_at = None  # an undated page
    docs["ru_it"].possible = True
    docs["ru_wire"].events = ["edited", "title_changed"]
    docs["uk"].events = ["edited"]
    docs["ru_composer"].events = ["removed"]
    store.write(dedup.dedup(list(docs.values()), store))
    return docs


def _names(docs: dict[str, Article], hits: list) -> set[str]:
    by_id = {a.id: name for name, a in docs.items()}
    return {by_id[h.article.id] for h in hits}


def _expected(docs: dict[str, Article], text: str) -> set[str]:
    query = parse_query(text)
    return {name for name, a in docs.items() if query.matches(a)}


@pytest.mark.parametrize("text, wanted", [
    ("published:[2026-05-10 TO 2026-05-10]", {"ru_other"}),
    ("published:2026-05-10", {"ru_other"}),
    ("published:<2026-05-11", {"ru_other"}),
    ("published:{2026-05-10 TO *]", None),   # the others that are dated
    ('published:>="2026-05-12T06:30:00Z"', None),
    ('published:>"2026-05-12T06:30:00Z"', set()),
    ("published:>now-7d", set()),            # the corpus is from May 2026
    ("published:<now", None),
    ("fetched:2026-05-12 AND lang:en", {"en_wire", "en_copy", "en_other",
                                        "en_prison_reform"}),
    ("title:Вагнер", {"ru_composer"}),
    ("text:Вагнер", {"ru_other", "ru_composer"}),
    ("Вагнер NOT title:Вагнер", {"ru_other"}),
    ('title:"Шторм-Z"', {"ru_wire", "uk"}),
    ("title:Storm", {"ru_wire"}),            # the English title counts as the title
])
def test_dates_and_parts_as_the_matcher_decides(store: Store, docs: dict[str, Article],
                                                 text: str, wanted: set[str] | None) -> None:
    expected = _expected(docs, text)
    if wanted is not None:
        assert expected == wanted
    dated = {n for n, a in docs.items() if a.published_at is not None}
    if text.startswith("published:{2026-05-10"):
        assert expected == dated - {"ru_other"}
    if text in ('published:>="2026-05-12T06:30:00Z"', "published:<now"):
        assert expected == dated - ({"ru_other"} if ">=" in text else set())
    assert _names(docs, search(store, text, limit=50)) == expected


def test_sort_by_date_both_ways_undated_last(store: Store, docs: dict[str, Article]) -> None:
    everything = parse_query("fetched:<now")
    newest = [h.article.id for h in store.search(everything, limit=50, sort="newest")]
    oldest = [h.article.id for h in store.search(everything, limit=50, sort="oldest")]
    assert len(newest) == len(docs) == len(oldest)
    undated = docs["ru_composer"].id
    assert newest[-1] == undated and oldest[-1] == undated
    assert newest[-2] == docs["ru_other"].id and oldest[0] == docs["ru_other"].id
    # paging keeps the order
    page2 = [h.article.id for h in store.search(everything, limit=3, offset=3, sort="newest")]
    assert page2 == newest[3:6]


# a summary reads of each row only what the query matches on: fields, terms, or texts
@pytest.mark.parametrize("text", ["fetched:<now", "колония OR prison*", "lang:ru",
                                  "text:Вагнер OR title:Storm", "Вагнер NOT title:Вагнер"])
def test_summary_counts_what_search_finds(store: Store, docs: dict[str, Article],
                                          text: str) -> None:
    query = parse_query(text)
    summary = store.summarise(query)
    matching = [a for a in docs.values() if query.matches(a)]
    assert summary.total == len(matching) == len(search(store, text, limit=50))
    for name in FACETS:
        values = Counter(v for a in matching for v in facet_values(a, name))
        assert summary.facets[name] == dict(values), name
    assert sum(summary.facets["relevance"].values()) == summary.total
    assert summary.stories == len({story_key(a) for a in _stored(store, matching)})


def test_event_facet_counts_each_kind_an_article_had(store: Store,
                                                     docs: dict[str, Article]) -> None:
    summary = store.summarise(parse_query("fetched:<now"))
    assert summary.facets["event"] == {"edited": 2, "title_changed": 1, "removed": 1}
    assert store.summarise(parse_query("lang:uk")).facets["event"] == {"edited": 1}


def _stored(store: Store, articles: list[Article]) -> list[Article]:
    return list(store.iter_articles([a.id for a in articles]))


def test_collapsed_search_lists_stories_led_by_their_first_copy(
        store: Store, docs: dict[str, Article]) -> None:
    everything = parse_query("fetched:<now")
    stored = {a.id: a for a in _stored(store, list(docs.values()))}
    clusters = Counter(story_key(a) for a in stored.values())
    stories = store.search(everything, limit=50, collapse=True)
    assert len(stories) == len(clusters) == store.summarise(everything).stories
    assert len(clusters) < len(docs)  # the corpus has syndicated copies
    for hit in stories:
        key = story_key(hit.article)
        assert hit.article.id == key  # the founder leads
        assert sorted(a.id for a in hit.copies) == sorted(
            i for i, a in stored.items() if story_key(a) == key and i != key)
    wire = next(h for h in stories if h.article.id == docs["ru_wire"].id)
    assert [a.id for a in wire.copies] == [docs["ru_copy"].id]
    # the copy's own words find the copy alone: it is shown, with no copies
    alone = search(store, "Подписывайтесь", collapse=True)
    assert [(h.article.id, h.copies) for h in alone] == [(docs["ru_copy"].id, [])]
    # a page of stories starts where the last one ended
    page = store.search(everything, limit=3, offset=3, collapse=True)
    assert [h.article.id for h in page] == [h.article.id for h in stories[3:6]]
    by_date = store.search(everything, limit=50, sort="newest", collapse=True)
    assert sorted(h.article.id for h in by_date) == sorted(h.article.id for h in stories)

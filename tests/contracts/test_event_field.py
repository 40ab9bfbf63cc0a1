"""`event:` on every backend: the kinds of events a revisit recorded on an article
(`Article.events`) stored, read back and searched the same way; a removed article stays
stored and searchable, marked."""

from __future__ import annotations

import pytest

from pipelines import dedup
from pipelines.query import QueryError, parse_query
from pipelines.store import Store
from tests.support.articles import article, search


def test_event_field_is_stored_and_searched(store: Store) -> None:
    docs = [article(f"https://t.example/{n}", f"Колония {n}", f"Заключённых колонии {n} "
                    "отправили на фронт по контракту.", lang="ru", source="t")
            for n in range(3)]
    docs[0].events, docs[0].removed = ["removed"], True
    docs[0].change = {"kinds": ["removed"], "reason": "HTTP 404"}
    docs[1].events = ["edited", "title_changed"]
    store.write(dedup.dedup(docs, store))

    back = {a.id: a for a in store.iter_articles([a.id for a in docs])}
    assert back[docs[0].id].removed and back[docs[0].id].events == ["removed"]
    assert back[docs[0].id].change == {"kinds": ["removed"], "reason": "HTTP 404"}
    assert back[docs[1].id].events == ["edited", "title_changed"]
    assert [h.article.id for h in search(store, "event:removed")] == [docs[0].id]
    assert [h.article.id for h in search(store, "event:title_changed")] == [docs[1].id]
    assert {h.article.id for h in search(store, "колония AND NOT event:removed")} == {
        docs[1].id, docs[2].id}
    assert {h.article.id for h in search(store, "event:*changed")} == {docs[1].id}


def test_event_field_refuses_an_unknown_kind() -> None:
    with pytest.raises(QueryError, match="unknown event 'deleted'"):
        parse_query("event:deleted")
    assert parse_query("event:removed OR x").on_events
    assert not parse_query("removed").on_events

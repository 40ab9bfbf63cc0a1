"""The AlertInbox role on every backend: every article a write stores for the first time
awaits the alert rules until marked matched; updates keep the mark as it is."""

from __future__ import annotations

from dataclasses import replace

from tests.contracts.conftest import Backend
from tests.support.articles import corpus


def test_new_articles_await_the_alert_rules_until_marked_matched(backend: Backend) -> None:
    store = backend.store
    docs = corpus()
    first = store.write([docs["ru_wire"], docs["uk"]])
    # in the order stored: SQLite's row order; on Elasticsearch one write is one
    # stored_at, then by id
    assert store.unmatched_ids() == (sorted(first.new) if backend.elastic else first.new)
    store.mark_matched([docs["ru_wire"].id])
    assert store.unmatched_ids() == [docs["uk"].id]
    # an update (a re-crawl, a spool replay) or a translation keeps the mark as it is,
    # set or cleared
    second = store.write([replace(docs["ru_wire"], title="Новый заголовок"),
                          replace(docs["uk"], title="Новий"), docs["en_wire"]])
    assert second.new == [docs["en_wire"].id]
    store.mark_translation([replace(store.get(docs["uk"].id), title_en="Recruited",
                                    translation_status="done")])
    assert store.unmatched_ids() == [docs["uk"].id, docs["en_wire"].id]
    store.mark_matched([docs["uk"].id, docs["en_wire"].id, "f" * 40])  # unknown id: ignored
    assert store.unmatched_ids() == []
    assert store.get(docs["uk"].id).title_en == "Recruited"
    store.mark_matched([])

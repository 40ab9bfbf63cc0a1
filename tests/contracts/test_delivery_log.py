"""The DeliveryLog role on every backend: (rule, article) recorded at most once, the
pending -> sending -> sent life of a delivery, and a sent one never sent again."""

from __future__ import annotations

from tests.contracts.conftest import Backend
from tests.support.articles import article


def test_delivery_log_records_each_story_once_per_rule(backend: Backend) -> None:
    store = backend.store
    docs = [article(f"https://example.org/d{i}", f"Т {i}", "текст", lang="ru", source="s")
            for i in range(4)]
    store.write(docs)
    a, b, c, d = (x.id for x in docs)

    assert store.add_deliveries("uk-desk", [a, b, a]) == [a, b]
    assert store.add_deliveries("uk-desk", [b, c]) == [c]
    assert store.add_deliveries("ru-desk", [a]) == [a]  # per rule
    pending = store.pending_deliveries("uk-desk")
    assert [(p.article_id, p.status, p.attempts) for p in pending] == [
        (a, "pending", 0), (b, "pending", 0), (c, "pending", 0)]
    assert pending[0].created_at is not None

    store.mark_sending("uk-desk", [a, b], "<digest-1@dozor>")
    store.mark_delivery_failed("uk-desk", [c], "421 try later")
    by_id = {p.article_id: p for p in store.pending_deliveries("uk-desk")}
    assert (by_id[a].status, by_id[a].message_id) == ("sending", "<digest-1@dozor>")
    assert (by_id[c].status, by_id[c].attempts, by_id[c].last_error) == (
        "pending", 1, "421 try later")

    store.mark_delivered("uk-desk", [a])
    # a failed sending one goes back to pending, keeping its digest's Message-ID
    store.mark_delivery_failed("uk-desk", [b, c], "451 try later")
    store.mark_delivery_failed("uk-desk", [c], "451 again")
    by_id = {p.article_id: p for p in store.pending_deliveries("uk-desk")}
    assert set(by_id) == {b, c}
    assert (by_id[b].status, by_id[b].attempts, by_id[b].last_error) == (
        "pending", 1, "451 try later")
    assert by_id[b].message_id == "<digest-1@dozor>"
    assert by_id[c].attempts == 3

    store.mark_delivered("uk-desk", [b])
    # a sent story never goes back to pending, whatever is reported later
    store.mark_delivery_failed("uk-desk", [a], "late error")
    store.mark_sending("uk-desk", [a], "<digest-2@dozor>")
    assert [p.article_id for p in store.pending_deliveries("uk-desk")] == [c]
    assert store.add_deliveries("uk-desk", [a, b, c, d]) == [d]
    assert {(p.rule, p.article_id) for p in store.pending_deliveries()} == {
        ("uk-desk", c), ("uk-desk", d), ("ru-desk", a)}

    # the log survives a restart
    store.close()
    with backend.reopen() as again:
        assert again.add_deliveries("uk-desk", [a, b, c, d]) == []
        assert {p.article_id for p in again.pending_deliveries("uk-desk")} == {c, d}

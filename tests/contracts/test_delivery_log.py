"""The DeliveryLog role on every backend: (rule, article) recorded at most once, the
pending -> sending -> sent life of a delivery, and a sent one never sent again."""

from __future__ import annotations

import time

from tests.contracts.conftest import Backend
from tests.support.articles import article


def test_delivery_log_records_each_story_once_per_rule(backend: Backend) -> None:
    store = backend.store
    docs = [article(f"https://example.org/d{i}", f"Т {i}", "текст", lang="ru", source="s")
            for i in range(4)]
    store.write(docs)
    a, b, c, d = (x.id for x in docs)

    assert store.add_deliveries("uk-desk", [a, b, a]) == [a, b]
    # "oldest first" ties within a millisecond (an Elasticsearch date's resolution) are
    # ordered by article id, so the later batch must be a millisecond later to sort last
    time.sleep(0.002)
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


def test_delivery_log_records_how_far_a_hand_over_got(backend: Backend) -> None:
    store = backend.store
    docs = [article(f"https://example.org/h{i}", f"Т {i}", "текст", lang="ru", source="s")
            for i in range(3)]
    store.write(docs)
    a, b, c = (x.id for x in docs)
    store.add_deliveries("desk", [a, b, c])
    assert {p.stage for p in store.pending_deliveries("desk")} == {""}

    store.mark_sending("desk", [a, b], "<d-1@dozor>")
    store.mark_stage("desk", [a, b], "data")
    store.mark_stage("desk", [c], "data")  # not sending: unchanged
    by_id = {p.article_id: p for p in store.pending_deliveries("desk")}
    assert (by_id[a].status, by_id[a].stage) == ("sending", "data")
    assert (by_id[c].status, by_id[c].stage) == ("pending", "")
    store.mark_stage("desk", [a, b], "end-of-data")
    # the reply never came: pending again, a possible repeat of its digest
    store.mark_delivery_failed("desk", [a, b], "no reply", outcome_unknown=True)
    store.mark_delivery_failed("desk", [c], "421")
    by_id = {p.article_id: p for p in store.pending_deliveries("desk")}
    assert (by_id[a].status, by_id[a].possible_repeat, by_id[a].message_id) == (
        "pending", True, "<d-1@dozor>")
    assert by_id[c].possible_repeat is False
    # a later refusal does not make the earlier attempt's outcome known
    store.mark_sending("desk", [a], "<d-1@dozor>")
    store.mark_delivery_failed("desk", [a], "451")
    assert {p.article_id: p for p in store.pending_deliveries("desk")}[a].possible_repeat
    store.mark_sending("desk", [a], "<d-1@dozor>")
    store.mark_delivered("desk", [a])
    store.close()
    with backend.reopen() as again:
        assert {p.article_id for p in again.pending_deliveries("desk")} == {b, c}
        again.mark_stage("desk", [a], "data")  # sent stays sent
        assert {p.article_id for p in again.pending_deliveries("desk")} == {b, c}

"""DeliveryLog.last_sent on every backend: when a rule last had a digest delivered,
which a rule's schedule counts its next due time from."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.contracts.conftest import Backend
from tests.support.articles import article


def test_last_sent_is_the_latest_delivery_of_the_rule(backend: Backend) -> None:
    store = backend.store
    docs = [article(f"https://example.org/l{i}", f"Т {i}", "текст", lang="ru", source="s")
            for i in range(3)]
    store.write(docs)
    a, b, c = (x.id for x in docs)
    store.add_deliveries("desk", [a, b])
    store.add_deliveries("other", [c])
    assert store.last_sent("desk") is None
    store.mark_sending("desk", [a], "<d1@dozor>")
    assert store.last_sent("desk") is None  # only a delivered digest counts
    before = datetime.now(UTC)
    store.mark_delivered("desk", [a])
    first = store.last_sent("desk")
    assert first is not None and first >= before.replace(microsecond=0)
    store.mark_sending("desk", [b], "<d2@dozor>")
    store.mark_delivered("desk", [b])
    latest = store.last_sent("desk")
    assert latest is not None and latest >= first
    assert store.last_sent("other") is None  # per rule

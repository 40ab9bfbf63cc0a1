"""The SourceHealth role, and the frontier's memory of 404/410 URLs, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipelines.health import HealthRecord, latency_report
from pipelines.store import Store
from tests.contracts.conftest import Backend
from tests.support.articles import article

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_records_round_trip_and_are_replaced_whole(backend: Backend) -> None:
    store = backend.store
    assert store.health_records() == []
    feed = HealthRecord("herald", "https://herald.example/rss", "feed", state="blocked",
                        status=403, error="HTTP 403", last_attempt=NOW, failures=2,
                        items_per_day=12.5, bytes=4096, requests=9, not_modified=3,
                        etag='"v7"', next_due=NOW + timedelta(minutes=20), notified="blocked")
    channel = HealthRecord("channels", "https://t.me/s/closed", "telegram",
                           state="unavailable", error="channel has no public preview")
    store.put_health([feed, channel])
    feed.state, feed.failures, feed.error = "ok", 0, ""
    store.put_health([feed])
    got = {r.source: r for r in backend.reopen().health_records()}
    assert got["herald"] == feed
    assert got["channels"] == channel


def test_a_gone_url_counts_as_seen_until_its_retry(store: Store) -> None:
    url = "https://herald.example/gone.html"
    assert store.seen([url]) == set()
    store.mark_gone({url: 404})
    assert store.seen([url, "https://herald.example/new.html"]) == {url}


def test_delivery_timings_give_each_span(store: Store) -> None:
    doc = article("https://herald.example/a", "Т", "текст", lang="ru", source="herald")
    doc.published_at = datetime.now(UTC) - timedelta(hours=1)
    doc.fetched_at = datetime.now(UTC) - timedelta(minutes=2)
    store.write([doc])
    store.add_deliveries("desk", [doc.id])
    store.mark_sending("desk", [doc.id], "<m@x>")
    store.mark_delivered("desk", [doc.id])
    timings = store.delivery_timings(datetime.now(UTC) - timedelta(days=1))
    assert [(t.source, t.rule) for t in timings] == [("herald", "desk")]
    report = latency_report(timings)
    spans = report["herald"]
    assert set(spans) == {"publication_to_seen", "seen_to_stored", "stored_to_delivered",
                          "publication_to_delivered"}
    assert 3500 < spans["publication_to_delivered"]["p95"] < 3700
    assert report["*"]["publication_to_delivered"]["n"] == 1

"""The polling policy and state rules of pipelines.health, on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipelines.config.settings import PollingSettings
from pipelines.health import FetchOutcome, advance, due_sources

T0 = datetime(2026, 12, 1, tzinfo=UTC)
POLICY = PollingSettings()


def poll(record, at, **outcome):  # type: ignore[no-untyped-def]
    return advance(record, FetchOutcome("s", "https://s.example/rss", "feed", **outcome),
                   at, POLICY, silent_factor=4.0, failing_after=3)


def test_busy_sources_are_polled_often_and_quiet_ones_rarely() -> None:
    busy = quiet = None
    for hour in range(48):
        at = T0 + timedelta(hours=hour)
        busy = poll(busy, at, status=200, new_items=12)  # 12 an hour
        quiet = poll(quiet, at, status=200, new_items=1 if hour % 24 == 0 else 0)
    assert busy.interval == POLICY.min_interval
    assert 2 * 3600 < quiet.interval <= POLICY.max_interval


def test_errors_back_off_exponentially_capped_and_retry_after_wins() -> None:
    record = poll(None, T0, status=200, new_items=3)
    waits = []
    for n in range(1, 12):
        at = T0 + timedelta(hours=n)
        record = poll(record, at, status=503, error="HTTP 503")
        waits.append((record.next_due - at).total_seconds())
    assert waits == sorted(waits) and waits[-1] == POLICY.max_error_backoff
    assert record.state == "failing" and record.failures == 11
    at = T0 + timedelta(days=1)
    limited = poll(None, at, status=429, error="HTTP 429", state="blocked", retry_after=7200)
    assert limited.state == "blocked" and (limited.next_due - at).total_seconds() >= 7200
    recovered = poll(record, at, status=200)
    assert recovered.state == "ok" and recovered.failures == 0


def test_a_source_that_stops_publishing_turns_silent() -> None:
    record = None
    for hour in range(24):
        record = poll(record, T0 + timedelta(hours=hour), status=200, new_items=1)
    assert record.state == "ok"
    for hour in range(24, 24 + 12):  # the estimate decays too: later than 4 gaps
        record = poll(record, T0 + timedelta(hours=hour), status=200)
    assert record.state == "silent"


def test_only_due_sources_are_crawled() -> None:
    first = poll(None, T0, status=200, new_items=1)
    assert due_sources(["s", "new"], [first], T0 + timedelta(seconds=1)) == ["new"]
    assert due_sources(["s", "new"], [first], first.next_due) == ["s", "new"]

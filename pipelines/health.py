"""Source health and adaptive polling: what one fetch of a feed, sitemap, listing or
Telegram channel says about its source, and when that URL is due again.

A `FetchOutcome` is what the crawl saw (status, error, redirect, new items, bytes); a
`HealthRecord` is what the store keeps per (source, URL) across runs. `advance` turns
the previous record and this run's outcome into the next record: its state, its moving
estimate of items per day, and its next due time. Everything here takes the clock as an
argument, so the freshness benchmark can run a simulated day in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from pipelines.config.settings import PollingSettings

# worst first: the order `dozor sources status` lists them in
STATES = ("blocked", "moved", "unavailable", "failing", "silent", "ok")
BAD_STATES = frozenset(STATES) - {"ok"}
# the publishing rate is a moving estimate over time: an observation `elapsed` long
# weighs 1 - exp(-elapsed / RATE_HORIZON), so frequent polls do not make it jumpy
RATE_HORIZON = 12 * 3600.0
# a URL polled at interval I answers a new item at most I after it appears; polling a
# few times per expected gap between items keeps that delay a fraction of the gap
POLLS_PER_GAP = 6
BLOCK_STATUSES = frozenset({401, 403, 429, 451})


@dataclass(frozen=True)
class DeliveryTiming:
    """When one stored article was published, first fetched, stored and (per rule,
    once its digest went out) delivered."""

    source: str
    published: datetime | None
    seen: datetime
    stored: datetime
    rule: str | None = None
    delivered: datetime | None = None


@dataclass
class FetchOutcome:
    """One feed/sitemap/listing/channel request of a run, as the crawl ended it."""

    source: str
    url: str
    kind: str
    status: int | None = None
    error: str = ""  # why it failed ("HTTP 403", "ConnectionRefusedError", ...)
    state: str = ""  # a state the answer itself proves: blocked, moved, unavailable
    final_url: str = ""  # where a permanent redirect led
    new_items: int = 0  # entries not stored before (article requests, channel posts)
    bytes: int = 0
    not_modified: bool = False  # answered 304
    # validators of an answer whose body was processed: the next request sends them
    etag: str = ""
    last_modified: str = ""
    retry_after: float | None = None  # seconds, from a 429/503

    @property
    def ok(self) -> bool:
        return not self.error and self.state not in ("blocked", "unavailable")


@dataclass
class HealthRecord:
    source: str
    url: str
    kind: str
    state: str = "ok"
    status: int | None = None
    error: str = ""
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_new: datetime | None = None
    failures: int = 0  # consecutive
    items_per_day: float | None = None
    bytes: int = 0  # fetched over every run
    requests: int = 0
    not_modified: int = 0  # of them, answered 304
    etag: str = ""
    last_modified: str = ""
    final_url: str = ""
    interval: float = 0.0  # seconds until the next poll, as last computed
    next_due: datetime | None = None
    notified: str = "ok"  # the state the last queued health notice announces
    transition: int = 0  # how many notices were queued: the next one's number

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.url)

    @property
    def not_modified_share(self) -> float:
        return self.not_modified / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("last_attempt", "last_success", "last_new", "next_due"):
            out[name] = out[name].isoformat() if out[name] else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealthRecord:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for name in ("last_attempt", "last_success", "last_new", "next_due"):
            if isinstance(values.get(name), str):
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)


def _clamp(seconds: float, policy: PollingSettings) -> float:
    return max(policy.min_interval, min(policy.max_interval, seconds))


def advance(previous: HealthRecord | None, outcome: FetchOutcome, now: datetime,
            policy: PollingSettings, silent_factor: float, failing_after: int) -> HealthRecord:
    """The record after `outcome`, fetched at `now`."""
    record = replace(previous) if previous else HealthRecord(outcome.source, outcome.url,
                                                             outcome.kind)
    elapsed = (now - record.last_attempt).total_seconds() if record.last_attempt else None
    record.kind = outcome.kind
    record.last_attempt = now
    record.requests += 1
    record.bytes += outcome.bytes
    record.status = outcome.status
    record.error = outcome.error
    if not outcome.ok:
        record.failures += 1
        record.state = outcome.state or ("failing" if record.failures >= failing_after
                                         else record.state if record.state != "ok" else "ok")
        # backed off exponentially from the usual interval, capped; Retry-After wins
        base = record.interval or policy.min_interval
        wait = min(policy.max_error_backoff, base * 2 ** min(record.failures, 16))
        if outcome.retry_after:
            wait = max(wait, outcome.retry_after)
        record.next_due = now + timedelta(seconds=wait)
        return record
    record.failures = 0
    record.last_success = now
    record.not_modified += outcome.not_modified
    if outcome.etag or outcome.last_modified:
        record.etag, record.last_modified = outcome.etag, outcome.last_modified
    if outcome.new_items:
        record.last_new = now
    if elapsed and elapsed > 0:
        rate = outcome.new_items * 86_400 / elapsed
        weight = 1 - math.exp(-elapsed / RATE_HORIZON)
        record.items_per_day = rate if record.items_per_day is None else (
            (1 - weight) * record.items_per_day + weight * rate)
    record.interval = next_interval(record, policy)
    record.next_due = now + timedelta(seconds=record.interval)
    if outcome.retry_after:
        record.next_due = max(record.next_due, now + timedelta(seconds=outcome.retry_after))
    record.final_url = outcome.final_url
    record.state = outcome.state or ("silent" if is_silent(record, now, silent_factor)
                                     else "ok")
    return record


def next_interval(record: HealthRecord, policy: PollingSettings) -> float:
    """A few polls per expected gap between items, within the policy's bounds: the
    estimate of items per day rises when the source publishes (shorter intervals) and
    decays while nothing changes (longer ones)."""
    if not record.items_per_day:
        # never measured: soon; measured silent: as rarely as allowed
        return float(policy.min_interval if record.items_per_day is None
                     else policy.max_interval)
    return _clamp(86_400 / record.items_per_day / POLLS_PER_GAP, policy)


def is_silent(record: HealthRecord, now: datetime, factor: float) -> bool:
    """No new item for `factor` times its usual gap between items (known only once it
    has published something)."""
    if not record.items_per_day or record.last_new is None:
        return False
    gap = 86_400 / record.items_per_day
    return (now - record.last_new).total_seconds() > factor * max(gap, 3600)


def due_sources(names: Sequence[str], records: Iterable[HealthRecord],
                now: datetime) -> list[str]:
    """The sources with a URL due (or never polled): every URL of a source is polled
    together, so a source is due when its earliest URL is."""
    earliest: dict[str, datetime] = {}
    for r in records:
        if r.next_due is not None:
            earliest[r.source] = min(earliest.get(r.source, r.next_due), r.next_due)
    return [n for n in names if n not in earliest or earliest[n] <= now]


def worst_first(records: Iterable[HealthRecord]) -> list[HealthRecord]:
    rank = {s: i for i, s in enumerate(STATES)}
    return sorted(records, key=lambda r: (rank.get(r.state, 0), -r.failures, r.source, r.url))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), nearest-rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


LATENCY_SPANS = ("publication_to_seen", "seen_to_stored", "stored_to_delivered",
                 "publication_to_delivered")


def latency_report(timings: Iterable[DeliveryTiming]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per source and overall ("*"), per span: p50, p95 (seconds) and how many articles
    (or deliveries) it was measured on."""
    spans: dict[str, dict[str, list[float]]] = {}
    for t in timings:
        values = {"seen_to_stored": (t.stored - t.seen).total_seconds()}
        if t.published is not None and t.published <= t.seen:
            values["publication_to_seen"] = (t.seen - t.published).total_seconds()
        if t.delivered is not None:
            values["stored_to_delivered"] = (t.delivered - t.stored).total_seconds()
            if t.published is not None and t.published <= t.delivered:
                values["publication_to_delivered"] = (t.delivered - t.published).total_seconds()
        for group in (t.source, "*"):
            for span, value in values.items():
                spans.setdefault(group, {}).setdefault(span, []).append(max(0.0, value))
    return {group: {span: {"p50": percentile(v, 50), "p95": percentile(v, 95), "n": len(v)}
                    for span, v in by_span.items()}
            for group, by_span in sorted(spans.items())}

"""Adaptive polling against a fixed 30-minute cycle, side by side, on a simulated day.

A few dozen sources publish (Poisson) at different rates; their feeds are served on
127.0.0.1 from a clock the benchmark sets (no sleeping through real time): a feed
lists the 20 newest items published by then, with an ETag, and answers a matching
If-None-Match with 304 as a web server does. Two pollers read them over real HTTP:

- fixed: every source every 30 minutes, fetched in full (Dozor's cycle before adaptive
  polling and conditional requests);
- adaptive: each source when `pipelines.health.advance` says it is due (the project's
  own policy, with the default polling bounds), with conditional requests.

An item counts as delivered when the poll that first lists it is made: the stages and
the mail server add the same few seconds to both. Day one warms the adaptive estimates
up; requests, bytes and latencies are measured on day two.

    python -m bench.freshness [--seed N]
"""

from __future__ import annotations

import argparse
import random
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message

from dozor.demo.loopback import LoopbackServer, Response
from pipelines.config.settings import PollingSettings
from pipelines.health import FetchOutcome, HealthRecord, advance, percentile

DAY = 86_400.0
EPOCH = datetime(2026, 12, 1, tzinfo=UTC)
FIXED_CYCLE = 1800.0
LISTED = 20
# items per day -> how many sources publish at that rate
MIX = {96.0: 2, 24.0: 4, 6.0: 10, 1.0: 24}


@dataclass
class Feed:
    name: str
    per_day: float
    published: list[float] = field(default_factory=list)  # seconds since the epoch


class FeedServer(LoopbackServer):
    def __init__(self, feeds: dict[str, Feed]) -> None:
        super().__init__()
        self.feeds = feeds
        self.now = 0.0  # the injected clock

    def respond(self, path: str) -> Response:
        raise AssertionError("respond_to answers every request")

    def respond_to(self, path: str, request_headers: Message) -> Response:
        feed = self.feeds[path.strip("/")]
        out = [t for t in feed.published if t <= self.now][-LISTED:]
        etag = f'"{len(out)}-{out[-1] if out else 0}"'
        if request_headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, b""
        items = "".join(
            f"<item><title>{feed.name} item {t:.0f}</title>"
            f"<link>https://{feed.name}.example/{t:.0f}.html</link>"
            f"<guid>{feed.name}-{t:.0f}</guid><description>{'lorem ipsum ' * 20}"
            "</description></item>" for t in reversed(out))
        body = ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
                f"<title>{feed.name}</title>{items}</channel></rss>").encode()
        return 200, {"Content-Type": "application/rss+xml", "ETag": etag}, body


@dataclass
class Poller:
    server: FeedServer
    conditional: bool
    requests: int = 0
    bytes: int = 0
    etags: dict[str, str] = field(default_factory=dict)
    seen: dict[str, set[float]] = field(default_factory=dict)
    delays: dict[str, list[float]] = field(default_factory=dict)  # measured on day two

    def poll(self, feed: Feed, at: float) -> tuple[int, int, bool]:
        """Fetch `feed` at simulated time `at`: (new items, bytes, not modified)."""
        self.server.now = at
        request = urllib.request.Request(self.server.url("/" + feed.name))
        if self.conditional and feed.name in self.etags:
            request.add_header("If-None-Match", self.etags[feed.name])
        measured = at >= DAY
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                body = answer.read()
                etag = answer.headers.get("ETag", "")
        except urllib.error.HTTPError as exc:
            if exc.code != 304:
                raise
            self.requests += measured
            return 0, 0, True
        self.requests += measured
        self.bytes += len(body) * measured
        self.etags[feed.name] = etag
        listed = {t for t in feed.published if t <= at}
        seen = self.seen.setdefault(feed.name, set())
        new = listed - seen
        seen |= listed
        if measured:
            self.delays.setdefault(feed.name, []).extend(at - t for t in new if t >= DAY)
        return len(new), len(body), False


def make_feeds(seed: int) -> dict[str, Feed]:
    rng = random.Random(seed)
    feeds = {}
    for per_day, count in MIX.items():
        for i in range(count):
            feed = Feed(f"s{per_day:g}-{i}", per_day)
            t = rng.expovariate(per_day / DAY)
            while t < 2 * DAY:
                feed.published.append(t)
                t += rng.expovariate(per_day / DAY)
            feeds[feed.name] = feed
    return feeds


def run_fixed(server: FeedServer, feeds: dict[str, Feed]) -> Poller:
    poller = Poller(server, conditional=False)
    at = 0.0
    while at < 2 * DAY:
        for feed in feeds.values():
            poller.poll(feed, at)
        at += FIXED_CYCLE
    return poller


def run_adaptive(server: FeedServer, feeds: dict[str, Feed]) -> Poller:
    poller = Poller(server, conditional=True)
    policy = PollingSettings()
    records: dict[str, HealthRecord | None] = {name: None for name in feeds}
    due = {name: 0.0 for name in feeds}
    while True:
        name = min(due, key=lambda n: due[n])
        at = due[name]
        if at >= 2 * DAY:
            return poller
        new, size, unchanged = poller.poll(feeds[name], at)
        outcome = FetchOutcome(name, server.url("/" + name), "feed", status=304 if unchanged
                               else 200, new_items=new, bytes=size, not_modified=unchanged)
        record = advance(records[name], outcome, EPOCH + timedelta(seconds=at), policy,
                         silent_factor=4.0, failing_after=3)
        records[name] = record
        assert record.next_due is not None
        due[name] = (record.next_due - EPOCH).total_seconds()


def summary(poller: Poller, feeds: dict[str, Feed], busy: bool | None) -> tuple[float, float]:
    delays = [d for name, values in poller.delays.items() for d in values
              if busy is None or (feeds[name].per_day >= 24) == busy]
    return (percentile(delays, 50) or 0.0) / 60, (percentile(delays, 95) or 0.0) / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    feeds = make_feeds(args.seed)
    with FeedServer(feeds) as server:
        fixed = run_fixed(server, feeds)
        adaptive = run_adaptive(server, feeds)
    mix = ", ".join(f"{n} x {r:g}/day" for r, n in MIX.items())
    print(f"{len(feeds)} sources ({mix}), day two of two, HTTP on 127.0.0.1")
    print(f"{'':34}{'fixed 30 min':>16}{'adaptive':>16}{'ratio':>10}")
    rows = [("requests", fixed.requests, adaptive.requests),
            ("bytes fetched", fixed.bytes, adaptive.bytes)]
    for label, a, b in rows:
        print(f"{label:34}{a:>16,}{b:>16,}{b / a:>10.2f}")
    for label, busy in (("hourly or more", True), ("less than hourly", False),
                        ("all sources", None)):
        f50, f95 = summary(fixed, feeds, busy)
        a50, a95 = summary(adaptive, feeds, busy)
        print(f"{'p50 ' + label + ', min':34}"
              + f"{f50:>16.1f}{a50:>16.1f}{a50 / f50 if f50 else 0:>10.2f}")
        print(f"{'p95 ' + label + ', min':34}{f95:>16.1f}{a95:>16.1f}"
              f"{a95 / f95 if f95 else 0:>10.2f}")


if __name__ == "__main__":
    main()

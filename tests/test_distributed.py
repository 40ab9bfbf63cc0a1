"""`dozor worker` x N, each with its stage pool (stage_workers: 2), on a real redis-server
(AOF on), the loopback Elasticsearch and aiosmtpd, against generated sites on 127.0.0.1
whose every request is counted and timed: every article stored once, none fetched twice,
each story mailed once whichever worker matched it, one request at a time per host, the
download delay between them (AutoThrottle on) and Telegram's delay over all workers; a
worker SIGKILLed mid-crawl, Redis SIGKILLed and restarted from its append-only file,
Elasticsearch gone mid-run and back, and still every article stored once; the revisits
the leader puts on the frontier each recorded once (an edit among them) and fetched once,
but the one SIGKILLed workers had in flight, fetched again by another once its lease
lapsed; a worker kept busy mails its stories and records its source's poll before it is
ever idle, and a leader ticking every second does not queue a source whose poll is in
flight (its feed fetched once).

One redis-server, Elasticsearch and SMTP server serve the module (Redis flushed per test,
each test's articles have numbers of their own); every wait polls for its condition."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis
import yaml
from typer.testing import CliRunner

from dozor.cli import app
from dozor.worker import enqueue_due
from pipelines.archive import warc_files
from pipelines.article import Article, utcnow
from pipelines.health import HealthRecord
from pipelines.store import Store, open_store
from tests.conftest import REPO
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.support.cli import run_dozor
from tests.support.frontier import (
    MISSING,
    REDIS_SERVER,
    GeneratedSite,
    RedisServer,
    article_html,
)
from tests.support.smtpserver import SmtpServer

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason=MISSING)

VISIBILITY = "4"  # seconds: a killed worker's requests and politeness slots come back soon


@dataclass
class Infra:
    work: Path
    redis: RedisServer
    es: FakeElasticsearch
    smtp: SmtpServer
    env: dict[str, str]


@pytest.fixture(scope="module")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    work = tmp_path_factory.mktemp("frontier")
    red = RedisServer(work / "redis").start()
    es = FakeElasticsearch().start()
    smtp = SmtpServer().start()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DOZOR_", "ELASTIC", "KIBANA"))}
    env.update(DOZOR_ALLOWED_NETWORKS="127.0.0.1/32", **smtp.env())
    try:
        run_dozor(["setup", "--es", es.url], env)
        yield Infra(work, red, es, smtp, env)
    finally:
        red.kill()
        es.stop()
        smtp.stop()


@dataclass
class Cluster:
    """One test's crawl on the module's servers: its site, settings and data folder."""

    work: Path
    infra: Infra
    site: GeneratedSite
    env: dict[str, str]
    sources: Path
    alerts: Path
    procs: list[subprocess.Popen[str]]  # every worker it started

    @property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.infra.redis.url)

    def worker(self, name: str, idle: float = 2, settle_every: float | None = None
               ) -> subprocess.Popen[str]:
        """`dozor worker`; `settle_every`: its busy settles that often, not every 30 s."""
        program = ("-m", "dozor") if settle_every is None else (
            "-c", f"import crawler.spiders.frontier as f; f.SETTLE_EVERY = {settle_every}; "
                  "from dozor.cli import main; main()")
        return self._start(name, "worker", "--alerts", str(self.alerts),
                           "--visibility-timeout", VISIBILITY, "--exit-when-idle", str(idle),
                           program=program)

    def leader(self, name: str, sources: Path) -> subprocess.Popen[str]:
        """`dozor schedule --redis` ticking every second until killed."""
        return self._start(name, "schedule", "--every", "1s", sources=sources)

    def _start(self, name: str, *args: str, sources: Path | None = None,
               program: tuple[str, str] = ("-m", "dozor")) -> subprocess.Popen[str]:
        log = open(self.work / f"{name}.log", "w")  # noqa: SIM115 (the process keeps it)
        self.procs.append(subprocess.Popen(
            [sys.executable, *program, args[0], "--redis", self.infra.redis.url,
             "--es", self.infra.es.url, "--sources", str(sources or self.sources), *args[1:]],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True))
        return self.procs[-1]

    def log(self, name: str) -> str:
        return (self.work / f"{name}.log").read_text()

    def schedule(self) -> str:
        result = run_dozor(["schedule", "--redis", self.infra.redis.url, "--es",
                            self.infra.es.url, "--sources", str(self.sources), "--every", "1s",
                            "--cycles", "1"], self.env)
        return result.stdout + result.stderr

    def store(self) -> Store:
        return open_store(es=self.infra.es.url, spool_dir=self.work / "spool")

    def stored(self) -> list[Article]:
        """This test's stored articles: its site's pages and Telegram posts."""
        store = self.store()
        try:
            mine = (self.site.base, *(f"https://t.me/{c}/" for c in self.site.channels))
            return [a for a in store.iter_articles() if a.url.startswith(mine)]
        finally:
            store.close()

    def stored_urls(self) -> Counter[str]:
        return Counter(a.url for a in self.stored())


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """The test's worker processes: none outlives it, whatever it asserted."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _cluster(infra: Infra, work: Path, site: GeneratedSite, settings: str,
             sources: list[dict[str, object]], rules: str = "rules: []\n", *,
             started: list[subprocess.Popen[str]]) -> Cluster:
    if infra.redis.proc is None:  # a failed test may have left it stopped
        infra.redis.start()
    infra.es.faults.clear()
    redis.Redis.from_url(infra.redis.url).flushall()
    (work / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    (work / "dozor.yaml").write_text(settings, encoding="utf-8")
    (work / "alerts.yaml").write_text(rules, encoding="utf-8")
    env = {**infra.env, "DOZOR_DATA_DIR": str(work / "data"),
           "DOZOR_CONFIG": str(work / "dozor.yaml"), "DOZOR_TELEGRAM_URL": site.base}
    return Cluster(work, infra, site, env, work / "sources.yaml", work / "alerts.yaml",
                   started)


def _until(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.05)


def _wait(procs: list[subprocess.Popen[str]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            proc.wait(max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise AssertionError("a worker did not stop once the frontier was empty") from None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _children(pid: int) -> list[str]:
    """The command lines of `pid`'s child processes."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                out.append(Path(f"/proc/{child}/cmdline").read_text().replace("\0", " "))
            except OSError:
                pass  # gone meanwhile
    return out


CHANNELS = ("wire_one", "wire_two", "wire_three", "wire_four")
TELEGRAM_DELAY = 0.4
DOWNLOAD_DELAY = 0.15  # seconds between two article requests, whichever worker sends them


def test_pooled_workers_share_the_frontier_politely_and_mail_once(
        infra: Infra, tmp_path: Path, started: list[subprocess.Popen[str]]) -> None:
    # each article answer takes 20 ms: two workers fetching at once would overlap.
    # AutoThrottle on: each worker's own wait (from its start delay down to the download
    # delay as the answers come fast) comes before the slot in Redis, which keeps the
    # download delay between the starts of both workers' requests
    with GeneratedSite(40, delay=0.02, first=0, channels=CHANNELS) as site:
        settings = ("crawl:\n  stage_workers: 2\n  autothrottle: true\n"
                    "  concurrent_requests_per_domain: 1\n  telegram_concurrency: 1\n"
                    f"  telegram_delay: {TELEGRAM_DELAY}\n  download_delay: {DOWNLOAD_DELAY}\n")
        rules = ("rules:\n  - name: desk\n    query: minister\n    sources: [site]\n"
                 "    to: [desk@example.org]\n    digest_limit: 500\n")
        sources = [*site.sources(), {"name": "channels", "telegram": list(CHANNELS)}]
        cluster = _cluster(infra, tmp_path, site, settings, sources, rules, started=started)
        mailed_before = len(infra.smtp.received)
        site.gate.clear()  # the feed waits until both workers are up
        workers = [cluster.worker(f"w{i}") for i in range(2)]
        _until(lambda: cluster.redis.scard("dozor:workers") or any(
            w.poll() is not None for w in workers), "a worker reporting")
        assert enqueue_due(cluster.redis, ["site", "channels"], None) == ["site", "channels"]
        _until(lambda: cluster.redis.scard("dozor:workers") == 2 or any(
            w.poll() is not None for w in workers), "two workers reporting")
        site.gate.set()
        # each crawls with its stage pool, started before its crawl
        for worker in workers:
            assert any("forkserver" in c for c in _children(worker.pid)), cluster.log("w0")
        _wait(workers)
        assert [w.returncode for w in workers] == [0, 0], cluster.log("w0") + cluster.log("w1")
        hits = site.article_hits()
        assert len(hits) == 40 and set(hits.values()) == {1}  # none fetched twice
        articles = cluster.stored()
        stored = Counter(a.url for a in articles)
        assert len(stored) == 40 + len(CHANNELS) and set(stored.values()) == {1}
        # each worker's last figures, read from Redis: both crawled
        shown = CliRunner().invoke(app, ["stats", "workers", "--redis", infra.redis.url,
                                         "--json"])
        assert shown.exit_code == 0, shown.output
        figures = json.loads(shown.output)
        assert len(figures) == 2 and all(int(f["pages"]) > 0 for f in figures)
        assert sum(int(f["pages"]) for f in figures) == len(stored)
        assert all(f["errors"] == "0" and f["queued"] == "0" for f in figures)

        # politeness over both workers: one article request at a time on the host...
        fetches = site.requests_to("/news/")
        overlaps = [(a, b) for a, b in zip(fetches, fetches[1:], strict=False) if b[0] < a[1]]
        assert not overlaps, overlaps[:3]
        # ... the download delay between two starts, both workers' requests together (the
        # server's clock, read once its thread holds the GIL of a process that also serves
        # Elasticsearch: on busy cores some 30 ms late at times; without the slot in
        # Redis, two workers' starts come any time apart) ...
        starts = [start for start, _, _ in fetches]
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert min(gaps) >= 0.75 * DOWNLOAD_DELAY, sorted(gaps)[:5]
        # ... and Telegram's slot: one channel page at a time, the delay between them
        channel_pages = site.requests_to("/s/")
        assert len(channel_pages) == len(CHANNELS)
        gaps = [b[0] - a[0] for a, b in zip(channel_pages, channel_pages[1:], strict=False)]
        assert min(gaps) >= 0.9 * TELEGRAM_DELAY, gaps

        # every matching story mailed once, whichever worker stored and matched it
        matching = {i for i in range(40) if b"minister" in article_html(i).lower()}
        mailed: Counter[int] = Counter()
        for message in infra.smtp.messages()[mailed_before:]:
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            mailed.update({int(n) for n in re.findall(r"/news/(\d+)\.html", text)})
        assert set(mailed) == matching and set(mailed.values()) == {1}, mailed
        # the delivery log in Elasticsearch records each once, sent
        ids = {a.id for a in articles}
        deliveries = [d for d in infra.es.docs("dozor-deliveries").values()
                      if d.get("rule") == "desk" and d.get("article_id") in ids]
        assert len(deliveries) == len(matching)
        assert {d["status"] for d in deliveries} == {"sent"}, deliveries[:2]

        # the leader's second tick: every source was just polled, none is due
        assert "0 source(s) due" in cluster.schedule()
        # each worker's WARC folder; all of them together are what reprocess reads
        warcs = list((tmp_path / "data" / "warc").rglob("*.warc.gz"))
        assert len({w.parent for w in warcs}) == len(warcs) == 2
        assert set(warc_files(tmp_path / "data" / "warc")) == set(warcs)


def test_kill_a_worker_redis_and_elasticsearch_mid_crawl(
        infra: Infra, tmp_path: Path, started: list[subprocess.Popen[str]]) -> None:
    with GeneratedSite(100, delay=0.05, first=1000) as site:
        cluster = _cluster(infra, tmp_path, site, "crawl:\n  stage_workers: 2\n"
                           "  autothrottle: false\n  concurrent_requests_per_domain: 8\n",
                           site.sources(), started=started)
        server = cluster.redis
        first = cluster.worker("first")
        _until(lambda: server.scard("dozor:workers") or first.poll() is not None,
               "the first worker")
        assert enqueue_due(server, ["site"], None) == ["site"]
        _until(lambda: sum(site.article_hits().values()) >= 20 or first.poll() is not None,
               "20 articles fetched")
        assert first.poll() is None, cluster.log("first")
        first.kill()  # SIGKILL mid-crawl: its requests and unstored pages stay leased
        first.wait()
        queued = server.zcard("dozor:frontier:requests")
        leased = server.zcard("dozor:frontier:requests:leases")
        assert leased > 0 and queued > 0
        infra.redis.kill()  # SIGKILL: what survives is in the append-only file
        infra.redis.start()
        assert server.zcard("dozor:frontier:requests") == queued
        assert server.zcard("dozor:frontier:requests:leases") == leased
        infra.redis.kill()  # workers started while Redis is away say so, and wait
        workers = [cluster.worker(f"w{i}") for i in range(2)]
        _until(lambda: "unreachable" in cluster.log("w0") and "unreachable" in
               cluster.log("w1"), "the workers saying Redis is unreachable")
        infra.redis.start()
        _until(lambda: "Spider opened" in cluster.log("w0") and "Spider opened" in
               cluster.log("w1"), "the workers crawling")
        # and Elasticsearch answers nothing but 503 while they run
        faults = [infra.es.fail(method, ".", 503, times=10**9) or infra.es.faults[-1]
                  for method in ("GET", "HEAD", "POST", "PUT", "DELETE")]
        _until(lambda: "503" in cluster.log("w0") + cluster.log("w1"),
               "a worker meeting the refusal")
        for fault in faults:
            fault.times = 0  # back
        _wait(workers, timeout=90)
        logs = cluster.log("w0") + cluster.log("w1")
        line = next(x for x in cluster.log("w0").splitlines() if "unreachable" in x)
        assert f"Redis at {infra.redis.url} unreachable" in line and "retrying in" in line
        stored = cluster.stored_urls()
        assert len(stored) == 100 and set(stored.values()) == {1}, stored.most_common(3)
        hits = site.article_hits()
        assert len(hits) == 100
        # fetched again only what the killed worker had in flight or in its unstored
        # batch, and the batches the refusing Elasticsearch did not take
        refused = sum(int(n) for n in re.findall(r"a batch of (\d+) pages was not stored", logs))
        # each refusal said in one line, never a traceback
        assert "Traceback" not in logs and "failed in the stages" not in logs
        assert sum(n - 1 for n in hits.values()) <= 16 + 50 + refused
        assert server.zcard("dozor:frontier:requests:leases") == 0
        assert not list((tmp_path / "data" / "spool").rglob("*.jsonl"))


EDIT = (b"<p>The minister resigned on Tuesday evening after the council voted against the "
        b"harbour budget, officials at the ministry said in a statement.</p>")


def test_workers_revisit_what_the_leader_puts_on_the_frontier(
        infra: Infra, tmp_path: Path, started: list[subprocess.Popen[str]]) -> None:
    """The leader, ticking every second, puts each due revisit on the frontier once; the
    workers fetch them one at a time on the host and record the edit through the revisit
    callbacks; the workers SIGKILLed with a revisit in flight hand it back once its lease
    lapses, and it is recorded once, by another worker."""
    # an index of its own: the leader revisits whatever stored article is due
    with (GeneratedSite(10, delay=0.02, first=3000, channels=("wire_five",)) as site,
          FakeElasticsearch() as es):
        run_dozor(["setup", "--es", es.url], infra.env)
        settings = ("crawl:\n  stage_workers: 0\n  autothrottle: false\n"
                    "  concurrent_requests_per_domain: 1\n  telegram_delay: 0.1\n"
                    f"  download_delay: {DOWNLOAD_DELAY}\nrevisit:\n  schedule: [1s, 1h]\n")
        sources = [*site.sources(), {"name": "channels", "telegram": ["wire_five"]}]
        cluster = _cluster(replace(infra, es=es), tmp_path, site, settings, sources,
                           started=started)
        server = cluster.redis
        site.gate.clear()  # the feed waits until both workers are up
        # the leader's revisits only: the test puts the sources on the frontier itself
        (tmp_path / "none.yaml").write_text("sources: []\n", encoding="utf-8")
        leader = cluster.leader("leader", tmp_path / "none.yaml")
        workers = [cluster.worker(f"w{i}", idle=60) for i in range(2)]
        _until(lambda: server.scard("dozor:workers") == 2 or any(
            w.poll() is not None for w in [leader, *workers]), "two workers reporting")
        assert enqueue_due(server, ["site", "channels"], None) == ["site", "channels"]
        site.gate.set()
        site.pages["/s/wire_five?before=11"] = site.pages["/s/wire_five"]
        paths = [f"/news/{i}.html" for i in range(3000, 3010)]
        edited, held = paths[:2]

        # each changes as soon as it answered, a second before its revisit can be due:
        # one is edited, the other's revisit waits for its answer
        changes = {edited: lambda: site.pages.update({edited: article_html(3000).replace(
            b"</article>", EDIT + b"</article>")}),
                   held: lambda: site.holds.update({held: threading.Event()})}

        def changed() -> bool:
            for path in [p for p in changes if site.requests_to(p)]:
                changes.pop(path)()
            return not changes

        _until(changed, "the first fetches of the pages to change")
        _until(lambda: len(cluster.stored()) == 11, "the crawl stored")
        crawled = site.article_hits()
        assert crawled == dict.fromkeys(paths, 1)
        articles = {a.url: a for a in cluster.stored()}
        post = "https://t.me/wire_five/1"
        store = cluster.store()
        try:
            def revised() -> set[str]:
                due = {t.url for t in store.revisit_targets(utcnow(), [1, 3600])}
                return set(articles) - due

            def fetched_again() -> set[str]:
                again = {site.url(p) for p, n in site.article_hits().items() if n > crawled[p]}
                if site.hits["/s/wire_five?before=11"]:
                    again.add(post)
                return again

            # the held revisit in flight, every other one fetched recorded (the post's on
            # a slot of its own among them): both workers killed
            _until(lambda: site.url(held) in fetched_again() and post in revised() and (
                revised() == fetched_again() - {site.url(held)}), "the held revisit")
            for worker in workers:
                worker.kill()
                worker.wait()
            site.holds[held].set()
            assert server.zcard("dozor:frontier:requests:leases") > 0
            last = cluster.worker("last", idle=1)
            _wait([last])
            assert last.returncode == 0, cluster.log("last")
            # every revisit recorded once and fetched once, the held one again after its
            # lease lapsed
            assert revised() == set(articles), set(articles) - revised()
            again = {p: n - crawled[p] for p, n in site.article_hits().items()}
            assert again == {p: 2 if p == held else 1 for p in paths}, again
            assert site.hits["/s/wire_five?before=11"] == 1
            events = {url: [e.kind for e in store.events(a.id)] for url, a in articles.items()}
            assert events == {url: ["edited"] if url == site.url(edited) else []
                              for url in articles}
            current = store.get(articles[site.url(edited)].id)
            assert current is not None and "resigned on Tuesday" in current.text
        finally:
            store.close()
        logs = cluster.log("last")
        assert "revisits:" in logs and "Traceback" not in logs
        # the leader put each on the frontier once, though it ticked while they waited;
        # once revised, their marks go at its next tick
        assert server.zcard("dozor:frontier:requests") == 0
        assert server.zcard("dozor:frontier:requests:leases") == 0
        _until(lambda: server.scard("dozor:revisits") == 0, "the marks dropped", timeout=10)
        leader.kill()
        leader.wait()
        ticks = re.findall(r"leader: (\d+) revisit\(s\) due", cluster.log("leader"))
        assert sum(map(int, ticks)) == 11 and len(ticks) > 2, cluster.log("leader")
        # politeness over every worker, crawl and revisits: one request at a time on the
        # host (the delay between starts is the first test's: with the stages and the
        # revisits' extraction in a worker's reactor, a busy core can hold a request
        # between its slot and the wire)
        fetches = site.requests_to("/news/")
        overlaps = [(a, b) for a, b in zip(fetches, fetches[1:], strict=False) if b[0] < a[1]]
        assert len(fetches) == 21 and not overlaps, overlaps[:3]


def test_a_busy_worker_records_health_and_mails_while_the_leader_ticks(
        infra: Infra, tmp_path: Path, started: list[subprocess.Popen[str]]) -> None:
    """A worker kept busy (an article's answer held) records its source's poll and mails
    the stories it stored at its busy settles, before its first idle moment; the leader,
    ticking every second, does not queue the source again while its poll is in flight
    (the feed's answer held for two ticks, then its articles fetched): the feed is
    fetched once."""
    with GeneratedSite(20, delay=0.02, first=4000) as site:
        settings = ("crawl:\n  stage_workers: 0\n  autothrottle: false\n"
                    "  concurrent_requests_per_domain: 2\n")
        rules = ("rules:\n  - name: busy\n    query: minister\n    sources: [busy]\n"
                 "    to: [busy@example.org]\n    digest_limit: 500\n")
        # a source of its own: the module's Elasticsearch holds other tests' health
        feed = site.url("/feed.xml")
        sources = [{"name": "busy", "lang": "en", "feeds": [feed]}]
        cluster = _cluster(infra, tmp_path, site, settings, sources, rules, started=started)
        mailed_before = len(infra.smtp.received)
        matching = {i for i in range(4000, 4020) if b"minister" in article_html(i).lower()}
        held = max(matching)
        site.holds[f"/news/{held}.html"] = threading.Event()
        site.gate.clear()
        leader = cluster.leader("leader", cluster.sources)
        worker = cluster.worker("w", settle_every=1)

        def ticks() -> int:
            return len(re.findall(r"leader: \d+ source\(s\) due", cluster.log("leader")))

        _until(lambda: site.hits["/feed.xml"] or worker.poll() is not None, "the feed asked")
        after = ticks()
        _until(lambda: ticks() >= after + 2, "two ticks of the leader")
        assert site.hits["/feed.xml"] == 1
        site.gate.set()

        def mailed() -> set[int]:
            out = set()
            for message in infra.smtp.messages()[mailed_before:]:
                text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                out.update(int(n) for n in re.findall(r"/news/(\d+)\.html", text))
            return out

        def polled() -> list[HealthRecord]:
            store = cluster.store()
            try:
                return [r for r in store.health_records() if r.source == "busy"]
            finally:
                store.close()

        # the held answer keeps the worker busy: it never was idle meanwhile
        _until(lambda: mailed() == matching - {held} and polled() or worker.poll() is not None,
               "the busy worker's mail and health record", timeout=30)
        assert worker.poll() is None, cluster.log("w")
        assert not site.requests_to(f"/news/{held}.html")  # still unanswered
        [record] = polled()
        assert (record.url, record.status, record.state) == (feed, 200, "ok")
        assert not cluster.redis.exists("dozor:polling:busy")
        site.holds[f"/news/{held}.html"].set()
        _until(lambda: mailed() == matching, "the held story's mail", timeout=30)
        for proc in (worker, leader):
            proc.kill()
            proc.wait()
        assert "Traceback" not in cluster.log("w")
        # the leader queued the source once: neither in flight nor once polled again
        assert site.hits["/feed.xml"] == 1, cluster.log("leader")
        assert re.findall(r"leader: (\d+) source\(s\) due", cluster.log("leader")).count(
            "1") == 1

"""`dozor worker` x N on a real redis-server (AOF on) and the loopback Elasticsearch,
against a generated site on 127.0.0.1 whose every request is counted: every article
stored once, none fetched twice; a worker SIGKILLed mid-crawl and Redis SIGKILLed and
restarted from its append-only file, and still every article stored once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import yaml

from pipelines.archive import warc_files
from pipelines.store import open_store
from tests.conftest import REPO
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.support.cli import run_dozor
from tests.support.frontier import MISSING, REDIS_SERVER, GeneratedSite, RedisServer

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason=MISSING)


@dataclass
class Cluster:
    work: Path
    redis: RedisServer
    es: FakeElasticsearch
    site: GeneratedSite
    env: dict[str, str]
    sources: Path

    def worker(self, name: str, *extra: str) -> subprocess.Popen[str]:
        log = open(self.work / f"{name}.log", "w")  # noqa: SIM115 (the process keeps it)
        return subprocess.Popen(
            [sys.executable, "-m", "dozor", "worker", "--redis", self.redis.url, "--es",
             self.es.url, "--sources", str(self.sources), "--visibility-timeout", "4",
             "--exit-when-idle", "3", *extra],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True)

    def log(self, name: str) -> str:
        return (self.work / f"{name}.log").read_text()

    def schedule(self) -> str:
        result = run_dozor(["schedule", "--redis", self.redis.url, "--es", self.es.url,
                            "--sources", str(self.sources), "--every", "1s", "--cycles", "1"],
                           self.env)
        return result.stdout + result.stderr

    def stored_urls(self) -> Counter[str]:
        store = open_store(es=self.es.url, spool_dir=self.work / "spool")
        try:
            return Counter(a.url for a in store.iter_articles())
        finally:
            store.close()


def _cluster(work: Path, count: int, delay: float) -> Iterator[Cluster]:
    red = RedisServer(work / "redis").start()
    es = FakeElasticsearch().start()
    site = GeneratedSite(count, delay).start()
    sources = work / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": site.sources()}), encoding="utf-8")
    settings = work / "dozor.yaml"
    # stages in each worker's process (the cores are the workers'); no adaptive delay
    settings.write_text("crawl:\n  stage_workers: 0\n  autothrottle: false\n"
                        "  concurrent_requests_per_domain: 8\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DOZOR_", "ELASTIC", "KIBANA"))}
    env.update(DOZOR_DATA_DIR=str(work / "data"), DOZOR_CONFIG=str(settings),
               DOZOR_ALLOWED_NETWORKS="127.0.0.1/32")
    try:
        run_dozor(["setup", "--es", es.url], env)
        yield Cluster(work, red, es, site, env, sources)
    finally:
        red.kill()
        es.stop()
        site.stop()


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


def test_workers_share_the_frontier(tmp_path: Path) -> None:
    for cluster in _cluster(tmp_path, count=120, delay=0.01):
        workers = [cluster.worker(f"w{i}") for i in range(3)]
        assert "1 source(s) due put on the frontier: site" in cluster.schedule()
        _wait(workers)
        assert [w.returncode for w in workers] == [0, 0, 0], cluster.log("w0")
        hits = cluster.site.article_hits()
        assert len(hits) == 120 and set(hits.values()) == {1}  # none fetched twice
        stored = cluster.stored_urls()
        assert len(stored) == 120 and set(stored.values()) == {1}
        # each worker's last figures, read from Redis
        figures = json.loads(run_dozor(["stats", "workers", "--redis", cluster.redis.url,
                                        "--json"], cluster.env).stdout)
        assert len(figures) == 3 and sum(int(f["pages"]) for f in figures) == 120
        assert all(f["errors"] == "0" and f["queued"] == "0" for f in figures)
        # the leader's second tick: every source was just polled, none is due
        assert "0 source(s) due" in cluster.schedule()
        # each worker's WARC folder; all of them together hold every article page
        warcs = list((tmp_path / "data" / "warc").rglob("*.warc.gz"))
        assert len({w.parent for w in warcs}) == len(warcs) >= 1
        assert set(warc_files(tmp_path / "data" / "warc")) == set(warcs)  # what reprocess reads


def test_kill_a_worker_and_redis_mid_crawl(tmp_path: Path) -> None:
    for cluster in _cluster(tmp_path, count=100, delay=0.05):
        first = cluster.worker("first")
        cluster.schedule()
        deadline = time.monotonic() + 40
        while sum(cluster.site.article_hits().values()) < 20:
            assert time.monotonic() < deadline and first.poll() is None, cluster.log("first")
            time.sleep(0.05)
        first.kill()  # SIGKILL mid-crawl: its requests and unstored pages stay leased
        first.wait()
        server = redis.Redis.from_url(cluster.redis.url)
        queued = server.zcard("dozor:frontier:requests")
        leased = server.zcard("dozor:frontier:requests:leases")
        assert leased > 0 and queued > 0
        cluster.redis.kill()  # SIGKILL: what survives is in the append-only file
        cluster.redis.start()
        assert server.zcard("dozor:frontier:requests") == queued
        assert server.zcard("dozor:frontier:requests:leases") == leased
        cluster.redis.kill()  # workers started while Redis is away say so, and wait
        workers = [cluster.worker(f"w{i}") for i in range(2)]
        deadline = time.monotonic() + 40
        while "unreachable" not in cluster.log("w0"):
            assert time.monotonic() < deadline, cluster.log("w0")
            time.sleep(0.2)
        cluster.redis.start()
        _wait(workers, timeout=90)
        line = next(x for x in cluster.log("w0").splitlines() if "unreachable" in x)
        assert f"Redis at {cluster.redis.url} unreachable" in line and "retrying in" in line
        stored = cluster.stored_urls()
        assert len(stored) == 100 and set(stored.values()) == {1}, stored.most_common(3)
        hits = cluster.site.article_hits()
        assert len(hits) == 100
        # fetched again only what the killed worker had in flight or in its unstored batch
        assert sum(n - 1 for n in hits.values()) <= 16 + 50
        assert server.zcard("dozor:frontier:requests:leases") == 0

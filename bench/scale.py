"""The same local site crawled by 1, 2 and 4 `dozor worker` processes on one real
redis-server and the loopback Elasticsearch: pages stored per second, side by side.

    .venv/bin/python -m bench.scale [--pages 2000] [--workers 1,2,4] [--stage-workers 0]

The site is bench/crawl.py's: the shared corpus's real news pages repeated under
distinct URLs, one RSS feed listing them, answered from memory by a threaded server in a
process of its own (the crawlers' CPU is not its CPU). Each run has a fresh Redis and
index, its workers are all up before the source is put on the frontier, and its rate is
the pages stored over the time from then until the index last grew (fetch, stages and
write; a page the stages drop is not counted). `--stage-workers` is each worker's
`crawl.stage_workers`: 0 (the default here) runs the stages in the worker's own process,
so N workers are N busy processes; `dozor worker` defaults to one stage process per core.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import redis
import yaml

from bench.corpus import DEFAULT_PAGES, load_pages
from bench.crawl import BenchSite
from dozor.demo.loopback import Response
from dozor.worker import enqueue_due
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.support.frontier import REDIS_SERVER, RedisServer

ROOT = Path(__file__).resolve().parents[1]
_RETRIED = re.compile(r"'retry/count': (\d+)")


class CountingSite(BenchSite):
    """BenchSite counting its article answers in a counter the bench process reads."""

    def __init__(self, bodies: list[bytes], count: int, served: Synchronized) -> None:
        super().__init__(bodies, count)
        self.served = served

    def respond(self, path: str) -> Response:
        if path.startswith("/news/"):
            with self.served.get_lock():
                self.served.value += 1
        return super().respond(path)


def _serve(bodies: list[bytes], count: int, served: Synchronized, port: Synchronized) -> None:
    site = CountingSite(bodies, count, served)
    port.value = site.port
    site.httpd.serve_forever()


def run(workers: int, pages: int, base: str, served: Synchronized, stage_workers: int,
        work: Path) -> tuple[float, int, int, int]:
    """(pages stored per second, pages stored, article requests answered, retries) with
    `workers` processes."""
    red = RedisServer(work / "redis").start()
    es = FakeElasticsearch().start()
    try:
        sources = work / "sources.yaml"
        sources.write_text(yaml.safe_dump({"sources": [
            {"name": "bench", "lang": "ru", "feeds": [f"{base}/feed.xml"]}]}), encoding="utf-8")
        (work / "alerts.yaml").write_text("rules: []\n", encoding="utf-8")
        settings = work / "dozor.yaml"
        settings.write_text(f"crawl:\n  stage_workers: {stage_workers}\n  autothrottle: false\n"
                            "  concurrent_requests_per_domain: 16\ntranslation:\n  mode: none\n",
                            encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOZOR_", "ELASTIC"))}
        env.update(DOZOR_DATA_DIR=str(work / "data"), DOZOR_CONFIG=str(settings),
                   DOZOR_ALLOWED_NETWORKS="127.0.0.1/32")
        dozor = [sys.executable, "-m", "dozor"]
        subprocess.run([*dozor, "setup", "--es", es.url], env=env, cwd=ROOT, check=True,
                       capture_output=True)
        logs = [work / f"worker-{i}.log" for i in range(workers)]
        procs = []
        for log in logs:
            with log.open("wb") as err:  # the child holds its own copy
                procs.append(subprocess.Popen(
                    [*dozor, "worker", "--redis", red.url, "--es", es.url, "--sources",
                     str(sources), "--alerts", str(work / "alerts.yaml"), "--exit-when-idle",
                     "3", "--verbose"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err))
        server = redis.Redis.from_url(red.url)
        deadline = time.monotonic() + 180
        while server.scard("dozor:workers") < workers:  # every worker reported: it is up
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                sys.exit("workers did not start")
            time.sleep(0.1)
        served_before = served.value
        start = time.monotonic()
        enqueue_due(server, ["bench"], None)
        stored, last = 0, start  # the index's count, and when it last grew
        while any(p.poll() is None for p in procs):  # they stop once the frontier is empty
            if time.monotonic() - start > 1800:
                sys.exit(f"{stored} of {pages} pages stored after 30 minutes")
            now = len(es.docs("dozor-articles"))
            if now > stored:
                stored, last = now, time.monotonic()
            time.sleep(0.2)
        # Scrapy's closing stats dump (INFO, hence --verbose): requests its retry
        # middleware sent again (printed by both the worker's handler and Scrapy's)
        retried = sum(int(found[-1]) for log in logs
                      if (found := _RETRIED.findall(log.read_text(errors="replace"))))
        return stored / (last - start), stored, served.value - served_before, retried
    finally:
        red.kill()
        es.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--stage-workers", type=int, default=0)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_PAGES)
    args = parser.parse_args(argv)
    if REDIS_SERVER is None:
        print("redis-server not installed (apt-get install redis-server)")
        return 1
    bodies = [page.body for _, page in load_pages(args.corpus)]
    # spawned: a clean interpreter, not a fork of this one with its servers' threads
    context = multiprocessing.get_context("spawn")
    served, port = context.Value("q", 0), context.Value("i", 0)
    site = context.Process(target=_serve, args=(bodies, args.pages, served, port),
                           daemon=True)
    site.start()
    while not port.value:
        time.sleep(0.05)
    counts = [int(n) for n in args.workers.split(",")]
    rates = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in counts:
                load = os.getloadavg()[0]
                rate, stored, answered, retried = run(n, args.pages, f"http://127.0.0.1:{port.value}",
                                             served, args.stage_workers, Path(tmp) / f"w{n}")
                rates[n] = rate
                print(f"{n} worker(s): {rate:7.1f} pages/s  ({stored} stored, {answered} "
                      f"article requests answered, {retried} retried; load average before "
                      f"{load:.1f})",
                      flush=True)
    finally:
        site.terminate()
    first = counts[0]
    print(f"ratio to {first} worker(s): "
          + ", ".join(f"{n}: {rates[n] / rates[first]:.2f}x" for n in counts))
    # the loopback Elasticsearch runs in this process: its CPU is on the same cores
    print(f"{os.cpu_count()} CPUs, stage_workers {args.stage_workers} per worker, "
          f"load average now {os.getloadavg()[0]:.1f}; the site and the loopback "
          "Elasticsearch share these CPUs with the workers.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

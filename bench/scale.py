"""The same generated local site crawled by 1, 2 and 4 `dozor worker` processes on one
real redis-server and the loopback Elasticsearch: article pages per second, side by side.

    .venv/bin/python -m bench.scale [--pages 2000] [--workers 1,2,4]

Pages/s is the article pages fetched over the time from the first to the last article
request the site saw (worker start-up excluded: the workers are up before the source is
put on the frontier). The site answers from memory in a threaded server, well under a
millisecond a page: not the bottleneck. Each run has a fresh Redis and index.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import yaml

from tests.fakes.elasticsearch import FakeElasticsearch
from tests.support.frontier import REDIS_SERVER, GeneratedSite, RedisServer

ROOT = Path(__file__).resolve().parents[1]


class TimedSite(GeneratedSite):
    def respond(self, path: str):  # type: ignore[no-untyped-def]
        if path.startswith("/news/"):
            now = time.monotonic()
            self.first = min(getattr(self, "first", now), now)
            self.last = now
        return super().respond(path)


def run(workers: int, pages: int, work: Path) -> tuple[float, int, int]:
    """(article pages/s, pages fetched, pages stored) with `workers` processes."""
    red = RedisServer(work / "redis").start()
    es = FakeElasticsearch().start()
    site = TimedSite(pages).start()
    try:
        sources = work / "sources.yaml"
        sources.write_text(yaml.safe_dump({"sources": site.sources()}), encoding="utf-8")
        settings = work / "dozor.yaml"
        settings.write_text("crawl:\n  stage_workers: 0\n  autothrottle: false\n"
                            "  concurrent_requests_per_domain: 64\n", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOZOR_", "ELASTIC"))}
        env.update(DOZOR_DATA_DIR=str(work / "data"), DOZOR_CONFIG=str(settings),
                   DOZOR_ALLOWED_NETWORKS="127.0.0.1/32")
        dozor = [sys.executable, "-m", "dozor"]
        subprocess.run([*dozor, "setup", "--es", es.url], env=env, cwd=ROOT, check=True,
                       capture_output=True)
        procs = [subprocess.Popen([*dozor, "worker", "--redis", red.url, "--es", es.url,
                                   "--sources", str(sources), "--exit-when-idle", "3"],
                                  env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(workers)]
        server = redis.Redis.from_url(red.url)
        deadline = time.monotonic() + 120
        while server.scard("dozor:workers") < workers:  # every worker reported: it is up
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.2)
        subprocess.run([*dozor, "schedule", "--redis", red.url, "--es", es.url, "--sources",
                        str(sources), "--every", "1s", "--cycles", "1"], env=env, cwd=ROOT,
                       check=True, capture_output=True)
        for proc in procs:
            proc.wait(600)
        fetched = sum(site.article_hits().values())
        stored = sum(int(server.hget(f"dozor:workers:{w.decode()}", "pages") or 0)
                     for w in server.smembers("dozor:workers"))
        return fetched / max(site.last - site.first, 1e-9), fetched, stored
    finally:
        red.kill()
        es.stop()
        site.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args(argv)
    if REDIS_SERVER is None:
        print("redis-server not installed (apt-get install redis-server)")
        return 1
    counts = [int(n) for n in args.workers.split(",")]
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            rate, fetched, stored = run(n, args.pages, Path(tmp) / f"w{n}")
            rates[n] = rate
            print(f"{n} worker(s): {rate:7.1f} pages/s  ({fetched} fetched, {stored} processed)",
                  flush=True)
    base = rates[counts[0]]
    print("ratio to 1 worker: " + ", ".join(f"{n}: {rates[n] / base:.2f}x" for n in counts))
    print(f"cores: {os.cpu_count()}. Each worker runs the stages (extraction, language, "
          "terms, dedup) in its own process: the crawl is CPU-bound, so it scales with the "
          "cores until the workers outnumber them; past that they only share the same CPU.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

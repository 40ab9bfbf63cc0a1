"""A whole `dozor run` against a bare Scrapy spider fetching the same pages with the same
settings: wall time, CPU, peak memory and their ratio, with the stage-time breakdown;
measured side by side in one run.

    .venv/bin/python -m bench.crawl [--pages 2000] [--no-autothrottle] [PAGES_DIR]

N article pages (the shared corpus's pages, repeated under distinct URLs) and one RSS
feed listing them are served from memory on 127.0.0.1 by a threaded server (a few ms
per page: not the bottleneck). Both crawls run as child processes, sampled every 0.1 s
with everything they start (the stage pool included): CPU is the sum over the tree, peak
memory the largest sum of its proportional set sizes (PSS: a page forked processes
share is split between them, not counted in each). The closing line sets the wall time
against the issue's bound, 1.2 x max(bare fetch time, stage CPU / cores). Run with
several --pages values (500, 2000, 10000) to see memory stay flat in N, or with
`--sizes 500,2000,10000`: `dozor run` alone at each size, one after the other in one
run, with its peak memory against the smallest size's.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import psutil

from bench.corpus import DEFAULT_PAGES, load_pages
from dozor.demo.loopback import LoopbackServer, Response

ROOT = Path(__file__).resolve().parents[1]


class BenchSite(LoopbackServer):
    def __init__(self, bodies: list[bytes], count: int) -> None:
        super().__init__()
        self.bodies = bodies
        self.count = count
        when = format_datetime(datetime.now(UTC))
        items = "".join(
            f"<item><title>Story {i}</title><link>{self.base}/news/{i}.html</link>"
            f"<pubDate>{when}</pubDate></item>" for i in range(count))
        self.feed = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                     f"<title>bench</title><link>{self.base}/</link>{items}</channel></rss>"
                     ).encode()

    def respond(self, path: str) -> Response:
        if path == "/feed.xml":
            return 200, {"Content-Type": "application/rss+xml"}, self.feed
        m = re.fullmatch(r"/news/(\d+)\.html", path)
        if m and int(m[1]) < self.count:
            body = self.bodies[int(m[1]) % len(self.bodies)]
            return 200, {"Content-Type": "text/html"}, body
        return 404, {"Content-Type": "text/plain"}, b"not found"


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak resident MB, output) of one child process and every process
    under it. The stage pool's processes are the fork server's children, never reaped by
    the child: its own rusage would leave their CPU out, so the tree is sampled instead
    (each process's CPU as last seen; memory as the largest PSS sum over the tree)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        root = psutil.Process(proc.pid)
        cpu: dict[int, float] = {}
        peak = 0
        while proc.poll() is None:
            rss = 0
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in tree:
                try:
                    times = p.cpu_times()
                    cpu[p.pid] = times.user + times.system
                    rss += p.memory_full_info().pss
                except psutil.NoSuchProcess:
                    continue
            peak = max(peak, rss)
            time.sleep(0.1)
        proc.wait()
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode not in (0, 1):
        sys.exit(f"{argv[1:3]} failed ({proc.returncode}):\n{text[-3000:]}")
    return wall, sum(cpu.values()), peak / 2**20, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="?", type=Path, default=DEFAULT_PAGES)
    parser.add_argument("--pages", dest="count", type=int, default=2000)
    parser.add_argument("--no-autothrottle", action="store_true")
    parser.add_argument("--sizes", type=lambda v: [int(n) for n in v.split(",")],
                        help="comma-separated page counts: dozor run alone at each")
    args = parser.parse_args()
    if not (args.pages / "manifest.json").exists():
        sys.exit(f"no corpus at {args.pages} (manifest.json missing)")
    bodies = [page.body for _, page in load_pages(args.pages)]
    if args.sizes:
        memory_by_size(bodies, args.sizes, args.no_autothrottle)
        return
    with crawl_setup(bodies, args.count, args.no_autothrottle) as (site, sources, alerts, env):
        bare = measure([PYTHON, "-m", "bench.bare_spider", f"{site.base}/feed.xml",
                        "false" if args.no_autothrottle else "true"], env)
        dozor = measure(dozor_run(sources, alerts), env)
    print(f"{args.count} pages, AutoThrottle {'off' if args.no_autothrottle else 'on'}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"{'':14}{'wall s':>9}{'CPU s':>9}{'peak MB':>9}")
    for name, (wall, cpu, rss, _) in (("bare Scrapy", bare), ("dozor run", dozor)):
        print(f"{name:14}{wall:9.1f}{cpu:9.1f}{rss:9.0f}")
    print(f"ratio dozor / bare: wall {dozor[0] / bare[0]:.2f}x, CPU {dozor[1] / bare[1]:.2f}x")
    fetched = re.search(r"^bare: (\d+) pages", bare[3], re.M)
    print(f"bare spider fetched {fetched[1] if fetched else '?'} pages")
    for line in dozor[3].splitlines():
        if line.startswith(("crawl:", "stage", "  ")) and "DEBUG" not in line:
            print("  dozor | " + line.strip())
    stages = re.search(r"^stage CPU seconds: ([^;]*);", dozor[3], re.M)
    if stages:
        # the bound: the crawl waits for neither the fetches nor the stages longer
        # than the slower of the two needs on these cores
        stage_cpu = sum(float(part.rsplit(" ", 1)[1]) for part in stages[1].split(", "))
        cores = len(os.sched_getaffinity(0))
        bound = 1.2 * max(bare[0], stage_cpu / cores)
        print(f"target: wall <= 1.2 x max(bare wall {bare[0]:.1f} s, stage CPU "
              f"{stage_cpu:.1f} s / {cores} cores) = {bound:.1f} s; dozor wall "
              f"{dozor[0]:.1f} s = {dozor[0] / bound:.2f}x of it")


PYTHON = str(ROOT / ".venv" / "bin" / "python")


@contextmanager
def crawl_setup(bodies: list[bytes], count: int, no_autothrottle: bool
                ) -> Iterator[tuple[BenchSite, Path, Path, dict[str, str]]]:
    """The site of `count` pages, and the settings, sources and alerts files of a run."""
    with BenchSite(bodies, count) as site, tempfile.TemporaryDirectory() as tmp:
        settings = Path(tmp, "dozor.yaml")
        settings.write_text(f"crawl:\n  autothrottle: {'false' if no_autothrottle else 'true'}\n"
                            "translation:\n  mode: none\n", encoding="utf-8")
        sources = Path(tmp, "sources.yaml")
        sources.write_text(f"sources:\n  - name: bench\n    lang: ru\n"
                           f"    feeds: [{site.base}/feed.xml]\n", encoding="utf-8")
        alerts = Path(tmp, "alerts.yaml")
        alerts.write_text("rules: []\n", encoding="utf-8")
        # COLUMNS: the run's summary lines unwrapped, for the stage-time breakdown
        yield site, sources, alerts, {**os.environ, "DOZOR_DATA_DIR": str(Path(tmp, "data")),
                                      "DOZOR_CONFIG": str(settings), "COLUMNS": "250"}


def dozor_run(sources: Path, alerts: Path) -> list[str]:
    return [PYTHON, "-m", "dozor", "run", "--sources", str(sources), "--alerts", str(alerts),
            "--allow-private-network", "--verbose"]


def memory_by_size(bodies: list[bytes], sizes: list[int], no_autothrottle: bool) -> None:
    """`dozor run` at each size: its peak memory should not grow with the pages."""
    rows = []
    for count in sizes:
        with crawl_setup(bodies, count, no_autothrottle) as (_, sources, alerts, env):
            wall, cpu, rss, _ = measure(dozor_run(sources, alerts), env)
        rows.append((count, wall, cpu, rss))
        print(f"{count:>7} pages: wall {wall:7.1f} s, CPU {cpu:7.1f} s, peak {rss:6.0f} MB",
              flush=True)
    smallest = rows[0][3]
    print(f"{'pages':>7}{'peak MB':>9}{'vs first':>10}  (load {os.getloadavg()[0]:.2f})")
    for count, _, _, rss in rows:
        print(f"{count:>7}{rss:9.0f}{rss / smallest:9.2f}x")

if __name__ == "__main__":
    main()

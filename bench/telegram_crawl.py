"""Posts per second of a Telegram channel crawl, beside articles per second of a feed crawl.

    .venv/bin/python -m bench.telegram_crawl [--posts N]

One loopback server serves a channel of N posts (Telegram's preview markup, 20 to a
page, paged back with ?before=) and a feed of N web articles with the same texts. Each
crawl runs through the real stages into a fresh SQLite file, in its own process
(Twisted's reactor runs once per process); the time is the crawl's own, measured inside
it, without the process start. The Telegram slot's delay is set to 0: the figure is
Dozor's throughput, not Telegram's politeness delay (1 s per page by default).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import yaml

from dozor.demo.loopback import LoopbackServer, Response
from dozor.demo.telegram import DemoPost, channel_pages

LINES = [
    "В колонии ИК-{n} снова приезжали вербовщики «Шторм Z»",
    "Заключённым обещают помилование через шесть месяцев контракта с Минобороны.",
    "Родственники осуждённых говорят, что узнают о контрактах из писем.",
]


class BenchServer(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.pages: dict[str, tuple[str, bytes]] = {}

    def add(self, path: str, body: str, content_type: str = "text/html; charset=utf-8") -> None:
        self.pages[path] = (content_type, body.encode("utf-8"))

    def respond(self, path: str) -> Response:
        if path not in self.pages:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        content_type, body = self.pages[path]
        return 200, {"Content-Type": content_type}, body


def _text(n: int) -> list[str]:
    return [line.format(n=n) for line in LINES] + [f"Сводка номер {n}."]


def _serve(server: BenchServer, count: int) -> None:
    now = datetime.now(UTC)
    posts = [DemoPost(n + 1, now - timedelta(minutes=5 * (count - n)), views=f"{n}",
                      html="<br>".join(_text(n))) for n in range(count)]
    for path, html in channel_pages("bench_channel", "Bench", posts).items():
        server.add(path, html)
    items = []
    for n in range(count):
        path = f"/news/{n}.html"
        body = "".join(f"<p>{line}</p>" for line in _text(n))
        server.add(path, f"<html lang='ru'><head><title>{LINES[0].format(n=n)}</title></head>"
                         f"<body><article><h1>{LINES[0].format(n=n)}</h1>{body}</article>"
                         "</body></html>")
        when = format_datetime(now - timedelta(minutes=5 * (count - n)))
        items.append(f"<item><title>{LINES[0].format(n=n)}</title><link>{server.url(path)}"
                     f"</link><pubDate>{when}</pubDate></item>")
    server.add("/rss.xml", "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
               f"<title>Bench</title>{''.join(items)}</channel></rss>", "application/rss+xml")


def child(kind: str, base: str, work: Path) -> None:
    """One crawl in this process; prints the stored count and the seconds it took."""
    from crawler.runner import crawl
    from pipelines.config.config import Config
    from pipelines.config.sources import load_sources
    from pipelines.process import build_pipeline
    from pipelines.store import open_store

    source = ({"name": "bench", "telegram": ["bench_channel"]} if kind == "telegram"
              else {"name": "bench", "feeds": [f"{base}/rss.xml"]})
    path = work / f"{kind}.yaml"
    path.write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    store = open_store(db=work / f"{kind}.db")
    config = Config.from_env()
    pipeline, _ = build_pipeline(store, config)
    started = time.perf_counter()
    crawl(load_sources(path), pipeline, config, allow_private_network=True, log_level="ERROR")
    elapsed = time.perf_counter() - started
    print(json.dumps({"stored": store.count(), "seconds": elapsed}))
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--child", choices=["telegram", "feed"])
    parser.add_argument("--base")
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.base, args.work)
        return
    with tempfile.TemporaryDirectory() as tmp, BenchServer() as server:
        _serve(server, args.posts)
        work = Path(tmp)
        (work / "dozor.yaml").write_text("crawl:\n  telegram_delay: 0\n", encoding="utf-8")
        env = {**os.environ, "DOZOR_TELEGRAM_URL": server.base,
               "DOZOR_CONFIG": str(work / "dozor.yaml"), "DOZOR_DATA_DIR": str(work / "data")}
        results = {}
        for kind in ("telegram", "feed"):
            out = subprocess.run(
                [sys.executable, "-m", "bench.telegram_crawl", "--child", kind, "--base",
                 server.base, "--work", str(work)],
                env=env, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"the {kind} crawl failed:\n{out.stderr[-2000:]}")
            results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    tg, feed = results["telegram"], results["feed"]
    tg_rate, feed_rate = tg["stored"] / tg["seconds"], feed["stored"] / feed["seconds"]
    print(f"telegram channel: {tg['stored']} posts in {tg['seconds']:.2f} s = "
          f"{tg_rate:.1f} posts/s ({-(-args.posts // 20)} channel pages)")
    print(f"feed of web pages: {feed['stored']} articles in {feed['seconds']:.2f} s = "
          f"{feed_rate:.1f} articles/s ({args.posts} pages)")
    print(f"ratio posts/s : articles/s = {tg_rate / feed_rate:.2f}")


if __name__ == "__main__":
    main()

"""What the distributed-crawl tests and bench/scale.py run: a real `redis-server` (Debian's
package) on 127.0.0.1 with its append-only file on, and a generated news site whose
every article is distinct and whose every request is counted."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from dozor.demo.loopback import LoopbackServer, Response
from dozor.demo.telegram import DemoPost, channel_pages

REDIS_SERVER = shutil.which("redis-server")
MISSING = ("redis-server not installed (Debian's redis-server package; `make test-install` "
           "installs it when run as root)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """redis-server on a free loopback port, AOF on (fsync always), in `directory`;
    `kill()` is SIGKILL, `start()` again resumes from the AOF."""

    def __init__(self, directory: Path) -> None:
        assert REDIS_SERVER, MISSING
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(REDIS_SERVER), "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
             "--save", "", "--protected-mode", "yes", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


_WORDS = ("parliament minister budget energy grid harbour railway court election mayor "
          "council river bridge school hospital farmers export grain drone port customs "
          "treaty summit reform pension tariff strike union airport weather flood museum "
          "library festival theatre orchestra football coach striker league season").split()


def _story(i: int) -> tuple[str, random.Random]:
    """Story i's title, and the generator its paragraphs go on from."""
    rng = random.Random(i)
    return f"Story {i}: " + " ".join(rng.choice(_WORDS) for _ in range(6)), rng


def article_title(i: int) -> str:
    return _story(i)[0]


def article_html(i: int) -> bytes:
    """A distinct English article: its own title and paragraphs."""
    title, rng = _story(i)
    paras = "".join(
        "<p>" + " ".join(rng.choice(_WORDS) for _ in range(40)).capitalize()
        + f" (report {i}.{n}).</p>" for n in range(5))
    return (f"<html lang='en'><head><title>{title}</title></head><body><article>"
            f"<h1>{title}</h1>{paras}</article></body></html>").encode()


class GeneratedSite(LoopbackServer):
    """`count` articles (numbers from `first`: sites with other numbers have other
    texts) listed in /feed.xml, `delay` seconds per article answer; with `channels`,
    a Telegram stand-in too (DOZOR_TELEGRAM_URL=base): one page of one post each.
    `timeline` holds every request's (start, end, path), on the monotonic clock; while
    `gate` is cleared the feed's answer waits (every worker up before any has work), and
    while an event of `holds` is cleared, the answer to its path."""

    def __init__(self, count: int, delay: float = 0.0, first: int = 0,
                 channels: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.count = count
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()
        self.holds: dict[str, threading.Event] = {}
        self.channels = channels
        self.hits: Counter[str] = Counter()
        self.timeline: list[tuple[float, float, str]] = []
        self._lock = threading.Lock()
        now = datetime.now(UTC)
        numbers = range(first, first + count)
        items = "".join(f"<item><title>Story {i}</title><link>{self.base}/news/{i}.html</link>"
                        f"<pubDate>{format_datetime(now)}</pubDate></item>" for i in numbers)
        self.feed = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                     f"<title>site</title><link>{self.base}/</link>{items}</channel></rss>"
                     ).encode()
        self.pages = {f"/news/{i}.html": article_html(i) for i in numbers}
        for n, channel in enumerate(channels):
            post = DemoPost(1, now - timedelta(minutes=5),
                            html=f"Channel {channel} reports: {article_title(first + n)}")
            self.pages.update({path: html.encode() for path, html
                               in channel_pages(channel, channel, [post]).items()})

    def respond(self, path: str) -> Response:
        started = time.monotonic()
        try:
            return self._respond(path)
        finally:
            with self._lock:
                self.timeline.append((started, time.monotonic(), path))

    def _respond(self, path: str) -> Response:
        with self._lock:
            self.hits[path] += 1
        if path == "/feed.xml":
            self.gate.wait(60)
            return 200, {"Content-Type": "application/rss+xml"}, self.feed
        if path in self.holds:
            self.holds[path].wait(60)
        body = self.pages.get(path)
        if body is None:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        if self.delay and path.startswith("/news/"):
            time.sleep(self.delay)
        return 200, {"Content-Type": "text/html; charset=utf-8"}, body

    def article_hits(self) -> Counter[str]:
        with self._lock:
            return Counter({p: n for p, n in self.hits.items() if p.startswith("/news/")})

    def requests_to(self, prefix: str) -> list[tuple[float, float, str]]:
        """(start, end, path) of the requests for paths under `prefix`, by start."""
        with self._lock:
            return sorted(t for t in self.timeline if t[2].startswith(prefix))

    def sources(self) -> list[dict[str, object]]:
        return [{"name": "site", "lang": "en", "feeds": [f"{self.base}/feed.xml"]}]

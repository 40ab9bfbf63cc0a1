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
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from dozor.demo.loopback import LoopbackServer, Response

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


def article_html(i: int) -> bytes:
    """A distinct English article: its own title and paragraphs."""
    rng = random.Random(i)
    title = f"Story {i}: " + " ".join(rng.choice(_WORDS) for _ in range(6))
    paras = "".join(
        "<p>" + " ".join(rng.choice(_WORDS) for _ in range(40)).capitalize()
        + f" (report {i}.{n}).</p>" for n in range(5))
    return (f"<html lang='en'><head><title>{title}</title></head><body><article>"
            f"<h1>{title}</h1>{paras}</article></body></html>").encode()


class GeneratedSite(LoopbackServer):
    """`count` articles listed in /feed.xml; `delay` seconds per article answer."""

    def __init__(self, count: int, delay: float = 0.0) -> None:
        super().__init__()
        self.count = count
        self.delay = delay
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        when = format_datetime(datetime.now(UTC))
        items = "".join(f"<item><title>Story {i}</title><link>{self.base}/news/{i}.html</link>"
                        f"<pubDate>{when}</pubDate></item>" for i in range(count))
        self.feed = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                     f"<title>site</title><link>{self.base}/</link>{items}</channel></rss>"
                     ).encode()
        self.pages = {f"/news/{i}.html": article_html(i) for i in range(count)}

    def respond(self, path: str) -> Response:
        with self._lock:
            self.hits[path] += 1
        if path == "/feed.xml":
            return 200, {"Content-Type": "application/rss+xml"}, self.feed
        body = self.pages.get(path)
        if body is None:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        if self.delay:
            time.sleep(self.delay)
        return 200, {"Content-Type": "text/html; charset=utf-8"}, body

    def article_hits(self) -> Counter[str]:
        with self._lock:
            return Counter({p: n for p, n in self.hits.items() if p.startswith("/news/")})

    def sources(self) -> list[dict[str, object]]:
        return [{"name": "site", "lang": "en", "feeds": [f"{self.base}/feed.xml"]}]

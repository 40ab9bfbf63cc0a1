"""Telegram is one polite host: channel pages one at a time with the configured delay,
whatever channel they belong to, and a 429 waits for its Retry-After before asking again."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from dozor.demo.loopback import LoopbackServer, Response
from dozor.demo.telegram import DemoPost, channel_pages
from pipelines.store import open_store
from tests.support.cli import run_dozor

NOW = datetime.now(UTC).replace(microsecond=0)
HTML = {"Content-Type": "text/html; charset=utf-8"}


class TelegramStandIn(LoopbackServer):
    """Two channels; the first request for /s/busy_channel is refused with a 429."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: dict[str, str] = {}
        for name, text in (("busy_channel", "Суд над бывшим бойцом «Шторм Z»: приговор"),
                           ("calm_channel", "Their families say nobody warned them.")):
            posts = [DemoPost(7, NOW - timedelta(hours=1), html=text, views="10")]
            self.pages.update(channel_pages(name, name, posts))
        self.log: list[tuple[float, str, int]] = []
        self._lock = threading.Lock()

    def respond(self, path: str) -> Response:
        with self._lock:
            refused = path == "/s/busy_channel" and not any(p == path for _, p, _ in self.log)
            status = 429 if refused else 200 if path in self.pages else 404
            self.log.append((time.monotonic(), path, status))
        if status == 429:
            return 429, {**HTML, "Retry-After": "2"}, b"Too Many Requests"
        if status == 404:
            return 404, HTML, b"not found"
        return 200, HTML, self.pages[path].encode("utf-8")


def test_one_slot_with_a_delay_and_retry_after(tmp_path: Path) -> None:
    with TelegramStandIn() as server:
        sources = tmp_path / "sources.yaml"
        sources.write_text(yaml.safe_dump({"sources": [
            {"name": "channels", "telegram": ["busy_channel", "calm_channel"]}]}),
            encoding="utf-8")
        (tmp_path / "alerts.yaml").write_text("rules: []\n", encoding="utf-8")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DOZOR_") and k != "ELASTICSEARCH_URL"}
        env.update(DOZOR_DATA_DIR=str(tmp_path / "data"), DOZOR_ALLOWED_NETWORKS="127.0.0.1/32",
                   DOZOR_TELEGRAM_URL=server.base, DOZOR_OUTBOX=str(tmp_path / "outbox"))
        db = tmp_path / "dozor.db"
        run_dozor(["run", "--sources", str(sources), "--db", str(db), "--alerts",
                   str(tmp_path / "alerts.yaml")], env, timeout=120)
    pages = [(t, p, s) for t, p, s in server.log if p.startswith("/s/")]
    assert [(p, s) for _, p, s in pages if p == "/s/busy_channel"] == [
        ("/s/busy_channel", 429), ("/s/busy_channel", 200)]
    refused, retried = (t for t, p, _ in pages if p == "/s/busy_channel")
    assert retried - refused >= 1.9  # Retry-After: 2
    # the default crawl.telegram_delay (1 s) between any two channel pages
    times = sorted(t for t, _, _ in pages)
    assert all(b - a >= 0.9 for a, b in zip(times, times[1:], strict=False)), pages
    with open_store(db=db) as store:
        urls = {a.canonical_url for a in store.iter_articles()}
    assert urls == {"https://t.me/busy_channel/7", "https://t.me/calm_channel/7"}

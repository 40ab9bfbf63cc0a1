"""A database Dozor cannot write: read-only commands open it read-only (so read-only
media work) and errors name the real cause; a database found corrupt in the middle of
`dozor run` stops the run with that cause, not the advice to reprocess."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipelines.dedup import dedup
from pipelines.store import DatabaseUnusable, StoreError
from pipelines.store.sqlite import SQLiteStore
from tests.support.articles import corpus
from tests.support.cli import run_dozor
from tests.support.crawl_harness import TEST_CRAWL, write_sources
from tests.support.httpserver import NewsServer


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOZOR_", "ELASTIC"))}
    return {**env, "DOZOR_DATA_DIR": str(tmp_path / "data"), **extra}


@pytest.fixture
def read_only_db(tmp_path: Path) -> Iterator[Path]:
    """A Dozor database on a read-only bind mount (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to bind-mount a folder read-only")
    source, media = tmp_path / "disk", tmp_path / "media"
    source.mkdir()
    media.mkdir()
    with SQLiteStore(source / "news.db") as store:
        store.write(dedup(list(corpus().values()), store))
    subprocess.run(["mount", "--bind", str(source), str(media)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(media)], check=True)
        yield media / "news.db"
    finally:
        subprocess.run(["umount", str(media)], check=True)


def test_read_only_commands_work_on_read_only_media(read_only_db: Path,
                                                    tmp_path: Path) -> None:
    out = run_dozor(["search", "колонии", "--db", str(read_only_db), "--json"], _env(tmp_path))
    assert out.stdout.strip()
    exported = run_dozor(["export", "--json", "--db", str(read_only_db)], _env(tmp_path))
    assert len(exported.stdout.strip().splitlines()) == len(corpus())
    with SQLiteStore(read_only_db, read_only=True) as store:
        assert store.count() == len(corpus())


def test_writing_to_read_only_media_names_the_cause(read_only_db: Path) -> None:
    with pytest.raises(StoreError) as caught:
        SQLiteStore(read_only_db)
    assert "the file or its folder is read-only" in str(caught.value)
    assert "not a usable Dozor database" not in str(caught.value)


def test_a_corrupt_file_is_named_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    with SQLiteStore(path) as store:
        store.write(dedup(list(corpus().values()), store))
    _corrupt_articles_table(path)
    with pytest.raises(DatabaseUnusable, match="the file is corrupt"):
        with SQLiteStore(path, read_only=True) as store:
            list(store.iter_articles())


def _corrupt_articles_table(path: Path) -> None:
    """Overwrite the articles table's root page, after a committed change from another
    connection (so the writer's page cache is dropped)."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    page = db.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'articles'").fetchone()[0]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.execute("CREATE TABLE IF NOT EXISTS bump(x)")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    with open(path, "r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(b"\xff" * size)


class CorruptingServer(NewsServer):
    """Serves the site; the first request for `trigger` corrupts the database first."""

    def __init__(self, db: Path, trigger: str) -> None:
        super().__init__()
        self.db, self.trigger = db, trigger
        self.corrupted = threading.Event()

    def respond(self, path: str):  # type: ignore[override]
        if path == self.trigger and not self.corrupted.is_set():
            _corrupt_articles_table(self.db)
            self.corrupted.set()
        return super().respond(path)


def test_a_database_corrupted_mid_run_stops_the_run_with_the_cause(tmp_path: Path) -> None:
    db = tmp_path / "news.db"
    SQLiteStore(db).close()
    article = ("<html lang='en'><head><title>{0}</title></head><body><article><p>{0}. "
               + "The council met on Tuesday about the roads. " * 20 + "</p></article>"
               "</body></html>")
    with CorruptingServer(db, "/news/3.html") as server:
        server.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        links = []
        for i in range(1, 7):
            links.append(server.add(f"/news/{i}.html", article.format(f"Story {i}")))
        items = "".join(f"<item><link>{u}</link></item>" for u in links)
        server.add("/rss.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>T'
                   f"</title>{items}</channel></rss>", "application/rss+xml")
        sources = write_sources(tmp_path / "sources.yaml",
                                [{"name": "local", "feeds": [server.url("/rss.xml")]}])
        config = tmp_path / "dozor.yaml"
        config.write_text(yaml.safe_dump({"crawl": {**TEST_CRAWL, "batch_size": 1,
                                                    "concurrent_requests_per_domain": 1}}))
        out = run_dozor(["run", "--sources", str(sources), "--db", str(db)],
                        _env(tmp_path, DOZOR_CONFIG=str(config),
                             DOZOR_ALLOWED_NETWORKS="127.0.0.1/32"), expect=2)
    assert server.corrupted.is_set()
    assert "the file is corrupt" in out.stderr and "the run stopped" in out.stderr
    assert "reprocess" not in out.stdout + out.stderr.split("error:")[-1]
    assert "Traceback" not in out.stderr.split("error:")[-1]

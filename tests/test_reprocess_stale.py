"""`dozor reprocess --stale`: only the archived pages whose stored articles older code
made are run through the stages again; the rest are left as they are."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pipelines.process import DERIVED_VERSION
from pipelines.store import open_store
from pipelines.store.sqlite.schema import MIGRATIONS, statements
from tests.support.httpserver import NewsServer
from tests.test_archive import LOCAL, _dozor, _site


def _rows(db: Path) -> dict[str, tuple[str, str]]:
    store = open_store(db=db)
    try:
        return {a.url: (a.derived_version, a.terms) for a in store.iter_articles()}
    finally:
        store.close()


def test_reprocess_stale_rebuilds_only_what_older_code_made(news_server: NewsServer,
                                                             tmp_path: Path) -> None:
    sources = _site(news_server, tmp_path)
    db = tmp_path / "crawl.db"
    run = _dozor("run", "--sources", str(sources), "--db", str(db), tmp_path=tmp_path,
                 env=LOCAL)
    assert run.returncode == 0, run.stderr[-3000:]
    crawled = _rows(db)
    assert len(crawled) == 3 and {v for v, _ in crawled.values()} == {DERIVED_VERSION}

    stale_url, current_url, _ = sorted(crawled)
    with sqlite3.connect(db) as conn:  # what an older Dozor left: other terms, no version
        conn.execute("UPDATE articles SET derived_version = '', terms = 'old' WHERE url = ?",
                     (stale_url,))
        # made by this version: --stale must leave it alone, whatever it holds
        conn.execute("UPDATE articles SET terms = 'kept' WHERE url = ?", (current_url,))
    again = _dozor("reprocess", "--stale", "--sources", str(sources), "--db", str(db),
                   tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 archived pages from 1 WARC file(s)" in again.stdout
    assert f"2 pages left alone (made by this version: {DERIVED_VERSION})" in again.stdout
    after = _rows(db)
    assert after[stale_url] == crawled[stale_url]  # rebuilt: terms and version as crawled
    assert after[current_url] == (DERIVED_VERSION, "kept")


def test_a_database_from_before_the_version_field_reads_as_stale(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    raw = sqlite3.connect(db, isolation_level=None)  # the file as schema 8 left it
    for number in range(8):
        for statement in statements(MIGRATIONS[number]):
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 8")
    raw.close()
    open_store(db=db).close()  # migration 9 and the later ones
    with sqlite3.connect(db) as conn:
        columns = {row[1]: row[4] for row in conn.execute("PRAGMA table_info(articles)")}
    assert columns["derived_version"] == "''"

"""The crawl frontier: stored canonical URLs, the `seen` table and the `gone` URLs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from datetime import timedelta

from pipelines.article import utcnow
from pipelines.store.base import chunks, gone_retry
from pipelines.store.sqlite.codec import iso
from pipelines.store.sqlite.connection import CHUNK, SQLiteConnection, marks


class SQLiteFrontier(SQLiteConnection):
    """The Frontier role."""

    def seen(self, canonical_urls: Iterable[str]) -> set[str]:
        urls = list(dict.fromkeys(canonical_urls))
        found: set[str] = set()
        for chunk in chunks(urls, CHUNK):
            holes = marks(len(chunk))
            rows = self._query(
                f"SELECT canonical_url FROM articles WHERE canonical_url IN ({holes}) "
                f"UNION SELECT url FROM seen WHERE url IN ({holes}) "
                f"UNION SELECT url FROM gone WHERE url IN ({holes}) AND retry_at > ?",
                [*chunk, *chunk, *chunk, iso(utcnow())],
            )
            found.update(r[0] for r in rows)
        return found

    def mark_seen(self, canonical_urls: Iterable[str]) -> None:
        now = iso(utcnow())
        rows = [(url, now) for url in dict.fromkeys(canonical_urls)]
        if rows:
            self._transaction(
                "mark URLs seen",
                lambda db: db.executemany(
                    "INSERT OR IGNORE INTO seen(url, seen_at) VALUES (?, ?)", rows
                ),
            )

    def mark_gone(self, statuses: Mapping[str, int]) -> None:
        if not statuses:
            return
        now = utcnow()

        def work(db: sqlite3.Connection) -> None:
            for url, status in statuses.items():
                row = db.execute("SELECT attempts FROM gone WHERE url = ?",
                                       [url]).fetchone()
                attempts = (row[0] if row else 0) + 1
                retry = iso(now + timedelta(seconds=gone_retry(attempts)))
                db.execute("INSERT OR REPLACE INTO gone(url, status, attempts, retry_at) "
                                 "VALUES (?, ?, ?, ?)", [url, status, attempts, retry])

        self._transaction("record gone URLs", work)

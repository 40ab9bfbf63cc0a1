"""The crawl frontier: stored canonical URLs and the `seen` table."""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.article import utcnow
from pipelines.store.base import chunks
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
                f"UNION SELECT url FROM seen WHERE url IN ({holes})",
                [*chunk, *chunk],
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

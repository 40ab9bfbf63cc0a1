"""Articles stored and read: the ArticlesWriter and ArticlesReader roles (search aside)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime

from pipelines.article import Article, utcnow
from pipelines.store.base import StoreStats, WriteResult, check_statuses, chunks
from pipelines.store.sqlite.codec import (
    from_column,
    key_digest,
    row_to_article,
    title_terms,
    to_column,
)
from pipelines.store.sqlite.connection import CHUNK, SQLiteConnection, marks
from pipelines.store.sqlite.fulltext import index, unindex
from pipelines.store.sqlite.schema import COLUMNS


class SQLiteArticles(SQLiteConnection):
    """Rows of the articles table; every write is one transaction."""

    def write(self, articles: list[Article]) -> WriteResult:
        # the last version of an id in the batch wins, as it would in two writes
        batch = list({a.id: a for a in articles}.values())
        if not batch:
            return WriteResult()
        check_statuses(batch)
        titles = {a.id: title_terms(a) for a in batch}
        names = [*COLUMNS, "title_terms"]
        keep_first = {"id", "stored_at"}
        # a new row awaits the alert rules; an update leaves alert_state as it was
        sql = (
            f"INSERT INTO articles ({', '.join(names)}, alert_state) "
            f"VALUES ({marks(len(names))}, 'unmatched') "
            "ON CONFLICT(id) DO UPDATE SET "
            + ", ".join(f"{n} = excluded.{n}" for n in names if n not in keep_first)
        )

        def work(db: sqlite3.Connection) -> WriteResult:
            stored: dict[str, str] = {}
            old_keys: list[tuple[int, int]] = []  # (key, n) of the rows rewritten
            for ids in chunks([a.id for a in batch], CHUNK):
                rows = db.execute(
                    "SELECT id, n, stored_at, lsh_bands FROM articles "
                    f"WHERE id IN ({marks(len(ids))})", ids
                )
                for r in rows:
                    stored[r["id"]] = r["stored_at"]
                    old_keys.extend((key_digest(k), r["n"])
                                    for k in from_column("packed_json", r["lsh_bands"]))
            now = utcnow()
            result = WriteResult()
            for article in batch:
                if article.id in stored:
                    article.stored_at = datetime.fromisoformat(stored[article.id])
                    result.updated.append(article.id)
                else:
                    article.stored_at = now
                    result.new.append(article.id)
            unindex(db, result.updated)
            db.executemany(
                sql,
                (
                    [to_column(kind, getattr(a, name)) for name, kind in COLUMNS.items()]
                    + [titles[a.id]]
                    for a in batch
                ),
            )
            index(db, [a.id for a in batch])
            numbers: dict[str, int] = {}
            for ids in chunks([a.id for a in batch], CHUNK):
                rows = db.execute(
                    f"SELECT id, n FROM articles WHERE id IN ({marks(len(ids))})", ids
                )
                numbers.update((r["id"], r["n"]) for r in rows)
            db.executemany("DELETE FROM article_keys WHERE key = ? AND n = ?", old_keys)
            db.executemany(
                "INSERT OR IGNORE INTO article_keys(key, n) VALUES (?, ?)",
                ((key_digest(key), numbers[a.id]) for a in batch for key in a.lsh_bands),
            )
            return result

        return self._transaction("store articles", work)

    def get(self, article_id: str) -> Article | None:
        rows = self._query("SELECT * FROM articles WHERE id = ?", (article_id,))
        return row_to_article(rows[0]) if rows else None

    def iter_articles(self, ids: Iterable[str] | None = None) -> Iterator[Article]:
        """Articles in the order stored (or in the order of `ids`), read page by page so a
        long export neither holds the whole table in memory nor a lock while it writes."""
        if ids is not None:
            wanted = list(dict.fromkeys(ids))
            for chunk in chunks(wanted, CHUNK):
                rows = self._query(
                    f"SELECT * FROM articles WHERE id IN ({marks(len(chunk))})", chunk
                )
                found = {r["id"]: r for r in rows}
                yield from (row_to_article(found[i]) for i in chunk if i in found)
            return
        last = 0
        while True:
            rows = self._query(
                "SELECT * FROM articles WHERE n > ? ORDER BY n LIMIT ?", (last, CHUNK)
            )
            if not rows:
                return
            last = rows[-1]["n"]
            yield from (row_to_article(r) for r in rows)

    def count(self) -> int:
        return self._query("SELECT count(*) FROM articles")[0][0]

    def stats(self) -> StoreStats:
        # one pass over the articles_overview index, grouped by every field counted
        rows = self._query(
            "SELECT lang, source, translation_status, relevant, count(*) FROM articles "
            "GROUP BY 1, 2, 3, 4"
        )
        out = StoreStats()
        for lang, source, status, relevant, n in rows:
            out.total += n
            out.relevant += n if relevant else 0
            out.by_lang[lang] = out.by_lang.get(lang, 0) + n
            out.by_source[source] = out.by_source.get(source, 0) + n
            out.by_translation[status] = out.by_translation.get(status, 0) + n
        return out

    def cluster_members(self, cluster_id: str, limit: int = 50) -> list[Article]:
        rows = self._query(
            # dated first, by date, then undated by fetch time (an order Elasticsearch
            # can sort by too)
            "SELECT * FROM articles WHERE cluster_id = ? "
            "ORDER BY published_at IS NULL, published_at, fetched_at, id LIMIT ?",
            (cluster_id, limit),
        )
        return [row_to_article(r) for r in rows]

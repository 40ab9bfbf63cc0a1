"""The analysts' labels: one row per labelled article."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from pipelines.article import utcnow
from pipelines.store.base import chunks
from pipelines.store.sqlite.codec import iso
from pipelines.store.sqlite.connection import CHUNK, SQLiteConnection, marks


class SQLiteLabels(SQLiteConnection):
    """The Labels role."""

    def set_label(self, article_id: str, relevant: bool | None) -> None:
        def work(db: sqlite3.Connection) -> None:
            if relevant is None:
                db.execute("DELETE FROM labels WHERE article_id = ?", (article_id,))
            else:
                db.execute("INSERT INTO labels(article_id, relevant, labelled_at) "
                           "VALUES (?, ?, ?) ON CONFLICT(article_id) DO UPDATE SET "
                           "relevant = excluded.relevant, labelled_at = excluded.labelled_at",
                           (article_id, int(relevant), iso(utcnow())))

        self._transaction(f"label article {article_id}", work)

    def labels(self, ids: Iterable[str] | None = None) -> dict[str, bool]:
        if ids is None:
            rows = self._query("SELECT article_id, relevant FROM labels")
        else:
            rows = []
            for chunk in chunks(list(dict.fromkeys(ids)), CHUNK):
                rows += self._query("SELECT article_id, relevant FROM labels "
                                    f"WHERE article_id IN ({marks(len(chunk))})", chunk)
        return {r[0]: bool(r[1]) for r in rows}

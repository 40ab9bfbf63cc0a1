"""The translation queue: pending articles by id, translations written back."""

from __future__ import annotations

import sqlite3

from pipelines.article import Article
from pipelines.store.base import TRANSLATION_FIELDS, check_statuses
from pipelines.store.sqlite.codec import row_to_article, title_terms, to_column
from pipelines.store.sqlite.connection import SQLiteConnection
from pipelines.store.sqlite.fulltext import index, unindex
from pipelines.store.sqlite.schema import COLUMNS


class SQLiteTranslation(SQLiteConnection):
    """The TranslationQueue role."""

    def pending_translation(self, limit: int = 100, after_id: str = "") -> list[Article]:
        rows = self._query(
            "SELECT * FROM articles WHERE translation_status = 'pending' AND id > ? "
            "ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [row_to_article(r) for r in rows]

    def mark_translation(self, articles: list[Article]) -> None:
        check_statuses(articles, named_by="id")
        if not articles:
            return
        assignments = ", ".join(f"{c} = ?" for c in (*TRANSLATION_FIELDS, "title_terms"))
        rows = [
            [to_column(COLUMNS[c], getattr(a, c)) for c in TRANSLATION_FIELDS]
            + [title_terms(a), a.id]
            for a in articles
        ]
        ids = [a.id for a in articles]

        def work(db: sqlite3.Connection) -> None:
            unindex(db, ids)  # the terms change with the translation
            db.executemany(f"UPDATE articles SET {assignments} WHERE id = ?", rows)
            index(db, ids)

        self._transaction("record translations", work)

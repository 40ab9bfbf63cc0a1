"""The translation queue: pending articles by id, translations written back."""

from __future__ import annotations

from pipelines.article import Article
from pipelines.store.base import TRANSLATION_FIELDS, check_statuses
from pipelines.store.sqlite.codec import row_to_article, title_terms
from pipelines.store.sqlite.connection import SQLiteConnection


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
            [getattr(a, c) for c in TRANSLATION_FIELDS] + [title_terms(a), a.id]
            for a in articles
        ]
        self._transaction(
            "record translations",
            lambda db: db.executemany(f"UPDATE articles SET {assignments} WHERE id = ?", rows),
        )

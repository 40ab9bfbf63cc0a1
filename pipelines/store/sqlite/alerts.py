"""The alert inbox: articles marked unmatched by the write that stored them."""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.matching import AlertMatcher, PythonMatcher
from pipelines.store.sqlite.connection import SQLiteConnection


class SQLiteAlertInbox(SQLiteConnection):
    """The AlertInbox role; rules are evaluated in Python."""

    def unmatched_ids(self) -> list[str]:
        rows = self._query(
            "SELECT id FROM articles WHERE alert_state = 'unmatched' ORDER BY n"
        )
        return [r[0] for r in rows]

    def mark_matched(self, article_ids: Iterable[str]) -> None:
        rows = [(i,) for i in dict.fromkeys(article_ids)]
        if rows:
            self._transaction(
                "record articles as matched against the alert rules",
                lambda db: db.executemany(
                    "UPDATE articles SET alert_state = NULL WHERE id = ?", rows
                ),
            )

    def alert_matcher(self) -> AlertMatcher:
        return PythonMatcher()

"""The alert delivery log: one row per (rule, article)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pipelines.article import utcnow
from pipelines.store.base import OPEN_DELIVERY, STAGES, Delivery, StoreError, chunks
from pipelines.store.sqlite.codec import from_column, iso, row_to_delivery
from pipelines.store.sqlite.connection import CHUNK, SQLiteConnection, marks


class SQLiteDeliveryLog(SQLiteConnection):
    """The DeliveryLog role."""

    def add_deliveries(self, rule: str, article_ids: Iterable[str],
                       folded_into: Mapping[str, str] | None = None) -> list[str]:
        ids = list(dict.fromkeys(article_ids))
        folded = folded_into or {}
        now = iso(utcnow())

        def work(db: sqlite3.Connection) -> list[str]:
            added = []
            for article_id in ids:
                lead = folded.get(article_id)
                cursor = db.execute(
                    "INSERT INTO deliveries(rule, article_id, status, folded_into, created_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(rule, article_id) DO NOTHING",
                    (rule, article_id, "folded" if lead else "pending", lead, now),
                )
                if cursor.rowcount:
                    added.append(article_id)
            return added

        return self._transaction(f"record deliveries for rule {rule!r}", work)

    def cluster_deliveries(self, rule: str, cluster_ids: Iterable[str]) -> dict[str, str]:
        clusters = [c for c in dict.fromkeys(cluster_ids) if c]
        found: dict[str, str] = {}
        for chunk in chunks(clusters, CHUNK):
            # CROSS JOIN keeps this order: the few articles of these clusters, then their
            # deliveries by key, never all the deliveries of a rule
            rows = self._query(
                "SELECT a.cluster_id, d.article_id FROM articles AS a "
                "CROSS JOIN deliveries AS d ON d.rule = ? AND d.article_id = a.id "
                f"WHERE a.cluster_id IN ({marks(len(chunk))}) AND d.status != 'folded' "
                "ORDER BY d.created_at DESC, d.article_id DESC",
                [rule, *chunk],
            )
            # the earliest recorded wins: it comes last
            found.update((r[0], r[1]) for r in rows)
        return found

    def folded_deliveries(self, rule: str, article_ids: Iterable[str]) -> list[Delivery]:
        ids = list(dict.fromkeys(article_ids))
        rows: list[sqlite3.Row] = []
        for chunk in chunks(ids, CHUNK):
            # without statistics the planner would read all the rule's deliveries
            rows += self._query(
                "SELECT * FROM deliveries INDEXED BY deliveries_folded WHERE rule = ? "
                f"AND folded_into IN ({marks(len(chunk))})",
                [rule, *chunk],
            )
        rows.sort(key=lambda r: (r["created_at"], r["article_id"]))
        return [row_to_delivery(r) for r in rows]

    def sent_deliveries(self, rule: str, article_ids: Iterable[str]) -> list[Delivery]:
        ids = list(dict.fromkeys(article_ids))
        rows: list[sqlite3.Row] = []
        for chunk in chunks(ids, CHUNK):
            rows += self._query(
                "SELECT * FROM deliveries WHERE rule = ? AND status = 'sent' "
                f"AND article_id IN ({marks(len(chunk))})",
                [rule, *chunk],
            )
        rows.sort(key=lambda r: (r["sent_at"] or "", r["article_id"]))
        return [row_to_delivery(r) for r in rows]

    def pending_deliveries(self, rule: str | None = None) -> list[Delivery]:
        # the open deliveries are few; all of a rule's, its whole history
        sql = ("SELECT * FROM deliveries INDEXED BY deliveries_open "
               "WHERE status IN ('pending', 'sending')")
        params: list[str] = []
        if rule is not None:
            sql += " AND rule = ?"
            params.append(rule)
        rows = self._query(sql + " ORDER BY created_at, rule, article_id", params)
        return [row_to_delivery(r) for r in rows]

    def last_sent(self, rule: str) -> datetime | None:
        rows = self._query("SELECT MAX(sent_at) FROM deliveries WHERE rule = ? "
                           "AND status = 'sent'", [rule])
        return from_column("datetime", rows[0][0]) if rows else None

    def _update_deliveries(
        self, action: str, rule: str, article_ids: Iterable[str], assignments: str,
        params: Sequence[Any], statuses: Sequence[str] = OPEN_DELIVERY,
    ) -> None:
        # a delivery that was sent stays sent: that is the at-most-once guarantee; and a
        # folded one is never sent on its own
        sql = (
            f"UPDATE deliveries SET {assignments} "
            f"WHERE rule = ? AND article_id = ? AND status IN ({marks(len(statuses))})"
        )
        rows = [(*params, rule, i, *statuses) for i in dict.fromkeys(article_ids)]
        if rows:
            self._transaction(action, lambda db: db.executemany(sql, rows))

    def mark_sending(self, rule: str, article_ids: Iterable[str], message_id: str) -> None:
        self._update_deliveries(
            "record a digest being sent", rule, article_ids,
            "status = 'sending', message_id = ?, stage = 'connecting'", (message_id,),
        )

    def mark_stage(self, rule: str, article_ids: Iterable[str], stage: str) -> None:
        if stage not in STAGES:
            raise StoreError(f"unknown delivery stage {stage!r}")
        self._update_deliveries(
            f"record a digest's hand-over reaching {stage}", rule, article_ids,
            "stage = ?", (stage,), statuses=("sending",),
        )

    def mark_delivered(self, rule: str, article_ids: Iterable[str]) -> None:
        self._update_deliveries(
            "record deliveries as sent", rule, article_ids,
            "status = 'sent', sent_at = ?, last_error = NULL, stage = 'acknowledged'",
            (iso(utcnow()),),
        )

    def mark_delivery_failed(self, rule: str, article_ids: Iterable[str], error: str,
                             outcome_unknown: bool = False) -> None:
        self._update_deliveries(
            "record a failed delivery", rule, article_ids,
            "status = 'pending', attempts = attempts + 1, last_error = ?, "
            "possible_repeat = possible_repeat OR ?", (error, outcome_unknown),
        )

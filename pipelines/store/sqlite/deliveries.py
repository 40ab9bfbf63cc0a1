"""The alert delivery log: one row per (rule, article)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pipelines.article import utcnow
from pipelines.store.base import (
    OPEN_DELIVERY,
    STAGES,
    Delivery,
    OneRuleDeliveries,
    StoreError,
    chunks,
)
from pipelines.store.sqlite.codec import from_column, iso, row_to_delivery
from pipelines.store.sqlite.connection import CHUNK, SQLiteConnection, marks


class SQLiteDeliveryLog(OneRuleDeliveries, SQLiteConnection):
    """The DeliveryLog role."""

    def add_many_deliveries(self, article_ids: Mapping[str, Sequence[str]],
                            folded_into: Mapping[str, Mapping[str, str]] | None = None,
                            ) -> dict[str, list[str]]:
        batch = {rule: list(dict.fromkeys(ids)) for rule, ids in article_ids.items()}
        folded = folded_into or {}
        pairs = [(rule, i) for rule, ids in batch.items() for i in ids]
        now = iso(utcnow())

        def insert(db: sqlite3.Connection, new: Iterable[tuple[str, str]]) -> None:
            # one statement for the whole batch
            db.executemany(
                "INSERT INTO deliveries(rule, article_id, status, folded_into, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(rule, i, "folded" if lead else "pending", lead, now)
                 for rule, i in new for lead in [folded.get(rule, {}).get(i)]])

        def unseen(db: sqlite3.Connection) -> dict[str, list[str]]:
            # the matches of articles no rule has seen yet, as most batches are: the
            # primary key refuses a pair already logged, and the batch is written again
            try:
                insert(db, pairs)
            except sqlite3.IntegrityError as exc:
                if getattr(exc, "sqlite_errorname", "") == "SQLITE_CONSTRAINT_PRIMARYKEY":
                    raise _AlreadyLogged from exc
                raise
            return batch

        def some_seen(db: sqlite3.Connection) -> dict[str, list[str]]:
            logged: set[tuple[str, str]] = set()
            for chunk in chunks(pairs, CHUNK):
                logged.update((r[0], r[1]) for r in db.execute(
                    f"WITH wanted(rule, article_id) AS (VALUES {_pair_marks(len(chunk))}) "
                    "SELECT d.rule, d.article_id FROM wanted AS w CROSS JOIN deliveries AS d "
                    "ON d.rule = w.rule AND d.article_id = w.article_id",
                    [v for pair in chunk for v in pair]))
            new = [(rule, i) for rule, i in pairs if (rule, i) not in logged]
            # in the transaction that read `logged`
            insert(db, new)
            added: dict[str, list[str]] = {rule: [] for rule in batch}
            for rule, i in new:
                added[rule].append(i)
            return added

        what = (f"rule {next(iter(batch))!r}" if len(batch) == 1 else f"{len(batch)} rules")
        try:
            return self._transaction(f"record deliveries for {what}", unseen)
        except _AlreadyLogged:  # rolled back: nothing of that attempt stays
            return self._transaction(f"record deliveries for {what}", some_seen)

    def many_cluster_deliveries(self, cluster_ids: Mapping[str, Iterable[str]],
                                ) -> dict[str, dict[str, str]]:
        wanted = {rule: [c for c in dict.fromkeys(clusters) if c]
                  for rule, clusters in cluster_ids.items()}
        # the clusters' articles once for every rule, then their deliveries by key: a
        # batch names each cluster for many rules
        cluster_of: dict[str, str] = {}
        members: dict[str, list[str]] = {}
        every = list(dict.fromkeys(c for clusters in wanted.values() for c in clusters))
        for chunk in chunks(every, CHUNK):
            for cluster, article_id in self._query(
                    f"SELECT cluster_id, id FROM articles WHERE cluster_id IN "
                    f"({marks(len(chunk))})", chunk):
                cluster_of[article_id] = cluster
                members.setdefault(cluster, []).append(article_id)
        pairs = [(rule, i) for rule, clusters in wanted.items() for c in clusters
                 for i in members.get(c, ())]
        earliest: dict[tuple[str, str], tuple[str, str]] = {}  # (created_at, article id)
        for chunk in chunks(pairs, CHUNK):
            for rule, article_id, created in self._query(
                f"WITH wanted(rule, article_id) AS (VALUES {_pair_marks(len(chunk))}) "
                "SELECT d.rule, d.article_id, d.created_at FROM wanted AS w "
                "CROSS JOIN deliveries AS d ON d.rule = w.rule AND d.article_id = w.article_id "
                "WHERE d.status != 'folded'",
                [v for pair in chunk for v in pair],
            ):
                # the earliest recorded carries the story
                key, seen = (rule, cluster_of[article_id]), (created, article_id)
                if key not in earliest or seen < earliest[key]:
                    earliest[key] = seen
        found: dict[str, dict[str, str]] = {rule: {} for rule in cluster_ids}
        for (rule, cluster), (_, article_id) in earliest.items():
            found[rule][cluster] = article_id
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


class _AlreadyLogged(Exception):
    """A pair of the batch is in the delivery log already."""


def _pair_marks(n: int) -> str:
    return ",".join(["(?, ?)"] * n)

"""Source health records and the timings of stored and delivered articles."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from pipelines.health import DeliveryTiming, HealthRecord
from pipelines.store.sqlite.codec import from_column, iso
from pipelines.store.sqlite.connection import SQLiteConnection


class SQLiteHealth(SQLiteConnection):
    """The SourceHealth role."""

    def health_records(self) -> list[HealthRecord]:
        rows = self._query("SELECT record FROM source_health ORDER BY source, url")
        return [HealthRecord.from_dict(json.loads(r[0])) for r in rows]

    def put_health(self, records: Iterable[HealthRecord]) -> None:
        rows = [(r.source, r.url, r.state, json.dumps(r.to_dict(), ensure_ascii=False))
                for r in records]
        if rows:
            self._transaction("record source health", lambda db: db.executemany(
                "INSERT OR REPLACE INTO source_health(source, url, state, record) "
                "VALUES (?, ?, ?, ?)", rows))

    def delivery_timings(self, since: datetime) -> list[DeliveryTiming]:
        rows = self._query(
            "SELECT a.source, a.published_at, coalesce(a.first_seen_at, a.fetched_at), "
            "a.stored_at, d.rule, d.sent_at "
            "FROM articles AS a LEFT JOIN deliveries AS d "
            "ON d.article_id = a.id AND d.status = 'sent' WHERE a.stored_at >= ?",
            [iso(since)])
        return [DeliveryTiming(r[0], from_column("datetime", r[1]),
                               from_column("datetime", r[2]), from_column("datetime", r[3]),
                               r[4], from_column("datetime", r[5])) for r in rows]

"""Revisits, versions and events of articles: the History role on SQLite."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pipelines.article import Article
from pipelines.store.history import Event, RevisitTarget, Version
from pipelines.store.sqlite.codec import from_column, iso, title_terms, to_column
from pipelines.store.sqlite.connection import SQLiteConnection
from pipelines.store.sqlite.fulltext import index, unindex
from pipelines.store.sqlite.schema import COLUMNS

# the columns a revisit may change; identity, first storage and dedup stay
_KEEP = ("id", "stored_at", "cluster_id", "content_hash", "lsh_bands", "minhash")
_UPDATED = [n for n in COLUMNS if n not in _KEEP]


def _version(row: sqlite3.Row) -> Version:
    return Version(row["article_id"], row["version"], from_column("datetime", row["fetched_at"]),
                   row["title"], row["text"], from_column("datetime", row["published_at"]),
                   row["warc_file"], row["warc_record_id"], json.loads(row["changed"]))


def _event(row: sqlite3.Row) -> Event:
    return Event(row["article_id"], row["kind"], from_column("datetime", row["at"]),
                 row["version"], json.loads(row["detail"]), row["n"])


class SQLiteHistory(SQLiteConnection):
    def revisit_targets(self, now: datetime, delays: Sequence[int], source: str | None = None,
                        everything: bool = False) -> list[RevisitTarget]:
        """Articles due (or, `everything`, every stored article, its schedule done or
        not), the never-revisited ones due `delays[0]` after their first fetch."""
        sql = ("SELECT a.id, a.url, a.canonical_url, a.source, a.fetched_at, a.stored_at, "
               "a.channel, a.post_id, r.step, r.due_at, r.etag, r.last_modified "
               "FROM articles AS a LEFT JOIN revisits AS r ON r.article_id = a.id WHERE 1")
        params: list[object] = []
        if source is not None:
            sql += " AND a.source = ?"
            params.append(source)
        if not everything:
            if not delays:
                return []
            # first revisits: fetched at least delays[0] ago; later ones: their due time
            sql += (" AND ((r.article_id IS NULL AND a.fetched_at <= ?) OR r.due_at <= ?)")
            params += [iso(now - timedelta(seconds=delays[0])), iso(now)]
        out = []
        for row in self._query(sql + " ORDER BY a.n", params):
            out.append(RevisitTarget(
                article_id=row["id"], url=row["url"] or row["canonical_url"],
                source=row["source"],
                first_seen=from_column("datetime", row["fetched_at"]),
                step=row["step"] or 0, etag=row["etag"] or "",
                last_modified=row["last_modified"] or "",
                channel=row["channel"], post_id=row["post_id"]))
        return out

    def record_revisit(self, article_id: str, step: int, due_at: datetime | None, etag: str,
                       last_modified: str, checked_at: datetime) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO revisits(article_id, step, due_at, etag, last_modified, checked_at) "
                "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM articles WHERE id = ?) "
                "ON CONFLICT(article_id) DO UPDATE SET step = excluded.step, "
                "due_at = excluded.due_at, etag = excluded.etag, "
                "last_modified = excluded.last_modified, checked_at = excluded.checked_at",
                (article_id, step, iso(due_at), etag, last_modified, iso(checked_at),
                 article_id))

        self._transaction("record a revisit", work)

    def record_change(self, article: Article, versions: list[Version],
                      events: list[Event]) -> None:
        """The article's new current state, its new versions and events, at once; every
        event awaits the alert rules."""

        def work(db: sqlite3.Connection) -> None:
            unindex(db, [article.id])  # its terms change with it
            db.execute(
                f"UPDATE articles SET {', '.join(f'{n} = ?' for n in _UPDATED)}, "
                "title_terms = ? WHERE id = ?",
                [to_column(COLUMNS[n], getattr(article, n)) for n in _UPDATED]
                + [title_terms(article), article.id])
            index(db, [article.id])
            db.executemany(
                "INSERT OR IGNORE INTO versions(article_id, version, fetched_at, title, text, "
                "published_at, warc_file, warc_record_id, changed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(v.article_id, v.version, iso(v.fetched_at), v.title, v.text,
                  iso(v.published_at), v.warc_file, v.warc_record_id, json.dumps(v.changed))
                 for v in versions])
            db.executemany(
                "INSERT INTO events(article_id, kind, at, version, detail, alert_state) "
                "VALUES (?, ?, ?, ?, ?, 'unmatched')",
                [(e.article_id, e.kind, iso(e.at), e.version,
                  json.dumps(e.detail, ensure_ascii=False)) for e in events])

        self._transaction("record an article's change", work)

    def versions(self, article_id: str) -> list[Version]:
        rows = self._query("SELECT * FROM versions WHERE article_id = ? ORDER BY version",
                           (article_id,))
        return [_version(r) for r in rows]

    def events(self, article_id: str) -> list[Event]:
        rows = self._query("SELECT * FROM events WHERE article_id = ? ORDER BY n", (article_id,))
        return [_event(r) for r in rows]

    # --- the events' alerts ------------------------------------------------------------

    def unmatched_events(self) -> list[Event]:
        rows = self._query("SELECT * FROM events WHERE alert_state = 'unmatched' ORDER BY n")
        return [_event(r) for r in rows]

    def queue_event(self, event_n: int, article_id: str, rules: Iterable[str]) -> list[str]:
        """Queue the event's article to each rule that matched the event, and clear the
        event's mark, in one transaction: the rules whose delivery it queued. A delivery
        the rule already sent (or folded into another story) is pending again, since an
        event is news of its own; one still pending carries this event too."""

        def work(db: sqlite3.Connection) -> list[str]:
            queued = []
            now = iso(datetime.now().astimezone())
            for rule in rules:
                added = db.execute(
                    "INSERT OR IGNORE INTO deliveries(rule, article_id, status, created_at) "
                    "VALUES (?, ?, 'pending', ?)", (rule, article_id, now)).rowcount
                rearmed = db.execute(
                    "UPDATE deliveries SET status = 'pending', attempts = 0, last_error = NULL, "
                    "message_id = NULL, sent_at = NULL, folded_into = NULL, created_at = ? "
                    "WHERE rule = ? AND article_id = ? AND status IN ('sent', 'folded')",
                    (now, rule, article_id)).rowcount
                if added or rearmed:
                    queued.append(rule)
            db.execute("UPDATE events SET alert_state = NULL WHERE n = ?", (event_n,))
            return queued

        return self._transaction("queue an event's alerts", work)

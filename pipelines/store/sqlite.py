"""The embedded default backend: one SQLite file with an FTS5 index.

WAL lets the crawler write while a search or the UI reads; every `write()` is one
transaction. The schema carries a version (PRAGMA user_version) and is brought up to
date by the ordered migrations below each time a file is opened.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.article import TRANSLATION_STATUSES, Article, utcnow
from pipelines.query import parse_query
from pipelines.store.base import (
    Delivery,
    DupCandidate,
    SearchHit,
    StoreError,
    StoreStats,
    WriteResult,
)
from pipelines.terms.normalisation import normalise
from pipelines.terms.snippets import article_snippet

# Marks the file as Dozor's (PRAGMA application_id), so another program's database is
# refused instead of being "migrated".
APPLICATION_ID = 0x447A6F72  # "Dzor"

BUSY_TIMEOUT_MS = 10_000
# Well under SQLite's limit on bound parameters per statement.
CHUNK = 500

# bm25 weights, in the FTS column order below: a hit in a title counts more than one in
# the body. `title_terms` holds the normalised terms of both titles, so that queries
# (which match normalised terms) can weigh titles too.
FTS_COLUMNS = ("title", "text", "title_en", "text_en", "terms", "title_terms")
BM25_WEIGHTS = (4.0, 1.0, 4.0, 1.0, 1.0, 4.0)
# queries match normalised terms (pipelines.query), so candidates come from these
_TERM_COLUMNS = "{terms title_terms}"

# Article field -> how it is kept in a column.
COLUMNS: dict[str, str] = {
    "id": "text",
    "url": "text",
    "canonical_url": "text",
    "source": "text",
    "fetched_at": "datetime",
    "final_url": "text",
    "discovered_via": "text",
    "status": "int",
    "title": "text",
    "text": "text",
    "authors": "json",
    "description": "text",
    "site_name": "text",
    "html_lang": "text",
    "lang_hint": "text",
    "published_at": "datetime",
    "published_from": "text",
    "lang": "text",
    "lang_confidence": "real",
    "terms": "text",
    "relevant": "bool",
    "score": "real",
    "matched_terms": "json",
    "title_en": "text",
    "text_en": "text",
    "translation_status": "text",
    "translation_engine": "text",
    "translation_model": "text",
    "content_hash": "text",
    "cluster_id": "text",
    "lsh_bands": "json",
    "warc_file": "text",
    "warc_record_id": "text",
    "stored_at": "datetime",
    "minhash": "minhash",
}
TRANSLATION_COLUMNS = (
    "title_en",
    "text_en",
    "translation_status",
    "translation_engine",
    "translation_model",
    "terms",
)
DELIVERY_STATUSES = ("pending", "sending", "sent", "folded")

_FTS_SYNC = f"""
CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts(rowid, {", ".join(FTS_COLUMNS)})
    VALUES (new.n, {", ".join("new." + c for c in FTS_COLUMNS)});
END;
CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts(articles_fts, rowid, {", ".join(FTS_COLUMNS)})
    VALUES ('delete', old.n, {", ".join("old." + c for c in FTS_COLUMNS)});
END;
CREATE TRIGGER articles_fts_update AFTER UPDATE OF {", ".join(FTS_COLUMNS)} ON articles BEGIN
    INSERT INTO articles_fts(articles_fts, rowid, {", ".join(FTS_COLUMNS)})
    VALUES ('delete', old.n, {", ".join("old." + c for c in FTS_COLUMNS)});
    INSERT INTO articles_fts(rowid, {", ".join(FTS_COLUMNS)})
    VALUES (new.n, {", ".join("new." + c for c in FTS_COLUMNS)});
END;
"""

# Schema history. Entry i takes a file from version i to version i + 1; a file is
# brought up to date by applying, in order, every entry past its user_version.
MIGRATIONS: tuple[str, ...] = (
    # 1: articles, full-text index, crawl frontier.
    # `n` aliases the rowid: the external-content FTS index refers to rows by rowid, and
    # only an INTEGER PRIMARY KEY rowid is guaranteed to survive VACUUM. `id` (sha1 of
    # the canonical URL) is the document's identity on every backend.
    f"""
    PRAGMA application_id = {APPLICATION_ID};
    CREATE TABLE articles (
        n INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        canonical_url TEXT NOT NULL,
        source TEXT NOT NULL,
        fetched_at TEXT NOT NULL,
        final_url TEXT NOT NULL DEFAULT '',
        discovered_via TEXT NOT NULL DEFAULT '',
        status INTEGER NOT NULL DEFAULT 200,
        title TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL DEFAULT '',
        authors TEXT NOT NULL DEFAULT '[]',
        description TEXT NOT NULL DEFAULT '',
        site_name TEXT NOT NULL DEFAULT '',
        html_lang TEXT,
        lang_hint TEXT,
        published_at TEXT,
        published_from TEXT,
        lang TEXT NOT NULL DEFAULT 'other',
        lang_confidence REAL NOT NULL DEFAULT 0,
        terms TEXT NOT NULL DEFAULT '',
        title_terms TEXT NOT NULL DEFAULT '',
        relevant INTEGER NOT NULL DEFAULT 0,
        score REAL NOT NULL DEFAULT 0,
        matched_terms TEXT NOT NULL DEFAULT '[]',
        title_en TEXT,
        text_en TEXT,
        translation_status TEXT NOT NULL DEFAULT 'skipped'
            CHECK (translation_status IN ({", ".join(repr(s) for s in TRANSLATION_STATUSES)})),
        translation_engine TEXT,
        translation_model TEXT,
        content_hash TEXT NOT NULL DEFAULT '',
        cluster_id TEXT NOT NULL DEFAULT '',
        lsh_bands TEXT NOT NULL DEFAULT '[]',
        warc_file TEXT,
        warc_record_id TEXT,
        stored_at TEXT NOT NULL
    );
    CREATE INDEX articles_canonical_url ON articles(canonical_url);
    CREATE INDEX articles_cluster ON articles(cluster_id);
    CREATE INDEX articles_translation ON articles(translation_status, id);
    -- search filters and orders by these without reading the rows (and their texts)
    CREATE INDEX articles_lang ON articles(lang);
    CREATE INDEX articles_recent ON articles(coalesce(published_at, fetched_at));
    CREATE VIRTUAL TABLE articles_fts USING fts5(
        {", ".join(FTS_COLUMNS)},
        content='articles', content_rowid='n',
        tokenize='unicode61 remove_diacritics 0'
    );
    {_FTS_SYNC}
    CREATE TABLE seen (
        url TEXT PRIMARY KEY,
        seen_at TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 2: near-duplicate lookup. Band keys move from the JSON column into a side table
    # indexed by key, and the MinHash signature is kept to verify candidates.
    """
    ALTER TABLE articles ADD COLUMN minhash BLOB;
    CREATE INDEX articles_content_hash ON articles(content_hash);
    CREATE TABLE article_bands (
        band TEXT NOT NULL,
        article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
        PRIMARY KEY (band, article_id)
    ) WITHOUT ROWID;
    CREATE INDEX article_bands_article ON article_bands(article_id);
    INSERT OR IGNORE INTO article_bands(band, article_id)
        SELECT j.value, a.id FROM articles AS a, json_each(a.lsh_bands) AS j;
    """,
    # 3: alert delivery log: one row per (rule, article), so a story is queued once.
    """
    CREATE TABLE deliveries (
        rule TEXT NOT NULL,
        article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'sending', 'sent')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        message_id TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        PRIMARY KEY (rule, article_id)
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_open ON deliveries(status, created_at) WHERE status != 'sent';
    """,
    # 4: the overview's counts (stats) read this index instead of the rows and their texts
    """
    CREATE INDEX articles_overview ON articles(lang, source, translation_status, relevant);
    """,
    # 5: articles awaiting the alert rules, marked by the write that first stores them.
    # Rows already there stay unmarked: their run's alert step saw them, and an upgrade
    # must not mail every stored story again.
    """
    ALTER TABLE articles ADD COLUMN alert_state TEXT CHECK (alert_state IN ('unmatched'));
    CREATE INDEX articles_unmatched ON articles(n) WHERE alert_state = 'unmatched';
    """,
    # 6: a syndicated copy of a story a rule already has is logged "folded" into the
    # article carrying that story. SQLite cannot widen a CHECK in place: the table is
    # rebuilt, every delivery kept as it was.
    f"""
    CREATE TABLE deliveries_v6 (
        rule TEXT NOT NULL,
        article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ({", ".join(repr(s) for s in DELIVERY_STATUSES)})),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        message_id TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        folded_into TEXT,
        PRIMARY KEY (rule, article_id),
        CHECK ((status = 'folded') = (folded_into IS NOT NULL))
    ) WITHOUT ROWID;
    INSERT INTO deliveries_v6(rule, article_id, status, attempts, last_error, message_id,
                              created_at, sent_at)
        SELECT rule, article_id, status, attempts, last_error, message_id, created_at, sent_at
        FROM deliveries;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_v6 RENAME TO deliveries;
    CREATE INDEX deliveries_open ON deliveries(status, created_at)
        WHERE status IN ('pending', 'sending');
    CREATE INDEX deliveries_folded ON deliveries(rule, folded_into)
        WHERE folded_into IS NOT NULL;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    # one spelling (UTC) so that dates compare correctly as strings
    return (value.astimezone(UTC) if value.tzinfo else value).isoformat()


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _encode_minhash(values: list[int]) -> bytes | None:
    return np.asarray(values, dtype="<u4").tobytes() if values else None


def _decode_minhash(blob: bytes | None) -> list[int]:
    return np.frombuffer(blob, dtype="<u4").tolist() if blob else []


def _to_column(kind: str, value: Any) -> Any:
    if kind == "json":
        return json.dumps(value, ensure_ascii=False)
    if kind == "datetime":
        return _iso(value)
    if kind == "bool":
        return int(bool(value))
    if kind == "minhash":
        return _encode_minhash(value)
    return value


def _from_column(kind: str, value: Any) -> Any:
    if kind == "json":
        return json.loads(value)
    if kind == "datetime":
        return datetime.fromisoformat(value) if value else None
    if kind == "bool":
        return bool(value)
    if kind == "minhash":
        return _decode_minhash(value)
    return value


def _row_to_article(row: sqlite3.Row) -> Article:
    return Article(**{name: _from_column(kind, row[name]) for name, kind in COLUMNS.items()})


def _row_to_delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        rule=row["rule"],
        article_id=row["article_id"],
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        created_at=_from_column("datetime", row["created_at"]),
        sent_at=_from_column("datetime", row["sent_at"]),
        message_id=row["message_id"],
        folded_into=row["folded_into"],
    )


def _title_terms(article: Article) -> str:
    """Normalised terms of the original and English titles, for title-weighted ranking."""
    parts = normalise(article.title, article.lang) if article.title else []
    if article.title_en:
        parts += normalise(article.title_en, "en")
    return " ".join(parts)


class SQLiteStore:
    """A Dozor database file; see `pipelines.store.base.Store` for the contract."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # transactions are explicit: one per call
                check_same_thread=False,  # the lock below serialises callers
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        try:
            self._configure()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{self.path}: not a usable Dozor database ({exc})") from exc
        except StoreError:
            self._db.close()
            raise

    # ------------------------------------------------------------------ set-up

    def _configure(self) -> None:
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        # with WAL, NORMAL loses no committed transaction on an application crash
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")

    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        if self.schema_version() == SCHEMA_VERSION:
            return
        # IMMEDIATE: two processes opening a fresh file do not both migrate it
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self.schema_version()
            app_id = self._db.execute("PRAGMA application_id").fetchone()[0]
            if version and app_id != APPLICATION_ID:
                raise StoreError(f"{self.path} is a SQLite database of another program")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this Dozor "
                    f"understands ({SCHEMA_VERSION}); upgrade Dozor to open it"
                )
            if version == 0 and self._db.execute(
                "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'"
            ).fetchone()[0]:
                raise StoreError(f"{self.path} is a SQLite database of another program")
            for number in range(version, SCHEMA_VERSION):
                for statement in _statements(MIGRATIONS[number]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number + 1}")
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transactions

    def _transaction(self, action: str, work: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot {action} in {self.path}: {exc}") from exc
            try:
                result = work(self._db)
                self._db.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(f"cannot {action} in {self.path}: {exc}") from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        # SQLite has already rolled back after some errors (a full disk, an I/O error)
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read {self.path}: {exc}") from exc

    # ----------------------------------------------------------------- articles

    def write(self, articles: list[Article]) -> WriteResult:
        # the last version of an id in the batch wins, as it would in two writes
        batch = list({a.id: a for a in articles}.values())
        if not batch:
            return WriteResult()
        for article in batch:
            if article.translation_status not in TRANSLATION_STATUSES:
                raise StoreError(
                    f"article {article.canonical_url}: translation_status "
                    f"{article.translation_status!r} is not one of {TRANSLATION_STATUSES}"
                )
        title_terms = {a.id: _title_terms(a) for a in batch}
        names = [*COLUMNS, "title_terms"]
        keep_first = {"id", "stored_at"}
        # a new row awaits the alert rules; an update leaves alert_state as it was
        sql = (
            f"INSERT INTO articles ({', '.join(names)}, alert_state) "
            f"VALUES ({_marks(len(names))}, 'unmatched') "
            "ON CONFLICT(id) DO UPDATE SET "
            + ", ".join(f"{n} = excluded.{n}" for n in names if n not in keep_first)
        )

        def work(db: sqlite3.Connection) -> WriteResult:
            stored: dict[str, str] = {}
            for ids in _chunks([a.id for a in batch]):
                rows = db.execute(
                    f"SELECT id, stored_at FROM articles WHERE id IN ({_marks(len(ids))})", ids
                )
                stored.update((r["id"], r["stored_at"]) for r in rows)
            now = utcnow()
            result = WriteResult()
            for article in batch:
                if article.id in stored:
                    article.stored_at = datetime.fromisoformat(stored[article.id])
                    result.updated.append(article.id)
                else:
                    article.stored_at = now
                    result.new.append(article.id)
            db.executemany(
                sql,
                (
                    [_to_column(kind, getattr(a, name)) for name, kind in COLUMNS.items()]
                    + [title_terms[a.id]]
                    for a in batch
                ),
            )
            db.executemany(
                "DELETE FROM article_bands WHERE article_id = ?", ((i,) for i in result.updated)
            )
            db.executemany(
                "INSERT OR IGNORE INTO article_bands(band, article_id) VALUES (?, ?)",
                ((band, a.id) for a in batch for band in a.lsh_bands),
            )
            return result

        return self._transaction("store articles", work)

    def get(self, article_id: str) -> Article | None:
        rows = self._query("SELECT * FROM articles WHERE id = ?", (article_id,))
        return _row_to_article(rows[0]) if rows else None

    def iter_articles(self, ids: Iterable[str] | None = None) -> Iterator[Article]:
        """Articles in the order stored (or in the order of `ids`), read page by page so a
        long export neither holds the whole table in memory nor a lock while it writes."""
        if ids is not None:
            wanted = list(dict.fromkeys(ids))
            for chunk in _chunks(wanted):
                rows = self._query(
                    f"SELECT * FROM articles WHERE id IN ({_marks(len(chunk))})", chunk
                )
                found = {r["id"]: r for r in rows}
                yield from (_row_to_article(found[i]) for i in chunk if i in found)
            return
        last = 0
        while True:
            rows = self._query(
                "SELECT * FROM articles WHERE n > ? ORDER BY n LIMIT ?", (last, CHUNK)
            )
            if not rows:
                return
            last = rows[-1]["n"]
            yield from (_row_to_article(r) for r in rows)

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
        return [_row_to_article(r) for r in rows]

    # ------------------------------------------------------------------- search

    def search(self, query: str, lang: str | None = None, limit: int = 20,
               offset: int = 0) -> list[SearchHit]:
        """Best `limit` articles matching `query` (Lucene syntax over normalised terms),
        after the best `offset`.

        FTS5 selects a superset of candidates on the normalised terms and ranks them by
        bm25; the query's own matcher decides, so the semantics are exactly those of the
        topic profile and the alert rules.
        """
        if offset < 0:
            raise ValueError(f"search offset must be 0 or more, not {offset}")
        parsed = parse_query(query, name="search")
        match = parsed.fts5_candidates(column=_TERM_COLUMNS)
        lang_filter = "AND a.lang = ?" if lang else ""
        lang_params = [lang] if lang else []
        # the language index answers (lang, rowid) without reading the row
        by_lang = "INDEXED BY articles_lang" if lang else ""
        # Ranking reads only row numbers and scores; whole rows are fetched a page at a
        # time, so sorting many candidates never carries their texts along.
        if match:
            weights = ", ".join(str(w) for w in BM25_WEIGHTS)
            ranked = (
                f"SELECT a.n, bm25(articles_fts, {weights}) FROM articles_fts "
                f"JOIN articles AS a {by_lang} ON a.n = articles_fts.rowid "
                f"WHERE articles_fts MATCH ? {lang_filter} ORDER BY 2, a.n DESC"
            )
            params: list[Any] = [match, *lang_params]
        else:
            # nothing to look up in the index (e.g. `lang:uk AND relevant:true`): newest first
            ranked = (
                f"SELECT a.n, 0.0 FROM articles AS a WHERE 1 {lang_filter} "
                "ORDER BY coalesce(a.published_at, a.fetched_at) DESC, a.n DESC"
            )
            params = lang_params
        hits: list[SearchHit] = []
        to_skip = offset
        with self._lock:
            try:
                cursor = self._db.execute(ranked, params)
                while len(hits) < limit and (page := cursor.fetchmany(max(limit, 50))):
                    numbers = [n for n, _ in page]
                    rows = {
                        r["n"]: r
                        for r in self._db.execute(
                            f"SELECT * FROM articles WHERE n IN ({_marks(len(numbers))})",
                            numbers,
                        )
                    }
                    for n, bm25 in page:
                        article = _row_to_article(rows[n])
                        if not parsed.matches(article):
                            continue
                        # the query's matcher, not FTS5, decides what a hit is, so the
                        # offset counts matching articles rather than candidate rows
                        if to_skip:
                            to_skip -= 1
                            continue
                        terms = parsed.matched_terms(article)
                        hits.append(SearchHit(
                            article=article,
                            rank=-bm25 or 0.0,  # no -0.0 in output
                            snippet=article_snippet(article, terms),
                            matched_terms=terms,
                        ))
                        if len(hits) == limit:
                            break
                cursor.close()
            except sqlite3.Error as exc:
                raise StoreError(f"search {query!r} failed in {self.path}: {exc}") from exc
        return hits

    # ---------------------------------------------------------------- frontier

    def seen(self, canonical_urls: Iterable[str]) -> set[str]:
        urls = list(dict.fromkeys(canonical_urls))
        found: set[str] = set()
        for chunk in _chunks(urls):
            marks = _marks(len(chunk))
            rows = self._query(
                f"SELECT canonical_url FROM articles WHERE canonical_url IN ({marks}) "
                f"UNION SELECT url FROM seen WHERE url IN ({marks})",
                [*chunk, *chunk],
            )
            found.update(r[0] for r in rows)
        return found

    def mark_seen(self, canonical_urls: Iterable[str]) -> None:
        now = _iso(utcnow())
        rows = [(url, now) for url in dict.fromkeys(canonical_urls)]
        if rows:
            self._transaction(
                "mark URLs seen",
                lambda db: db.executemany(
                    "INSERT OR IGNORE INTO seen(url, seen_at) VALUES (?, ?)", rows
                ),
            )

    # ------------------------------------------------------------------- dedup

    def dup_candidates(
        self, content_hashes: Iterable[str], lsh_bands: Iterable[str]
    ) -> list[DupCandidate]:
        found: dict[str, DupCandidate] = {}
        columns = "a.id, a.cluster_id, a.content_hash, a.minhash"

        def collect(rows: list[sqlite3.Row]) -> None:
            for r in rows:
                found.setdefault(
                    r["id"],
                    DupCandidate(
                        id=r["id"],
                        cluster_id=r["cluster_id"],
                        content_hash=r["content_hash"],
                        minhash=_decode_minhash(r["minhash"]),
                    ),
                )

        hashes = [h for h in dict.fromkeys(content_hashes) if h]
        for chunk in _chunks(hashes):
            collect(
                self._query(
                    f"SELECT {columns} FROM articles AS a "
                    f"WHERE a.content_hash IN ({_marks(len(chunk))})",
                    chunk,
                )
            )
        bands = list(dict.fromkeys(lsh_bands))
        for chunk in _chunks(bands):
            collect(
                self._query(
                    f"SELECT DISTINCT {columns} FROM article_bands AS b "
                    f"JOIN articles AS a ON a.id = b.article_id "
                    f"WHERE b.band IN ({_marks(len(chunk))})",
                    chunk,
                )
            )
        return list(found.values())

    # ------------------------------------------------------------- translation

    def pending_translation(self, limit: int = 100, after_id: str = "") -> list[Article]:
        rows = self._query(
            "SELECT * FROM articles WHERE translation_status = 'pending' AND id > ? "
            "ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [_row_to_article(r) for r in rows]

    def mark_translation(self, articles: list[Article]) -> None:
        for article in articles:
            if article.translation_status not in TRANSLATION_STATUSES:
                raise StoreError(
                    f"article {article.id}: translation_status "
                    f"{article.translation_status!r} is not one of {TRANSLATION_STATUSES}"
                )
        if not articles:
            return
        assignments = ", ".join(f"{c} = ?" for c in (*TRANSLATION_COLUMNS, "title_terms"))
        rows = [
            [getattr(a, c) for c in TRANSLATION_COLUMNS] + [_title_terms(a), a.id]
            for a in articles
        ]
        self._transaction(
            "record translations",
            lambda db: db.executemany(f"UPDATE articles SET {assignments} WHERE id = ?", rows),
        )

    # ------------------------------------------------------------ alert matching

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

    # ------------------------------------------------------------ delivery log

    def add_deliveries(self, rule: str, article_ids: Iterable[str],
                       folded_into: Mapping[str, str] | None = None) -> list[str]:
        ids = list(dict.fromkeys(article_ids))
        folded = folded_into or {}
        now = _iso(utcnow())

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
        for chunk in _chunks(clusters):
            # CROSS JOIN keeps this order: the few articles of these clusters, then their
            # deliveries by key, never all the deliveries of a rule
            rows = self._query(
                "SELECT a.cluster_id, d.article_id FROM articles AS a "
                "CROSS JOIN deliveries AS d ON d.rule = ? AND d.article_id = a.id "
                f"WHERE a.cluster_id IN ({_marks(len(chunk))}) AND d.status != 'folded' "
                "ORDER BY d.created_at DESC, d.article_id DESC",
                [rule, *chunk],
            )
            # the earliest recorded wins: it comes last
            found.update((r[0], r[1]) for r in rows)
        return found

    def folded_deliveries(self, rule: str, article_ids: Iterable[str]) -> list[Delivery]:
        ids = list(dict.fromkeys(article_ids))
        rows: list[sqlite3.Row] = []
        for chunk in _chunks(ids):
            # without statistics the planner would read all the rule's deliveries
            rows += self._query(
                "SELECT * FROM deliveries INDEXED BY deliveries_folded WHERE rule = ? "
                f"AND folded_into IN ({_marks(len(chunk))})",
                [rule, *chunk],
            )
        rows.sort(key=lambda r: (r["created_at"], r["article_id"]))
        return [_row_to_delivery(r) for r in rows]

    def pending_deliveries(self, rule: str | None = None) -> list[Delivery]:
        # the open deliveries are few; all of a rule's, its whole history
        sql = ("SELECT * FROM deliveries INDEXED BY deliveries_open "
               "WHERE status IN ('pending', 'sending')")
        params: list[str] = []
        if rule is not None:
            sql += " AND rule = ?"
            params.append(rule)
        rows = self._query(sql + " ORDER BY created_at, rule, article_id", params)
        return [_row_to_delivery(r) for r in rows]

    def _update_deliveries(
        self, action: str, rule: str, article_ids: Iterable[str], assignments: str,
        params: Sequence[Any],
    ) -> None:
        # a delivery that was sent stays sent: that is the at-most-once guarantee; and a
        # folded one is never sent on its own
        sql = (
            f"UPDATE deliveries SET {assignments} "
            "WHERE rule = ? AND article_id = ? AND status IN ('pending', 'sending')"
        )
        rows = [(*params, rule, i) for i in dict.fromkeys(article_ids)]
        if rows:
            self._transaction(action, lambda db: db.executemany(sql, rows))

    def mark_sending(self, rule: str, article_ids: Iterable[str], message_id: str) -> None:
        self._update_deliveries(
            "record a digest being sent", rule, article_ids,
            "status = 'sending', message_id = ?", (message_id,),
        )

    def mark_delivered(self, rule: str, article_ids: Iterable[str]) -> None:
        self._update_deliveries(
            "record deliveries as sent", rule, article_ids,
            "status = 'sent', sent_at = ?, last_error = NULL", (_iso(utcnow()),),
        )

    def mark_delivery_failed(self, rule: str, article_ids: Iterable[str], error: str) -> None:
        self._update_deliveries(
            "record a failed delivery", rule, article_ids,
            "status = 'pending', attempts = attempts + 1, last_error = ?", (error,),
        )


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (triggers contain semicolons)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending.strip()
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()[:80]}")


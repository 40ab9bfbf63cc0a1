"""The SQLite file's layout: columns, the FTS5 index and the ordered schema migrations.

The schema carries a version (PRAGMA user_version); a file is brought up to date by
applying, in order, every migration past its version each time it is opened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from pipelines.article import TRANSLATION_STATUSES
from pipelines.store.base import DELIVERY_STATUSES

# Marks the file as Dozor's (PRAGMA application_id), so another program's database is
# refused instead of being "migrated".
APPLICATION_ID = 0x447A6F72  # "Dzor"

# The full-text index holds the normalised terms (what queries match, pipelines.query):
# of the whole article and of both titles, whose hits bm25 weighs more. Until migration
# 18 it also indexed the raw texts, which no query reads; since 19 it keeps no copy of
# them (contentless), the writes tell it each row's terms (fulltext.py).
FTS_COLUMNS = ("terms", "title_terms")
BM25_WEIGHTS = (1.0, 4.0)
_FTS_COLUMNS_V1 = ("title", "text", "title_en", "text_en", "terms", "title_terms")

# Article field -> how it is kept in a column ("packed": codec.pack, a long text as its
# zlib stream; "packed_json": the JSON text packed so).
COLUMNS: dict[str, str] = {
    "id": "text",
    "url": "text",
    "canonical_url": "text",
    "source": "text",
    "fetched_at": "datetime",
    "first_seen_at": "datetime",
    "final_url": "text",
    "discovered_via": "text",
    "status": "int",
    "title": "text",
    "text": "packed",
    "authors": "json",
    "description": "text",
    "site_name": "text",
    "html_lang": "text",
    "lang_hint": "text",
    "published_at": "datetime",
    "published_from": "text",
    "lang": "text",
    "lang_confidence": "real",
    "terms": "packed",
    "relevant": "bool",
    "possible": "bool",
    "score": "real",
    "matched_terms": "json",
    "title_en": "text",
    "text_en": "packed",
    "translation_status": "text",
    "translation_engine": "text",
    "translation_model": "text",
    "content_hash": "text",
    "cluster_id": "text",
    "lsh_bands": "packed_json",
    "warc_file": "text",
    "warc_record_id": "text",
    "stored_at": "datetime",
    "derived_version": "text",
    "minhash": "minhash",
    "channel": "text",
    "post_id": "int",
    "views": "int",
    "forwarded_from": "text",
    "links": "json",
    "relevant_via": "text",
    "removed": "bool",
    "events": "json",
    "change": "json",
}


def _fts_sync(columns: tuple[str, ...]) -> str:
    """Triggers that kept the external-content index in step with the articles (until
    migration 19: the writes keep it, fulltext.py)."""
    names = ", ".join(columns)
    new = ", ".join("new." + c for c in columns)
    old = ", ".join("old." + c for c in columns)
    return f"""
CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts(rowid, {names}) VALUES (new.n, {new});
END;
CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts(articles_fts, rowid, {names}) VALUES ('delete', old.n, {old});
END;
CREATE TRIGGER articles_fts_update AFTER UPDATE OF {names} ON articles BEGIN
    INSERT INTO articles_fts(articles_fts, rowid, {names}) VALUES ('delete', old.n, {old});
    INSERT INTO articles_fts(rowid, {names}) VALUES (new.n, {new});
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
        {", ".join(_FTS_COLUMNS_V1)},
        content='articles', content_rowid='n',
        tokenize='unicode61 remove_diacritics 0'
    );
    {_fts_sync(_FTS_COLUMNS_V1)}
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
    # 7: Telegram posts: channel, post id, views, the post a forward forwards, its links
    """
    ALTER TABLE articles ADD COLUMN channel TEXT;
    ALTER TABLE articles ADD COLUMN post_id INTEGER;
    ALTER TABLE articles ADD COLUMN views INTEGER;
    ALTER TABLE articles ADD COLUMN forwarded_from TEXT;
    ALTER TABLE articles ADD COLUMN links TEXT NOT NULL DEFAULT '[]';
    """,
    # 8: the topic's "possibly relevant" tier (scored between possible_threshold and
    # threshold); stored rows are not: they were classified before the tier existed
    """
    ALTER TABLE articles ADD COLUMN possible INTEGER NOT NULL DEFAULT 0;
    """,
    # 9: the code version that made each row's terms and dedup signature; rows stored
    # before it are stale ('') until `dozor reprocess` rebuilds them
    """
    ALTER TABLE articles ADD COLUMN derived_version TEXT NOT NULL DEFAULT '';
    """,
    # 10: source health (one record per source and feed/sitemap/listing/channel URL, its
    # fields as JSON: they are read and written whole) and the article URLs that
    # answered 404/410, asked again only once `retry_at` has passed
    """
    CREATE TABLE source_health (
        source TEXT NOT NULL,
        url TEXT NOT NULL,
        state TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (source, url)
    ) WITHOUT ROWID;
    CREATE TABLE gone (
        url TEXT PRIMARY KEY,
        status INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        retry_at TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 11: revisits: when each article is due again and the validators of its last answer;
    # its versions (a new one only when title, text or date changed) with their WARC
    # records; its events (edited, removed...), each awaiting the alert rules once
    """
    ALTER TABLE articles ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE articles ADD COLUMN events TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE articles ADD COLUMN change TEXT NOT NULL DEFAULT 'null';
    CREATE TABLE revisits (
        article_id TEXT PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,
        step INTEGER NOT NULL DEFAULT 0,
        due_at TEXT,
        etag TEXT NOT NULL DEFAULT '',
        last_modified TEXT NOT NULL DEFAULT '',
        checked_at TEXT
    ) WITHOUT ROWID;
    CREATE TABLE versions (
        article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        fetched_at TEXT NOT NULL,
        title TEXT NOT NULL,
        text TEXT NOT NULL,
        published_at TEXT,
        warc_file TEXT,
        warc_record_id TEXT,
        changed TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (article_id, version)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        n INTEGER PRIMARY KEY,
        article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        version INTEGER,
        detail TEXT NOT NULL DEFAULT '{}',
        alert_state TEXT CHECK (alert_state IN ('unmatched'))
    );
    CREATE INDEX events_article ON events(article_id, n);
    CREATE INDEX events_unmatched ON events(n) WHERE alert_state = 'unmatched';
    """,
    # 12: how far each digest's hand-over got (base.STAGES) and whether its outcome was
    # ever unknown. A delivery an older Dozor left "sending" may be in a mailbox: it is
    # taken as sent to the end of DATA, so it goes out again marked as a possible repeat.
    """
    ALTER TABLE deliveries ADD COLUMN stage TEXT NOT NULL DEFAULT '';
    ALTER TABLE deliveries ADD COLUMN possible_repeat INTEGER NOT NULL DEFAULT 0;
    UPDATE deliveries SET stage = 'end-of-data' WHERE status = 'sending';
    UPDATE deliveries SET stage = 'acknowledged' WHERE status = 'sent';
    """,
    # 13: when an article's URL was first listed by a feed/sitemap/listing (time to
    # alert: publication -> first seen); an older Dozor's articles have only fetched_at
    """
    ALTER TABLE articles ADD COLUMN first_seen_at TEXT;
    """,
    # 14: the analysts' relevant / not relevant labels; no foreign key, so an article's
    # rewrite (reprocess) never drops its label
    """
    CREATE TABLE labels (
        article_id TEXT PRIMARY KEY,
        relevant INTEGER NOT NULL CHECK (relevant IN (0, 1)),
        labelled_at TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 15: the delivery log also carries the health notices (pipelines.alert.health,
    # keys starting with '#'), whose ids are no article's: the foreign key gives way to
    # triggers that still refuse a rule's delivery of an unknown article and drop an
    # article's deliveries with it. The table is rebuilt, every delivery kept.
    f"""
    CREATE TABLE deliveries_v15 (
        rule TEXT NOT NULL,
        article_id TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ({", ".join(repr(s) for s in DELIVERY_STATUSES)})),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        message_id TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        folded_into TEXT,
        stage TEXT NOT NULL DEFAULT '',
        possible_repeat INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (rule, article_id),
        CHECK ((status = 'folded') = (folded_into IS NOT NULL))
    ) WITHOUT ROWID;
    INSERT INTO deliveries_v15(rule, article_id, status, attempts, last_error, message_id,
                               created_at, sent_at, folded_into, stage, possible_repeat)
        SELECT rule, article_id, status, attempts, last_error, message_id, created_at,
               sent_at, folded_into, stage, possible_repeat
        FROM deliveries;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_v15 RENAME TO deliveries;
    CREATE INDEX deliveries_open ON deliveries(status, created_at)
        WHERE status IN ('pending', 'sending');
    CREATE INDEX deliveries_folded ON deliveries(rule, folded_into)
        WHERE folded_into IS NOT NULL;
    CREATE TRIGGER deliveries_of_a_deleted_article AFTER DELETE ON articles BEGIN
        DELETE FROM deliveries WHERE article_id = old.id;
    END;
    CREATE TRIGGER deliveries_of_known_articles BEFORE INSERT ON deliveries
    WHEN new.rule NOT LIKE '#%'
        AND NOT EXISTS (SELECT 1 FROM articles WHERE id = new.article_id) BEGIN
        SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: no such article');
    END;
    """,
    # 16: a Telegram post relevant via the article it links to: that article's URL
    """
    ALTER TABLE articles ADD COLUMN relevant_via TEXT;
    """,
    # 17: the dedup key lookup holds each key as a 64-bit digest (codec.key_digest,
    # registered on the connection as key_digest) against the article's row number,
    # instead of the key's text against the 40-character id twice (table and index):
    # a fifth of the size, every key kept. Date filters and date-sorted searches read
    # an index of publication dates.
    """
    CREATE TABLE article_keys (
        key INTEGER NOT NULL,
        n INTEGER NOT NULL REFERENCES articles(n) ON DELETE CASCADE,
        PRIMARY KEY (key, n)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO article_keys(key, n)
        SELECT key_digest(b.band), a.n FROM article_bands AS b
        JOIN articles AS a ON a.id = b.article_id;
    DROP TABLE article_bands;
    CREATE INDEX article_keys_article ON article_keys(n);
    CREATE INDEX articles_published ON articles(published_at);
    """,
    # 18: the full-text index of the normalised terms alone (queries match nothing
    # else): the raw texts' half of the index and of every write's tokenising goes;
    # rebuilt from the rows, which keep every text. An article's dedup keys are removed
    # by their own values (its lsh_bands), so the second index of them goes too.
    f"""
    DROP INDEX article_keys_article;
    DROP TRIGGER articles_fts_insert;
    DROP TRIGGER articles_fts_delete;
    DROP TRIGGER articles_fts_update;
    DROP TABLE articles_fts;
    CREATE VIRTUAL TABLE articles_fts USING fts5(
        {", ".join(FTS_COLUMNS)},
        content='articles', content_rowid='n',
        tokenize='unicode61 remove_diacritics 0'
    );
    INSERT INTO articles_fts(articles_fts) VALUES ('rebuild');
    {_fts_sync(FTS_COLUMNS)}
    """,
    # 19: the texts, their translations, the terms and the dedup keys' list are kept
    # packed (codec.pack, registered on the connection as pack): about half their
    # room; every row is converted, so an older Dozor, which would read the packed
    # bytes as text, refuses the file by its version. SQL cannot unpack the terms for
    # the index: it becomes contentless, kept by the writes (fulltext.py) instead of
    # triggers, and is rebuilt from the rows' terms before they are packed.
    f"""
    DROP TRIGGER articles_fts_insert;
    DROP TRIGGER articles_fts_delete;
    DROP TRIGGER articles_fts_update;
    DROP TABLE articles_fts;
    CREATE VIRTUAL TABLE articles_fts USING fts5(
        {", ".join(FTS_COLUMNS)},
        content='',
        tokenize='unicode61 remove_diacritics 0'
    );
    INSERT INTO articles_fts(rowid, {", ".join(FTS_COLUMNS)})
        SELECT n, {", ".join(FTS_COLUMNS)} FROM articles;
    UPDATE articles SET text = pack(text), text_en = pack(text_en), terms = pack(terms),
                        lsh_bands = pack(lsh_bands);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def statements(script: str) -> Iterator[str]:
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


"""The SQLite backend on real database files: what only SQLite does (the file, its
schema migrations, transactions, FTS5 and query plans). Every role's contract runs on
both backends in tests/contracts/."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.article import Article
from pipelines.dedup import dedup
from pipelines.store import Store, StoreError, open_store
from pipelines.store.sqlite import COLUMNS, MIGRATIONS, SCHEMA_VERSION, SQLiteStore
from pipelines.store.sqlite.codec import from_column, key_digest
from pipelines.store.sqlite.schema import statements
from pipelines.terms.normalisation import analyse
from tests.support.articles import FETCHED, article, corpus, search


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "dozor.db"


@pytest.fixture
def store(db: Path):
    with SQLiteStore(db) as s:
        yield s


@pytest.fixture
def stored(store: SQLiteStore) -> dict[str, Article]:
    docs = corpus()
    store.write(dedup(list(docs.values()), store))
    return docs


def test_is_a_store_and_open_store_picks_it(db: Path) -> None:
    with open_store(db=db) as s:
        assert isinstance(s, SQLiteStore)
        assert isinstance(s, Store)


def test_every_article_field_has_a_column() -> None:
    # a field added to Article without a column (and a migration) would be lost
    assert set(COLUMNS) == {f.name for f in dataclasses.fields(Article)}


def test_file_settings_and_schema_version(store: SQLiteStore, db: Path) -> None:
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    assert store._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store._db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    raw.close()


def test_failed_transaction_rolls_back(store: SQLiteStore) -> None:
    good = article("https://example.org/good", "Хорошая", "текст", lang="ru", source="s")
    broken = article("https://example.org/broken", "Сломанная", "текст", lang="ru", source="s")
    broken.source = None  # type: ignore[assignment]  # NOT NULL in the schema
    with pytest.raises(StoreError, match="cannot store articles"):
        store.write([good, broken])
    assert store.count() == 0
    assert store.write([good]).new == [good.id]  # the connection is usable afterwards


def test_mark_is_part_of_the_write_transaction(store: SQLiteStore) -> None:
    good = article("https://example.org/good", "Хорошая", "текст", lang="ru", source="s")
    broken = article("https://example.org/broken", "Сломанная", "текст", lang="ru", source="s")
    broken.source = None  # type: ignore[assignment]  # NOT NULL in the schema
    with pytest.raises(StoreError):
        store.write([good, broken])
    assert store.unmatched_ids() == []
    store.write([good])
    assert store.unmatched_ids() == [good.id]
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        store._db.execute("UPDATE articles SET alert_state = 'maybe'")


def test_delivery_for_an_unknown_article_is_refused(store: SQLiteStore) -> None:
    with pytest.raises(StoreError, match="FOREIGN KEY"):
        store.add_deliveries("rule", ["f" * 40])
    assert store.pending_deliveries() == []


def test_stats_read_an_index_not_the_rows(store: SQLiteStore) -> None:
    # counted from an index, never from the rows and their texts (the counts themselves:
    # tests/contracts/test_articles_reader.py)
    plan = store._db.execute(
        "EXPLAIN QUERY PLAN SELECT lang, source, translation_status, relevant, count(*) "
        "FROM articles GROUP BY 1, 2, 3, 4"
    ).fetchall()
    assert "COVERING INDEX articles_overview" in plan[0]["detail"]


def test_fts_tokenizer_folds_no_letters(store: SQLiteStore) -> None:
    # the index holds the normalised terms as they are: its tokenizer keeps й/и and every
    # other diacritic apart (remove_diacritics 0: "cafe" does not find "café"), so the
    # candidates FTS5 gives are those of the terms themselves
    store.write([article("https://example.org/t", "Йод и café", "Текст", lang="ru",
                         source="s")])

    def raw(expr: str) -> int:
        return store._db.execute(
            "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?", (expr,)
        ).fetchone()[0]

    assert raw("title_terms : йод") == 1
    assert raw("title_terms : иод") == 0
    assert raw("terms : café") == 1
    assert raw("terms : cafe") == 0
    assert raw("terms : текст") == 1
    # the raw texts are kept in the rows, not indexed: queries match terms only
    columns = [d[0] for d in store._db.execute("SELECT * FROM articles_fts LIMIT 0").description]
    assert columns == ["terms", "title_terms"]


def test_opens_a_v1_file_and_migrates_it(db: Path) -> None:
    """A file written by the first schema (band keys only as JSON, no delivery log)."""
    raw = sqlite3.connect(db, isolation_level=None)
    for statement in statements(MIGRATIONS[0]):
        raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    now = FETCHED.isoformat()
    raw.execute(
        "INSERT INTO articles(id, url, canonical_url, source, fetched_at, title, text, lang, "
        "terms, content_hash, cluster_id, lsh_bands, stored_at) "
        "VALUES ('a1', 'https://old.example/1', 'https://old.example/1', 'old', ?, "
        "'Колония', 'Старый текст', 'ru', 'колония старый текст', 'h1', 'a1', "
        "'[\"00:abc\", \"01:def\"]', ?)",
        (now, now),
    )
    raw.close()

    with SQLiteStore(db) as store:
        assert store.schema_version() == SCHEMA_VERSION
        old = store.get("a1")
        assert (old.title, old.minhash, old.stored_at) == ("Колония", [], FETCHED)
        # band keys moved into the lookup table; the delivery log exists
        assert [c.id for c in store.dup_candidates([], ["01:def"])] == ["a1"]
        assert store.add_deliveries("rule", ["a1"]) == ["a1"]
        assert [h.article.id for h in search(store, "колонию")] == ["a1"]
    # opening again applies nothing twice
    with SQLiteStore(db) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.count() == 1


def test_upgrade_to_keys_by_digest_keeps_every_dedup_key(db: Path) -> None:
    """A file built by migrations 1-16 (band keys as text against article ids): after the
    upgrade every key still finds its articles, from the digest table alone."""
    raw = sqlite3.connect(db, isolation_level=None)
    for number in range(16):
        for statement in statements(MIGRATIONS[number]):
            raw.execute(statement)
        raw.execute(f"PRAGMA user_version = {number + 1}")
    now = FETCHED.isoformat()
    keys = {"a1": ["00:aa", "01:bb", "lead:cc"], "a2": ["01:bb", "c02:dd"]}
    for n, (article_id, bands) in enumerate(keys.items()):
        raw.execute(
            "INSERT INTO articles(id, url, canonical_url, source, fetched_at, title, text, "
            "lang, terms, content_hash, cluster_id, lsh_bands, published_at, stored_at) "
            "VALUES (?, ?, ?, 'old', ?, 'Колония', 'Старый текст', 'ru', "
            "'колония старый текст', ?, ?, ?, ?, ?)",
            (article_id, f"https://old.example/{n}", f"https://old.example/{n}", now,
             f"h{n}", article_id, json.dumps(bands), now, now))
        raw.executemany("INSERT INTO article_bands(band, article_id) VALUES (?, ?)",
                        [(band, article_id) for band in bands])
    raw.close()

    with SQLiteStore(db) as store:
        assert store.schema_version() == SCHEMA_VERSION
        tables = {r[0] for r in store._db.execute("SELECT name FROM sqlite_schema")}
        assert "article_bands" not in tables
        assert store._db.execute("SELECT count(*) FROM article_keys").fetchone()[0] == 5
        for key, owners in [("00:aa", ["a1"]), ("01:bb", ["a1", "a2"]), ("lead:cc", ["a1"]),
                            ("c02:dd", ["a2"]), ("02:ee", [])]:
            found = store.dup_candidates([], [key])
            assert sorted(c.id for c in found) == owners, key
            assert all(c.lsh_bands == keys[c.id] for c in found)
        # a rewrite replaces the article's keys, a new article adds its own
        old = store.get("a1")
        old.lsh_bands = ["00:ff"]
        new = article("https://new.example/1", "Новая", "текст", lang="ru", source="new")
        new.lsh_bands = ["00:aa"]
        store.write([old, new])
        assert [c.id for c in store.dup_candidates([], ["00:aa"])] == [new.id]
        assert [c.id for c in store.dup_candidates([], ["00:ff"])] == ["a1"]
        assert store._db.execute("SELECT count(*) FROM article_keys").fetchone()[0] == 4


def test_upgrade_keeps_the_delivery_log_and_alerts_no_old_story(db: Path) -> None:
    """A file from before the alert mark and folded deliveries (schema 4): its articles
    went through the alert step of their run, so none awaits the rules; what is stored
    after the upgrade does. The delivery log is rebuilt with every row as it was."""
    raw = sqlite3.connect(db, isolation_level=None)
    for number in range(4):
        for statement in statements(MIGRATIONS[number]):
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 4")
    now = FETCHED.isoformat()
    for n in (1, 2):
        raw.execute(
            "INSERT INTO articles(id, url, canonical_url, source, fetched_at, title, "
            "cluster_id, stored_at) VALUES (?, ?, ?, 'old', ?, 'Старая', 'a1', ?)",
            (f"a{n}", f"https://old.example/{n}", f"https://old.example/{n}", now, now),
        )
    raw.execute("INSERT INTO deliveries(rule, article_id, status, attempts, last_error, "
                "message_id, created_at, sent_at) VALUES "
                "('desk', 'a1', 'sent', 1, NULL, '<m1@dozor>', ?, ?), "
                "('desk', 'a2', 'pending', 2, '451 later', '<m2@dozor>', ?, NULL)",
                (now, now, now))
    raw.close()
    with SQLiteStore(db) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.unmatched_ids() == []
        new = article("https://new.example/1", "Новая", "текст", lang="ru", source="new")
        store.write([new, store.get("a1")])
        assert store.unmatched_ids() == [new.id]
        (pending,) = store.pending_deliveries()
        assert (pending.article_id, pending.status, pending.attempts, pending.last_error,
                pending.message_id, pending.created_at) == (
            "a2", "pending", 2, "451 later", "<m2@dozor>", FETCHED)
        assert store.cluster_deliveries("desk", ["a1"]) == {"a1": "a1"}  # the sent one
        assert store.add_deliveries("desk", [new.id], folded_into={new.id: "a1"}) == [new.id]
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            store._db.execute("UPDATE deliveries SET folded_into = NULL WHERE article_id = ?",
                              (new.id,))


def _indexed(store: SQLiteStore) -> dict[int, list[str]]:
    """Every row's terms as the full-text index holds them, in order."""
    store._db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab "
                      "USING fts5vocab(main, articles_fts, instance)")
    out: dict[int, list[tuple[int, str]]] = {}
    for term, doc, column, offset in store._db.execute("SELECT * FROM temp.vocab"):
        if column == "terms":
            out.setdefault(doc, []).append((offset, term))
    return {doc: [t for _, t in sorted(terms)] for doc, terms in out.items()}


def test_upgrade_packs_the_texts_and_indexes_the_terms_it_held(db: Path) -> None:
    """A file of schema 18 (texts and terms as text, an index fed by triggers): after
    the upgrade its long texts are packed, read back as they were, and the index it
    rebuilt finds the article by its terms, which later writes keep in step."""
    raw = sqlite3.connect(db, isolation_level=None)
    raw.create_function("key_digest", 1, key_digest)  # migration 17 uses it
    for number in range(18):
        for statement in statements(MIGRATIONS[number]):
            raw.execute(statement)
        raw.execute(f"PRAGMA user_version = {number + 1}")
    now = FETCHED.isoformat()
    text = " ".join(["Осуждённые из колонии подписали контракт."] * 40)
    terms = " ".join(["осуждённый из колония подписать контракт"] * 40)
    keys = [f"{i:02d}:{i:016x}" for i in range(40)]
    raw.execute(
        "INSERT INTO articles(id, url, canonical_url, source, fetched_at, title, text, "
        "lang, terms, title_terms, lsh_bands, stored_at) VALUES ('a1', 'https://old.example/1', "
        "'https://old.example/1', 'old', ?, 'Колония', ?, 'ru', ?, 'колония', ?, ?)",
        (now, text, terms, json.dumps(keys), now))
    raw.executemany("INSERT INTO article_keys(key, n) VALUES (key_digest(?), 1)",
                    [(k,) for k in keys])
    raw.close()

    with SQLiteStore(db) as store:
        types = store._db.execute("SELECT typeof(text), typeof(terms), typeof(lsh_bands), "
                                  "typeof(title) FROM articles").fetchone()
        assert tuple(types) == ("blob", "blob", "blob", "text")
        old = store.get("a1")
        assert (old.text, old.terms) == (text, terms)
        assert old.lsh_bands == keys
        assert [h.article.id for h in search(store, "колонии")] == ["a1"]
        assert [c.lsh_bands for c in store.dup_candidates([], [keys[3]])] == [keys]
        assert _indexed(store) == {1: terms.split()}

        old.text, old.terms = "Новый текст о заводе.", "новый текст о завод"
        old.lsh_bands = ["00:ff"]
        store.write([old])  # its old keys found in the packed list and taken out
        assert store._db.execute("SELECT count(*) FROM article_keys").fetchone()[0] == 1
        assert search(store, "колонии") == []
        assert [h.article.id for h in search(store, "завода")] == ["a1"]
        assert _indexed(store) == {1: ["новый", "текст", "о", "завод"]}


def test_the_index_follows_every_change_of_the_terms(store: SQLiteStore) -> None:
    """Writes, translations and revisits tell the index each row's new terms and take
    its old ones out: the index holds exactly what the rows hold."""
    docs = [article(f"https://example.org/{i}", f"Колония {i}", "Осуждённые подписали "
                    "контракт. " * 30, lang="ru", source="s", translation_status="pending")
            for i in range(3)]
    store.write(docs)

    def rows() -> dict[int, list[str]]:
        return {n: from_column("packed", t).split()
                for n, t in store._db.execute("SELECT n, terms FROM articles")}

    assert _indexed(store) == rows() and len(rows()) == 3
    translated = store.get(docs[0].id)
    translated.title_en, translated.text_en = "Colony", "Convicts signed contracts."
    translated.translation_status = "done"
    store.mark_translation(analyse([translated]))
    assert _indexed(store) == rows()
    assert [h.article.id for h in search(store, "convicts")] == [docs[0].id]
    revisited = dataclasses.replace(store.get(docs[1].id), text="Завод закрыли.")
    store.record_change(analyse([revisited])[0], [], [])
    assert _indexed(store) == rows()
    assert [h.article.id for h in search(store, "завод")] == [docs[1].id]
    store.write([dataclasses.replace(store.get(docs[2].id), title="Другое")])
    assert _indexed(store) == rows()


def test_refuses_files_it_cannot_use(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    SQLiteStore(newer).close()
    raw = sqlite3.connect(newer)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer than this Dozor"):
        SQLiteStore(newer)

    other = tmp_path / "other.db"
    raw = sqlite3.connect(other)
    raw.execute("CREATE TABLE accounts (id INTEGER)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="another program"):
        SQLiteStore(other)
    raw = sqlite3.connect(other)  # left untouched
    assert raw.execute("SELECT name FROM sqlite_schema").fetchall() == [("accounts",)]
    raw.close()

    text = tmp_path / "notes.db"
    text.write_text("not a database at all, just some notes\n" * 50)
    with pytest.raises(StoreError, match="the file is not a SQLite database"):
        SQLiteStore(text)
    assert text.read_text().startswith("not a database")


def test_two_connections_share_the_file(db: Path) -> None:
    """The crawler writes while a search or the UI reads the same file (WAL)."""
    docs = [article(f"https://example.org/c{i}", f"Колония {i}", "Заключённые колонии.",
                    lang="ru", source="s") for i in range(200)]
    with SQLiteStore(db) as writer, SQLiteStore(db) as reader:
        errors: list[BaseException] = []

        def write() -> None:
            try:
                for start in range(0, 200, 20):
                    writer.write(docs[start:start + 20])
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        thread = threading.Thread(target=write)
        thread.start()
        while thread.is_alive():
            search(reader, "колония", limit=5)
            reader.count()
        thread.join()
        assert errors == []
        assert reader.count() == 200
        assert len(search(reader, "колония", limit=500)) == 200


def test_lookups_use_indexes(store: SQLiteStore, stored: dict[str, Article]) -> None:
    """Crawl frontier, dedup, backlog, delivery and filtered search look-ups never read
    the whole articles table: they run on every batch as the table grows."""
    wire = store.get(stored["ru_wire"].id)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    store.seen([wire.canonical_url, "https://example.org/new"])
    store.dup_candidates([wire.content_hash], wire.lsh_bands)
    store.pending_translation(limit=10, after_id=wire.id)
    store.add_deliveries("rule", [wire.id])
    store.pending_deliveries("rule")
    search(store, "колонии", lang="ru")
    store.unmatched_ids()
    store.cluster_deliveries("rule", [wire.cluster_id])
    store.folded_deliveries("rule", [wire.id])
    store._db.set_trace_callback(None)

    selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(selects) >= 10
    for sql in selects:
        plan = " | ".join(r[3] for r in store._db.execute("EXPLAIN QUERY PLAN " + sql))
        # the partial index of unmatched articles holds only those: scanning it is the point
        plan = plan.replace("SCAN articles USING INDEX articles_unmatched", "")
        assert not re.search(r"\bSCAN (a|articles)\b", plan), (sql, plan)
        # nor all the deliveries of a rule (a log that only grows)
        assert not re.search(r"\b(SCAN|SEARCH) (d|deliveries) USING PRIMARY KEY \(rule=\?\)",
                             plan), (sql, plan)


def test_date_orders_read_the_publication_index(store: SQLiteStore,
                                                stored: dict[str, Article]) -> None:
    """A date range and a search sorted newest read the publication index in order and
    stop when the page is full: no sort of every candidate row (their dates lie past the
    texts); ties of a date alone are sorted by fetch time."""
    for text, sort in (("published:[2026-05-01 TO 2026-05-13]", "relevance"),
                       ("published:[2026-05-01 TO 2026-05-13]", "newest"),
                       ("колонии", "newest"), ("колонии AND lang:ru", "newest"),
                       ("relevant:true", "newest")):
        statements: list[str] = []
        store._db.set_trace_callback(statements.append)
        hits = search(store, text, sort=sort)
        store._db.set_trace_callback(None)
        assert hits, text
        ranked = [s for s in statements if "ORDER BY" in s and not s.startswith("--")]
        assert len(ranked) == 1, statements
        plan = " | ".join(r[3] for r in store._db.execute("EXPLAIN QUERY PLAN " + ranked[0]))
        assert "articles_published" in plan, (text, sort, plan)
        assert "TEMP B-TREE FOR ORDER BY" not in plan, (text, sort, plan)
    # a term with filters an index holds: the filters read there, no candidate's row
    statements = []
    store._db.set_trace_callback(statements.append)
    filtered = search(store, "колонии AND relevant:true", lang="ru")
    store._db.set_trace_callback(None)
    assert filtered and all(h.article.lang == "ru" and h.article.relevant for h in filtered)
    ranked = [s for s in statements if "ORDER BY" in s and not s.startswith("--")]
    plan = " | ".join(r[3] for r in store._db.execute("EXPLAIN QUERY PLAN " + ranked[0]))
    assert "COVERING INDEX articles_overview" in plan and "PRIMARY KEY" not in plan, plan
    hits = search(store, "колонии", sort="newest", limit=50)
    dated = [h.article for h in hits if h.article.published_at]
    assert dated == sorted(dated, key=lambda a: (a.published_at, a.fetched_at), reverse=True)
    assert all(h.rank > 0 for h in hits)  # still scored by the index


def test_field_and_date_filters_run_in_sql_and_keep_every_match(store: SQLiteStore) -> None:
    """A query's required fields and dates narrow the rows in SQL; a date stored without
    a zone (read as UTC) at a range's very bound still matches."""
    bound = datetime(2026, 1, 31, 8, 0, tzinfo=UTC)
    docs = [article(f"https://example.org/d{i}", f"Новость {i}", "Текст новости.",
                    lang=lang, source="s", published=published)
            for i, (lang, published) in enumerate([
                ("uk", bound), ("uk", bound.replace(tzinfo=None)),
                ("uk", bound - timedelta(seconds=1)), ("ru", bound), ("uk", None)])]
    docs[0].relevant = True
    store.write(docs)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    found = search(store, "published:[2026-01-31T08:00Z TO 2026-01-31T08:00Z] AND lang:uk")
    store._db.set_trace_callback(None)
    assert sorted(h.article.url for h in found) == [docs[0].url, docs[1].url]
    ranked = next(s for s in statements if s.startswith("SELECT a.n"))
    assert "a.lang = 'uk'" in ranked and "a.published_at >=" in ranked, ranked
    assert sorted(h.article.url for h in search(store, "lang:uk AND relevant:false")) == [
        docs[1].url, docs[2].url, docs[4].url]

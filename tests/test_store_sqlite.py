"""The SQLite backend on real database files."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.article import Article
from pipelines.dedup import dedup
from pipelines.query import QueryError
from pipelines.store import Store, StoreError, open_store
from pipelines.store.sqlite import COLUMNS, MIGRATIONS, SCHEMA_VERSION, SQLiteStore
from pipelines.store.sqlite.schema import statements
from pipelines.terms.normalisation import analyse
from tests.sample_articles import FETCHED, article, check_search_pages, corpus


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


def test_write_round_trips_every_field(store: SQLiteStore) -> None:
    doc = article(
        "https://example.org/a?id=1", "Заголовок", "Текст статьи.", lang="ru", source="src",
        published=datetime(2026, 5, 1, 7, 15, tzinfo=UTC),
        final_url="https://example.org/a?id=1&from=rss", discovered_via="sitemap", status=200,
        authors=["Иван Петров", "Anna Smith"], description="Описание", site_name="Пример",
        html_lang="ru-RU", lang_hint="ru", lang_confidence=0.97, relevant=True, score=2.5,
        matched_terms=["колония", '"Шторм Z"'], title_en="Title", text_en="Text.",
        translation_status="done", translation_engine="ctranslate2", translation_model="ru-en 1.9",
        content_hash="ab" * 20, cluster_id="c" * 40, lsh_bands=["00:aa", "01:bb"],
        warc_file="dozor-0001.warc.gz", warc_record_id="<urn:uuid:1>", minhash=[0, 7, 2**32 - 1],
    )
    result = store.write([doc])
    assert result.new == [doc.id] and result.updated == []
    back = store.get(doc.id)
    assert back is not None
    assert back.stored_at is not None and back.stored_at == doc.stored_at
    assert back.to_dict() == doc.to_dict()
    assert store.get("0" * 40) is None


def test_upsert_reports_new_and_updated_and_keeps_first_stored_at(store: SQLiteStore) -> None:
    docs = corpus()
    first = store.write([docs["ru_wire"], docs["uk"]])
    assert sorted(first.new) == sorted([docs["ru_wire"].id, docs["uk"].id])
    stored_at = store.get(docs["uk"].id).stored_at

    changed = article(docs["uk"].url, "Новий заголовок", docs["uk"].text, lang="uk",
                      source="pravda-uk")
    second = store.write([changed, docs["en_wire"]])
    assert second.new == [docs["en_wire"].id]
    assert second.updated == [docs["uk"].id]
    back = store.get(docs["uk"].id)
    assert back.title == "Новий заголовок"
    assert back.stored_at == stored_at
    assert store.count() == 3
    # the FTS index follows the update
    assert [h.article.id for h in store.search("новий")] == [docs["uk"].id]


def test_one_record_per_id_within_a_batch(store: SQLiteStore) -> None:
    a = article("https://example.org/x", "Первый", "текст", lang="ru", source="s")
    b = article("https://example.org/x", "Второй", "текст", lang="ru", source="s")
    result = store.write([a, b])
    assert result.new == [a.id]
    assert store.count() == 1
    assert store.get(a.id).title == "Второй"  # as if written one after the other


def test_bad_article_is_refused_and_nothing_of_the_batch_is_written(store: SQLiteStore) -> None:
    good = article("https://example.org/good", "Хорошая", "текст", lang="ru", source="s")
    bad = article("https://example.org/bad", "Плохая", "текст", lang="ru", source="s",
                  translation_status="maybe")
    with pytest.raises(StoreError, match="translation_status 'maybe'"):
        store.write([good, bad])
    assert store.count() == 0


def test_failed_transaction_rolls_back(store: SQLiteStore) -> None:
    good = article("https://example.org/good", "Хорошая", "текст", lang="ru", source="s")
    broken = article("https://example.org/broken", "Сломанная", "текст", lang="ru", source="s")
    broken.source = None  # type: ignore[assignment]  # NOT NULL in the schema
    with pytest.raises(StoreError, match="cannot store articles"):
        store.write([good, broken])
    assert store.count() == 0
    assert store.write([good]).new == [good.id]  # the connection is usable afterwards


def test_iter_articles_in_stored_order_and_by_ids(store: SQLiteStore) -> None:
    docs = [article(f"https://example.org/{i}", f"Статья {i}", "текст", lang="ru", source="s")
            for i in range(1203)]  # more than one read page
    store.write(docs[:700])
    store.write(docs[700:])
    assert [a.id for a in store.iter_articles()] == [d.id for d in docs]
    wanted = [docs[5].id, "missing", docs[2].id, docs[1100].id]
    assert [a.id for a in store.iter_articles(wanted)] == [docs[5].id, docs[2].id, docs[1100].id]
    assert store.count() == 1203


def test_seen_covers_stored_articles_and_marked_urls(store: SQLiteStore) -> None:
    doc = article("https://example.org/stored", "Т", "текст", lang="ru", source="s")
    store.write([doc])
    store.mark_seen(["https://example.org/off-topic", "https://example.org/off-topic"])
    asked = ["https://example.org/stored", "https://example.org/off-topic",
             "https://example.org/new"]
    assert store.seen(asked) == {"https://example.org/stored", "https://example.org/off-topic"}
    assert store.seen([]) == set()


def test_pending_translation_pages_by_id_and_resumes(store: SQLiteStore) -> None:
    docs = [
        article(f"https://example.org/p{i}", f"Статья {i}", "Осуждённые подписали контракт.",
                lang="ru", source="s",
                translation_status="pending" if i % 4 else "skipped")
        for i in range(20)
    ]
    store.write(docs)
    expected = sorted(d.id for d in docs if d.translation_status == "pending")

    seen: list[str] = []
    after = ""
    while page := store.pending_translation(limit=4, after_id=after):
        assert len(page) <= 4
        seen += [a.id for a in page]
        after = page[-1].id
    assert seen == expected

    # translating the first page takes it out of the backlog, and only translation
    # fields and terms change
    page = store.pending_translation(limit=4)
    for doc in page:
        doc.title = "changed here but not by mark_translation"
        doc.title_en, doc.text_en = "Article", "Convicts signed a contract."
        doc.translation_status = "done"
        doc.translation_engine, doc.translation_model = "ctranslate2", "ru-en"
    store.mark_translation(analyse(page))
    assert [a.id for a in store.pending_translation(limit=100)] == expected[4:]
    back = store.get(page[0].id)
    assert back.title.startswith("Статья")
    assert (back.text_en, back.translation_status) == ("Convicts signed a contract.", "done")
    # the English text is searchable through the normalised terms
    hits = store.search("convicts")
    assert {h.article.id for h in hits} == {a.id for a in page}
    assert "[Convicts]" in hits[0].snippet

    bad = store.get(expected[5])
    bad.translation_status = "half-done"
    with pytest.raises(StoreError, match="half-done"):
        store.mark_translation([bad])


def test_delivery_log_records_each_story_once_per_rule(store: SQLiteStore, db: Path) -> None:
    docs = [article(f"https://example.org/d{i}", f"Т {i}", "текст", lang="ru", source="s")
            for i in range(4)]
    store.write(docs)
    a, b, c, d = (x.id for x in docs)

    assert store.add_deliveries("uk-desk", [a, b, a]) == [a, b]
    assert store.add_deliveries("uk-desk", [b, c]) == [c]
    assert store.add_deliveries("ru-desk", [a]) == [a]  # per rule
    pending = store.pending_deliveries("uk-desk")
    assert [(p.article_id, p.status, p.attempts) for p in pending] == [
        (a, "pending", 0), (b, "pending", 0), (c, "pending", 0)]
    assert pending[0].created_at is not None

    store.mark_sending("uk-desk", [a, b], "<digest-1@dozor>")
    store.mark_delivery_failed("uk-desk", [c], "421 try later")
    by_id = {p.article_id: p for p in store.pending_deliveries("uk-desk")}
    assert (by_id[a].status, by_id[a].message_id) == ("sending", "<digest-1@dozor>")
    assert (by_id[c].status, by_id[c].attempts, by_id[c].last_error) == (
        "pending", 1, "421 try later")

    store.mark_delivered("uk-desk", [a, b])
    # a sent story never goes back to pending, whatever is reported later
    store.mark_delivery_failed("uk-desk", [a], "late error")
    store.mark_sending("uk-desk", [a], "<digest-2@dozor>")
    assert [p.article_id for p in store.pending_deliveries("uk-desk")] == [c]
    assert store.add_deliveries("uk-desk", [a, b, c, d]) == [d]
    assert {(p.rule, p.article_id) for p in store.pending_deliveries()} == {
        ("uk-desk", c), ("uk-desk", d), ("ru-desk", a)}

    # the log survives a restart
    store.close()
    with SQLiteStore(db) as again:
        assert again.add_deliveries("uk-desk", [a, b, c, d]) == []
        assert {p.article_id for p in again.pending_deliveries("uk-desk")} == {c, d}


def test_new_articles_await_the_alert_rules_until_marked_matched(store: SQLiteStore) -> None:
    docs = corpus()
    first = store.write([docs["ru_wire"], docs["uk"]])
    assert store.unmatched_ids() == first.new  # in the order stored
    store.mark_matched([docs["ru_wire"].id])
    assert store.unmatched_ids() == [docs["uk"].id]
    # an update (a re-crawl, a spool replay) keeps the mark as it is, set or cleared
    second = store.write([docs["ru_wire"], docs["uk"], docs["en_wire"]])
    assert second.new == [docs["en_wire"].id]
    assert store.unmatched_ids() == [docs["uk"].id, docs["en_wire"].id]
    store.mark_matched([docs["uk"].id, docs["en_wire"].id, "f" * 40])  # unknown id: ignored
    assert store.unmatched_ids() == []
    store.mark_matched([])


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


def test_dup_candidates_by_hash_and_band(store: SQLiteStore, stored: dict[str, Article]) -> None:
    wire = store.get(stored["ru_wire"].id)
    assert len(wire.minhash) == 128 and wire.lsh_bands
    by_hash = store.dup_candidates([wire.content_hash], [])
    assert [c.id for c in by_hash] == [wire.id]
    assert by_hash[0].minhash == wire.minhash
    by_band = store.dup_candidates([], wire.lsh_bands[:1])
    assert wire.id in {c.id for c in by_band}
    assert store.dup_candidates(["0" * 40, ""], ["99:nothing"]) == []

    # an update replaces the article's band keys
    short = article(wire.url, wire.title, "Короткий текст.", lang="ru", source=wire.source)
    store.write(dedup([short], store))
    assert wire.id not in {c.id for c in store.dup_candidates([], wire.lsh_bands)}


def test_search_ranks_title_hits_first_and_filters_language(
    store: SQLiteStore, stored: dict[str, Article]
) -> None:
    hits = store.search("колонии")
    ids = [h.article.id for h in hits]
    # inflected forms match: "колонии" finds колонии/колониях/колония
    assert set(ids) == {stored["ru_wire"].id, stored["ru_copy"].id, stored["ru_other"].id}
    # the two with the word in their title rank above the one with it only in the text
    assert ids[-1] == stored["ru_other"].id
    assert hits[0].rank >= hits[1].rank > hits[2].rank
    assert all("[колони" in h.snippet.lower() for h in hits)
    assert hits[0].matched_terms == ["колонии"]

    assert [h.article.lang for h in store.search("колонії")] == ["uk"]
    assert store.search("колонии", lang="en") == []
    assert len(store.search("колонии", limit=2)) == 2


def test_search_page_two_starts_where_page_one_ended(
    store: SQLiteStore, stored: dict[str, Article]
) -> None:
    check_search_pages(store)
    # the offset counts hits, not the FTS candidates the query's matcher turns away
    hits = store.search("Вагнер AND NOT опера")
    assert [h.article.id for h in hits] == [stored["ru_other"].id]
    assert store.search("Вагнер AND NOT опера", offset=1) == []
    with pytest.raises(ValueError, match="offset"):
        store.search("колонии", offset=-1)


def test_search_semantics_are_the_query_language(
    store: SQLiteStore, stored: dict[str, Article]
) -> None:
    def ids(q: str, **kw: object) -> set[str]:
        return {h.article.id for h in store.search(q, **kw)}

    # "вербовка" of IT staff is there, but recruitment of prisoners is not it
    assert ids("вербовка AND (колония OR заключённый)") == set()
    assert ids("вербовка") == {stored["ru_it"].id}
    assert ids("Вагнер AND NOT опера") == {stored["ru_other"].id}
    assert ids('"Шторм-Z" AND lang:uk') == {stored["uk"].id}
    # English words find the English originals and the translated Russian story
    assert stored["ru_wire"].id in ids("convicts")
    assert ids("relevant:false", lang="ru") == {stored["ru_composer"].id, stored["ru_it"].id}
    with pytest.raises(QueryError) as err:
        store.search("колония AND (Шторм")
    assert "column" in str(err.value)


def test_stats_count_by_language_source_and_translation(
    store: SQLiteStore, stored: dict[str, Article]
) -> None:
    docs = list(stored.values())
    stats = store.stats()
    assert stats.total == len(docs) == store.count()
    assert stats.relevant == sum(a.relevant for a in docs)
    assert stats.by_lang == {"ru": 5, "uk": 1, "en": 4}
    assert stats.by_source["reuters"] == 1 and sum(stats.by_source.values()) == len(docs)
    assert stats.by_translation == {"done": 1, "pending": 1, "skipped": len(docs) - 2}
    # counted from an index, never from the rows and their texts
    plan = store._db.execute(
        "EXPLAIN QUERY PLAN SELECT lang, source, translation_status, relevant, count(*) "
        "FROM articles GROUP BY 1, 2, 3, 4"
    ).fetchall()
    assert "COVERING INDEX articles_overview" in plan[0]["detail"]


def test_cluster_members_dated_first_oldest_first(
    store: SQLiteStore, stored: dict[str, Article]
) -> None:
    wire = store.get(stored["ru_wire"].id)
    members = store.cluster_members(wire.cluster_id)
    assert {m.id for m in members} == {wire.id, stored["ru_copy"].id}
    undated = article("https://late.example/copy", "Копия", stored["ru_copy"].text, lang="ru",
                      source="late")
    undated.published_at = None
    undated.cluster_id = wire.cluster_id
    older = article("https://old.example/copy", "Копия", stored["ru_copy"].text, lang="ru",
                    source="old", published=FETCHED.replace(year=2025))
    older.cluster_id = wire.cluster_id
    store.write([undated, older])
    ordered = [m.source for m in store.cluster_members(wire.cluster_id)]
    assert ordered[0] == "old" and ordered[-1] == "late"
    assert [m.source for m in store.cluster_members(wire.cluster_id, limit=1)] == ["old"]
    assert store.cluster_members("no-such-cluster") == []


def test_fts_tokenizer_folds_no_letters(store: SQLiteStore) -> None:
    # the raw text columns keep й/и (мой/мои), ё/е (всё/все) and every other diacritic
    # apart (remove_diacritics 0: "cafe" does not find "café")
    store.write([article("https://example.org/t", "Мой дом и всё", "Кафе café", lang="ru",
                         source="s")])

    def raw(expr: str) -> int:
        return store._db.execute(
            "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?", (expr,)
        ).fetchone()[0]

    assert raw("title : мой") == 1
    assert raw("title : мои") == 0
    assert raw("title : всё") == 1
    assert raw("title : все") == 0
    assert raw("text : café") == 1
    assert raw("text : cafe") == 0


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
        assert [h.article.id for h in store.search("колонию")] == ["a1"]
    # opening again applies nothing twice
    with SQLiteStore(db) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.count() == 1


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
    with pytest.raises(StoreError, match="not a usable Dozor database"):
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
            reader.search("колония", limit=5)
            reader.count()
        thread.join()
        assert errors == []
        assert reader.count() == 200
        assert len(reader.search("колония", limit=500)) == 200


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
    store.search("колонии", lang="ru")
    store.unmatched_ids()
    store.cluster_deliveries("rule", [wire.cluster_id])
    store.folded_deliveries("rule", [wire.id])
    store._db.set_trace_callback(None)

    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) >= 10
    for sql in selects:
        plan = " | ".join(r[3] for r in store._db.execute("EXPLAIN QUERY PLAN " + sql))
        # the partial index of unmatched articles holds only those: scanning it is the point
        plan = plan.replace("SCAN articles USING INDEX articles_unmatched", "")
        assert not re.search(r"\bSCAN (a|articles)\b", plan), (sql, plan)
        # nor all the deliveries of a rule (a log that only grows)
        assert not re.search(r"\b(SCAN|SEARCH) (d|deliveries) USING PRIMARY KEY \(rule=\?\)",
                             plan), (sql, plan)

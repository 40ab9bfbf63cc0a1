"""SQLite store against a bare FTS5 table of the same texts, side by side in one run:
size per article, writes per second and, per query kind, the search time against the
bare table's plain equivalent.

    .venv/bin/python -m bench.store [--articles 100000] [--batch 50] [PAGES_DIR]

The articles are built from the shared corpus of real news pages like real records:
sentences of the extracted pages mixed within each language (seeded, so every text is
distinct and of news length), with titles, normalised terms, English translations for
two thirds of the Russian and Ukrainian ones, sources, dates, relevance and the dedup
fingerprint. Terms and fingerprints are computed before timing starts (that is the
stages' cost, not the store's); the store writes through its own writer, so its real
schema is measured.

The bare side is what a plain design would hold: one FTS5 table of the texts (title,
text, title_en, text_en) and a table of the fields queried (lang, relevant, source,
published_at), each with a plain index. Its queries are the plain SQL equivalents,
returning the same rows' fields a search hit shows.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench.corpus import DEFAULT_PAGES, load_pages
from pipelines import extract, language
from pipelines.article import Article, utcnow
from pipelines.dedup import fingerprint
from pipelines.query import Query, parse_query
from pipelines.store.sqlite import SQLiteStore
from pipelines.terms.normalisation import normalise

LANGUAGES = ("ru", "uk", "en")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_SENTENCES_PER_ARTICLE = 15


@dataclass(frozen=True)
class Kind:
    """A query kind: the store's query and the bare table's plain SQL for it."""

    name: str
    query: str
    bare: str  # the plain SQL, its FTS5 expression (if any) bound as ?1
    match: str | None = None
    sort: str = "relevance"


# a hit as a search shows it: the row's fields and a passage of its text, around the
# matched words (FTS5's snippet) or, with no words to match, from the text's start;
# the best 20 are chosen first, so only they get one
_FIELDS = "m.n, m.id, m.lang, m.source, m.published_at, f.title"
_RANKED = "FROM docs_fts AS f JOIN meta AS m ON m.n = f.rowid WHERE docs_fts MATCH ?1"


def _matched(where: str = "", order: str = "bm25(docs_fts)") -> str:
    top = f"SELECT f.rowid {_RANKED} {where} ORDER BY {order} LIMIT 20"
    return (f"SELECT {_FIELDS}, snippet(docs_fts, 1, '[', ']', '…', 40) {_RANKED} "
            f"AND f.rowid IN ({top}) ORDER BY {order}")


def _listed(where: str) -> str:
    return (f"SELECT {_FIELDS}, substr(f.text, 1, 240) FROM meta AS m "
            f"JOIN docs_fts AS f ON f.rowid = m.n WHERE {where} "
            "ORDER BY m.published_at DESC LIMIT 20")


KINDS = (
    Kind("term", "задержание", _matched(), match="задержание"),
    Kind("term OR term", "russia OR ukraine", _matched(), match="russia OR ukraine"),
    Kind("phrase", '"уголовное дело"', _matched(), match='"уголовное дело"'),
    Kind("field only", "lang:uk AND relevant:false",
         _listed("m.lang = 'uk' AND m.relevant = 0")),
    Kind("date range", "published:[now-3d TO now-2d]",
         _listed("m.published_at >= ? AND m.published_at <= ?")),
    Kind("term + field", "полиция AND lang:ru AND relevant:true",
         _matched("AND m.lang = 'ru' AND m.relevant = 1"), match="полиция"),
    Kind("sort newest", "полиция", _matched(order="m.published_at DESC"),
         match="полиция", sort="newest"),
)

_BARE_SCHEMA = """
CREATE VIRTUAL TABLE docs_fts USING fts5(title, text, title_en, text_en,
                                         tokenize='unicode61 remove_diacritics 0');
CREATE TABLE meta (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, lang TEXT NOT NULL,
                   relevant INTEGER NOT NULL, source TEXT NOT NULL, published_at TEXT);
CREATE INDEX meta_lang ON meta(lang);
CREATE INDEX meta_relevant ON meta(relevant);
CREATE INDEX meta_source ON meta(source);
CREATE INDEX meta_published ON meta(published_at);
"""


class Pool:
    """Sentences of the corpus per language, each with its normalised terms."""

    def __init__(self, pages_dir: Path) -> None:
        pages = [page for _, page in load_pages(pages_dir)]
        self.sentences: dict[str, list[tuple[str, str]]] = {lang: [] for lang in LANGUAGES}
        seen: set[str] = set()
        for doc in language.detect(extract.extract(pages), LANGUAGES):
            if doc.lang not in LANGUAGES:
                continue
            for raw in _SENTENCE_END.split(doc.text):
                sentence = " ".join(raw.split())
                if len(sentence.split()) >= 6 and sentence not in seen:
                    seen.add(sentence)
                    terms = " ".join(normalise(sentence, doc.lang))
                    self.sentences[doc.lang].append((sentence, terms))

    def texts(self, lang: str, rng: random.Random) -> tuple[str, str, str]:
        """A title, a text of paragraphs and the terms of both, in `lang`."""
        chosen = rng.sample(self.sentences[lang], k=_SENTENCES_PER_ARTICLE)
        title = " ".join(chosen[0][0].split()[:12])
        text = "\n".join(" ".join(s for s, _ in chosen[j:j + 3])
                         for j in range(1, len(chosen), 3))
        terms = " ".join([*normalise(title, lang), *(t for _, t in chosen[1:])])
        return title, text, terms


def build_articles(pool: Pool, count: int) -> list[Article]:
    """`count` distinct articles as the stages hand them to the store."""
    rng = random.Random(7)
    now = utcnow()
    out = []
    for i in range(count):
        lang = LANGUAGES[i % len(LANGUAGES)]
        title, text, terms = pool.texts(lang, rng)
        url = f"https://{lang}.bench.example/news/{i}"
        article = Article(
            url=url, canonical_url=url, source=f"{lang}-outlet-{i % 7}",
            fetched_at=now - timedelta(minutes=i) + timedelta(seconds=30),
            first_seen_at=now - timedelta(minutes=i) + timedelta(seconds=10),
            discovered_via="feed", title=title, text=text,
            authors=[f"Author {i % 13}"], description=text.split("\n")[0][:200],
            site_name=f"{lang} outlet {i % 7}", html_lang=lang, lang=lang,
            lang_confidence=0.99,
            published_at=None if i % 20 == 19 else now - timedelta(minutes=i),
            published_from="page", relevant=i % 5 == 0, possible=i % 5 == 1,
            score=round(rng.random() * 5, 2),
            matched_terms=["полиция"] if i % 5 == 0 else [],
            warc_file=f"crawl-{i // 1000:05d}.warc.gz",
            warc_record_id=f"<urn:uuid:{rng.getrandbits(128):032x}>",
            derived_version="bench", terms=terms,
        )
        if lang != "en" and i % 3 != 2:
            title_en, text_en, terms_en = pool.texts("en", rng)
            article.title_en, article.text_en = title_en, text_en
            article.terms = f"{terms} {terms_en}"
            article.translation_status = "done"
            article.translation_engine = "argos"
            article.translation_model = f"{lang}-en"
        out.append(article)
    return out


def _fingerprints(texts: list[tuple[str, str]]) -> list[tuple[str, list[int], list[str]]]:
    out = []
    for title, text in texts:
        article = Article(url="", canonical_url="", source="", fetched_at=utcnow(),
                          title=title, text=text)
        fingerprint(article)
        out.append((article.content_hash, article.minhash, article.lsh_bands))
    return out


def add_fingerprints(articles: list[Article]) -> None:
    """The dedup stage's fingerprint of every article (one cluster each), on every core."""
    texts = [(a.title, a.text) for a in articles]
    step = 2000
    with ProcessPoolExecutor(max(len(os.sched_getaffinity(0)), 1)) as pool:
        parts = pool.map(_fingerprints, (texts[i:i + step] for i in range(0, len(texts), step)))
        results = [r for part in parts for r in part]
    for article, (content_hash, minhash, bands) in zip(articles, results, strict=True):
        article.content_hash, article.minhash, article.lsh_bands = content_hash, minhash, bands
        article.cluster_id = article.id


def batches(articles: list[Article], size: int) -> Iterator[list[Article]]:
    for i in range(0, len(articles), size):
        yield articles[i:i + size]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_time(action: Callable[[], object], runs: int) -> float:
    action()  # warm: the page cache and the compiled statements
    return statistics.median(timed(action) for _ in range(runs))


def write_bare(db: sqlite3.Connection, batch: list[Article], start: int) -> None:
    with db:
        db.executemany(
            "INSERT INTO docs_fts(rowid, title, text, title_en, text_en) VALUES (?, ?, ?, ?, ?)",
            ((start + k, a.title, a.text, a.title_en, a.text_en) for k, a in enumerate(batch)))
        db.executemany(
            "INSERT INTO meta VALUES (?, ?, ?, ?, ?, ?)",
            ((start + k, a.id, a.lang, int(a.relevant), a.source,
              a.published_at.isoformat() if a.published_at else None)
             for k, a in enumerate(batch)))


def open_bare(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(_BARE_SCHEMA)
    db.isolation_level = "DEFERRED"
    return db


def file_size(db: sqlite3.Connection, path: Path) -> int:
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the file
    wal = path.with_name(path.name + "-wal")  # what a reader kept from the checkpoint
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def bare_params(kind: Kind, query: Query) -> list[object]:
    if kind.match:
        return [kind.match]
    if kind.name == "date range":
        # the instants the store's compiled query resolved
        dates = query._root  # noqa: SLF001 - the bench reads the compiled bounds
        return [dates.low.isoformat(), dates.high.isoformat()]
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="?", type=Path, default=DEFAULT_PAGES)
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=50,
                        help="articles per write (a stage batch; default 50)")
    parser.add_argument("--runs", type=int, default=15, help="timed runs per query")
    args = parser.parse_args()
    if not (args.pages / "manifest.json").exists():
        sys.exit(f"no corpus at {args.pages} (manifest.json missing)")

    started = time.perf_counter()
    articles = build_articles(Pool(args.pages), args.articles)
    add_fingerprints(articles)
    n = len(articles)
    chars = sum(len(a.title) + len(a.text) + len(a.title_en or "") + len(a.text_en or "")
                for a in articles)
    print(f"{n} articles ({chars / n:.0f} characters of text each with translations), "
          f"built in {time.perf_counter() - started:.0f} s; writes of {args.batch}")

    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "store.db")
        store_s = timed(lambda: [store.write(b) for b in batches(articles, args.batch)])
        bare_path = Path(tmp) / "bare.db"
        bare = open_bare(bare_path)
        bare_s = timed(lambda: [write_bare(bare, b, k * args.batch + 1)
                                for k, b in enumerate(batches(articles, args.batch))])
        store_size = file_size(store._db, store.path)  # noqa: SLF001
        bare_size = file_size(bare, bare_path)

        print(f"\n{'':22} {'store':>10} {'bare':>10} {'ratio':>7}")
        print(f"{'size per article (kB)':22} {store_size / n / 1e3:10.2f} "
              f"{bare_size / n / 1e3:10.2f} {store_size / bare_size:7.2f}")
        print(f"{'writes per second':22} {n / store_s:10.0f} {n / bare_s:10.0f} "
              f"{store_s / bare_s:7.2f}")
        print(f"\nsearch, limit 20, median of {args.runs} (ms)")
        print(f"{'kind':14} {'store':>8} {'bare':>8} {'ratio':>7} {'hits':>5} {'bare':>5}  query")
        for kind in KINDS:
            query = parse_query(kind.query)  # compiled once, as a rule or a search is
            hits = store.search(query, sort=kind.sort)
            params = bare_params(kind, query)
            bare_hits = bare.execute(kind.bare, params).fetchall()
            store_t = median_time(lambda q=query, k=kind: store.search(q, sort=k.sort),
                                  args.runs)
            bare_t = median_time(lambda k=kind, p=params: bare.execute(k.bare, p).fetchall(),
                                 args.runs)
            print(f"{kind.name:14} {store_t * 1e3:8.2f} {bare_t * 1e3:8.2f} "
                  f"{store_t / bare_t:7.2f} {len(hits):5d} {len(bare_hits):5d}  {kind.query}")
        store.close()
        bare.close()


if __name__ == "__main__":
    main()

"""SQLite store: write throughput, batched against one transaction per article, dedup
cost and search latency, measured side by side in one run.

    .venv/bin/python -m bench.store [--articles 1000] [PAGES_DIR]

The articles are built from the shared corpus of real news pages: each one mixes
sentences of the extracted pages in one language (seeded), so every text is distinct
and of news length. Their terms are analysed before timing starts: that is
the terms stage's cost, not the store's.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from bench.corpus import DEFAULT_PAGES, load_pages
from pipelines import extract, language
from pipelines.article import Article, utcnow
from pipelines.dedup import dedup
from pipelines.query import parse_query
from pipelines.store.sqlite import SQLiteStore
from pipelines.terms.normalisation import analyse

LANGUAGES = ("ru", "uk", "en")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
QUERIES = (
    "задержание",
    "полиция AND (митинг OR протест)",
    '"уголовное дело"',
    "преслед*",
    "Україна AND бюджет",
    "russia OR ukraine",
    "museum AND NOT war",
    "lang:uk AND relevant:false",
)


def build_articles(pages_dir: Path, count: int) -> list[Article]:
    """`count` distinct articles: sentences of the corpus pages (extracted and detected
    as the crawler would), mixed within each language with a fixed seed."""
    pages = [page for _, page in load_pages(pages_dir)]
    sentences: dict[str, list[str]] = {}
    for doc in language.detect(extract.extract(pages), LANGUAGES):
        for sentence in _SENTENCE_END.split(doc.text):
            if len(sentence.split()) >= 6 and doc.lang in LANGUAGES:
                sentences.setdefault(doc.lang, []).append(" ".join(sentence.split()))
    rng = random.Random(7)
    now = utcnow()
    out = []
    for i in range(count):
        lang = LANGUAGES[i % len(LANGUAGES)]
        chosen = rng.sample(sentences[lang], k=min(15, len(sentences[lang])))
        url = f"https://{lang}.bench.example/news/{i}"
        out.append(Article(
            url=url,
            canonical_url=url,
            source=f"{lang}-outlet-{i % 7}",
            fetched_at=now,
            title=" ".join(chosen[0].split()[:12]),
            text="\n".join(" ".join(chosen[j:j + 3]) for j in range(1, len(chosen), 3)),
            lang=lang,
            published_at=now - timedelta(minutes=i),
            relevant=i % 5 == 0,
        ))
    return analyse(out)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="?", type=Path, default=DEFAULT_PAGES)
    parser.add_argument("--articles", type=int, default=1000)
    args = parser.parse_args()
    if not (args.pages / "manifest.json").exists():
        sys.exit(f"no corpus at {args.pages} (manifest.json missing)")

    articles = build_articles(args.pages, args.articles)
    words = sum(len(a.text.split()) for a in articles)
    print(f"{len(articles)} articles, {words / len(articles):.0f} words each on average")

    with tempfile.TemporaryDirectory() as tmp:
        batched = SQLiteStore(Path(tmp) / "batched.db")
        dedup_s = timed(lambda: dedup(articles, batched))
        clusters = len({a.cluster_id for a in articles})
        one_call = timed(lambda: batched.write(articles))
        update = timed(lambda: batched.write(articles))

        crawl = SQLiteStore(Path(tmp) / "crawl.db")
        crawl_s = timed(lambda: [crawl.write(articles[i:i + 50])
                                 for i in range(0, len(articles), 50)])
        single = SQLiteStore(Path(tmp) / "single.db")
        single_s = timed(lambda: [single.write([a]) for a in articles])

        n = len(articles)
        print(f"dedup (MinHash + LSH lookup):   {n / dedup_s:8.0f} articles/s "
              f"({clusters} clusters)")
        print(f"write, one call of {n}:       {n / one_call:8.0f} articles/s")
        print(f"write again (all updates):      {n / update:8.0f} articles/s")
        print(f"write, batches of 50:           {n / crawl_s:8.0f} articles/s")
        print(f"write, one article per call:    {n / single_s:8.0f} articles/s")
        print(f"batched / per-article ratio:    {single_s / one_call:8.1f}x")
        batched._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the file
        size = batched.path.stat().st_size
        print(f"database size: {size / 1e6:.1f} MB ({size / n / 1e3:.1f} kB per article)")

        print("\nsearch latency (median of 20, limit 20):")
        for query in QUERIES:
            # compiled and searched, as `dozor search` does
            hits = batched.search(parse_query(query))
            runs = [timed(lambda q=query: batched.search(parse_query(q))) for _ in range(20)]
            print(f"  {statistics.median(runs) * 1000:7.1f} ms  {len(hits):3d} hits  {query}")
        for store in (batched, crawl, single):
            store.close()


if __name__ == "__main__":
    main()

"""The stages alone against raw `trafilatura.bare_extraction` on the same bytes: pages/s
and CPU per page, per stage, measured side by side in one run.

    .venv/bin/python -m bench.stages [--passes 3] [PAGES_DIR]

Every page of the shared corpus goes through the stages in `Pipeline.process` order
(extract, language, terms, relevance, dedup, store write into a temporary SQLite file)
and, interleaved pass by pass, through a bare `trafilatura.bare_extraction(body, url=...)`
(trafilatura's own decoding, its defaults). Each pass uses distinct URLs, so later passes
meet the earlier ones as exact copies, as a crawl meets wire stories. CPU time is the
process's own (`time.process_time`): other work on a shared machine does not count.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import trafilatura

from bench.corpus import DEFAULT_PAGES, load_pages
from pipelines import dedup, extract, language, relevance
from pipelines.article import RawPage
from pipelines.store.sqlite import SQLiteStore
from pipelines.terms.normalisation import analyse

LANGUAGES = ("ru", "uk", "en")
TOPIC = Path(__file__).resolve().parents[1] / "dozor" / "defaults" / "topic.yaml"
BATCH = 50


def cpu(action: Callable[[], object], into: dict[str, float], name: str) -> object:
    start = time.process_time()
    out = action()
    into[name] += time.process_time() - start
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="?", type=Path, default=DEFAULT_PAGES)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    if not (args.pages / "manifest.json").exists():
        sys.exit(f"no corpus at {args.pages} (manifest.json missing)")
    corpus = [page for _, page in load_pages(args.pages)]
    profile = relevance.load_topic(TOPIC)
    # warm-up outside the clock: dictionaries, langdetect profiles, compiled queries
    relevance.classify(analyse(language.detect(extract.extract(corpus[:3]), LANGUAGES)),
                       profile)
    trafilatura.bare_extraction(corpus[0].body, url=corpus[0].url)

    spent: dict[str, float] = defaultdict(float)
    raw = 0.0
    pages = 0
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "stages.db")
        for n in range(args.passes):
            batch_pages = [dataclasses.replace(p, url=f"{p.url}?pass={n}",
                                               final_url=f"{p.url}?pass={n}") for p in corpus]
            start = time.process_time()
            for page in batch_pages:
                trafilatura.bare_extraction(page.body, url=page.url)
            raw += time.process_time() - start
            for i in range(0, len(batch_pages), BATCH):
                run_stages(batch_pages[i:i + BATCH], store, profile, spent)
            pages += len(batch_pages)
        store.close()
    wall = time.perf_counter() - wall

    total = sum(spent.values())
    print(f"{pages} pages ({len(corpus)} corpus pages x {args.passes} passes), "
          f"wall {wall:.1f} s for both sides")
    print(f"raw trafilatura.bare_extraction: {raw / pages * 1000:7.1f} ms CPU/page "
          f"{pages / raw:7.1f} pages/s")
    print(f"Dozor stages, all:               {total / pages * 1000:7.1f} ms CPU/page "
          f"{pages / total:7.1f} pages/s")
    for name, seconds in spent.items():
        print(f"  {name:<10} {seconds / pages * 1000:7.1f} ms/page  {seconds / total:6.1%}")
    print(f"ratio stages / raw trafilatura:  {total / raw:7.2f}x  (target <= 1.5x)")


def run_stages(pages: list[RawPage], store: SQLiteStore, profile: relevance.TopicProfile,
               spent: dict[str, float]) -> None:
    articles = cpu(lambda: extract.extract(pages), spent, "extract")
    cpu(lambda: language.detect(articles, LANGUAGES), spent, "language")
    cpu(lambda: analyse(articles), spent, "terms")
    cpu(lambda: relevance.classify(articles, profile), spent, "relevance")
    kept = cpu(lambda: dedup.dedup(articles, store), spent, "dedup")
    cpu(lambda: store.write(kept), spent, "store")


if __name__ == "__main__":
    main()

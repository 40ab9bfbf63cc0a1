"""Runs one real crawl (or one reprocess) in its own process for the crawl tests.

Twisted's reactor cannot restart inside pytest, so each crawl is a subprocess:
    python -m tests.crawl_harness crawl --sources S --db D --out PAGES.jsonl [...]
    python -m tests.crawl_harness reprocess --warc W --db D --out PAGES.jsonl
The stages are replaced by a recorder that writes each RawPage it is handed as one JSON
line (the crawler's output is what these tests check); the store is a real SQLite file.
The figures are printed as JSON on the last line of stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.article import RawPage
from pipelines.store import Store, open_store


def page_record(page: RawPage) -> dict:
    return {
        "url": page.url,
        "final_url": page.final_url,
        "status": page.status,
        "source": page.source,
        "discovered_via": page.discovered_via,
        "content_type": page.content_type,
        "body_sha1": hashlib.sha1(page.body).hexdigest(),
        "body_len": len(page.body),
        "fetched_at": page.fetched_at.isoformat(),
        "source_lang": page.source_lang,
        "feed_lang": page.feed_lang,
        "feed_title": page.feed_title,
        "feed_published": page.feed_published.isoformat() if page.feed_published else None,
        "warc_file": page.warc_file,
        "warc_record_id": page.warc_record_id,
    }


@dataclass
class Recorder:
    store: Store
    out: Path
    fail: bool = False
    batches: list[int] = field(default_factory=list)

    def process(self, pages: list[RawPage]) -> None:
        self.batches.append(len(pages))
        if self.fail:
            raise RuntimeError("the stages failed on purpose")
        with self.out.open("a", encoding="utf-8") as fh:
            for page in pages:
                fh.write(json.dumps(page_record(page), ensure_ascii=False) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["crawl", "reprocess"])
    parser.add_argument("--sources", type=Path)
    parser.add_argument("--warc", type=Path)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--allow-private-network", action="store_true")
    parser.add_argument("--fail-batches", action="store_true")
    args = parser.parse_args(argv)

    store = open_store(db=args.db)
    recorder = Recorder(store, args.out, fail=args.fail_batches)
    args.out.touch()
    try:
        if args.mode == "crawl":
            from crawler.runner import crawl
            from dozor.config import load_sources

            figures = crawl(load_sources(args.sources), recorder,
                            allow_private_network=args.allow_private_network)
        else:
            from dozor.run import reprocess_archive

            figures = vars(reprocess_archive(recorder, args.warc))
    finally:
        store.close()
    figures["batch_sizes"] = recorder.batches
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

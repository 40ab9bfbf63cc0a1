"""Runs one real crawl (or one reprocess) in its own process for the crawl tests.

Twisted's reactor cannot restart inside pytest, so each crawl is a subprocess:
    python -m tests.support.crawl_harness crawl --sources S --db D --out PAGES.jsonl [...]
    python -m tests.support.crawl_harness reprocess --warc W --db D --out PAGES.jsonl
The stages are replaced by a recorder that writes each RawPage it is handed as one JSON
line (the crawler's output is what these tests check); the store is a real SQLite file.
The figures are printed as JSON on the last line of stdout. `launch` runs it from a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipelines.article import RawPage
from pipelines.config.config import Config
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
        """Record the batch; with `fail`, then raise as a broken stage would."""
        self.batches.append(len(pages))
        with self.out.open("a", encoding="utf-8") as fh:
            for page in pages:
                fh.write(json.dumps(page_record(page), ensure_ascii=False) + "\n")
        if self.fail:
            raise RuntimeError("the stages failed on purpose")


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
            from pipelines.config.sources import load_sources

            figures = crawl(load_sources(args.sources), recorder, Config.from_env(),
                            allow_private_network=args.allow_private_network)
        else:
            from dozor.run import reprocess_archive

            figures = vars(reprocess_archive(recorder, Config.from_env(), args.warc))
    finally:
        store.close()
    figures["batch_sizes"] = recorder.batches
    print(json.dumps(figures))
    return 0


REPO = Path(__file__).resolve().parents[2]

# fast and deterministic on 127.0.0.1: no throttling, one retry, a one-second timeout
TEST_CRAWL = {"autothrottle": False, "download_timeout": 1, "retry_times": 1,
              "batch_size": 3, "download_maxsize": 1024 * 1024}


@dataclass
class Outcome:
    figures: dict
    pages: list[dict]
    log: str  # the subprocess's stderr: Scrapy's and Dozor's log lines

    def page(self, final_path: str) -> dict:
        matches = [p for p in self.pages if p["final_url"].endswith(final_path)]
        assert len(matches) == 1, (final_path, [p["final_url"] for p in self.pages])
        return matches[0]


def write_sources(path: Path, sources: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"sources": sources}, allow_unicode=True), encoding="utf-8")
    return path


def launch(mode: str, workdir: Path, *args: str, env: dict[str, str] | None = None,
           crawl_settings: dict | None = None) -> Outcome:
    """Run the harness in a subprocess with its data dir and settings under `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "dozor.yaml"
    config.write_text(yaml.safe_dump({"crawl": {**TEST_CRAWL, **(crawl_settings or {})}}))
    out = workdir / f"pages-{len(list(workdir.glob('pages-*.jsonl')))}.jsonl"
    inherited = {k: v for k, v in os.environ.items()
                 if k not in ("DOZOR_ALLOWED_NETWORKS", "DOZOR_SOURCES", "DOZOR_DB")}
    full_env = {**inherited, "DOZOR_DATA_DIR": str(workdir / "data"),
                "DOZOR_CONFIG": str(config), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.support.crawl_harness", mode, "--out", str(out), *args],
        cwd=REPO, env=full_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    pages = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return Outcome(figures, pages, proc.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Progress of long work on stderr, as a user sees it: `dozor run` crawling the demo site
on 127.0.0.1 (with the test translation models) writes a plain line every interval when
stderr is no terminal, `dozor revisit` writes JSON log records with --log-format json,
and `dozor reprocess` draws rich's live display on a pseudo-terminal."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
import yaml
from typer.core import TyperCommand

from dozor.cli.progress import PlainProgress, progress_shown
from dozor.demo.server import DemoServer
from pipelines import models
from pipelines.article import Article
from pipelines.progress import Count, Snapshot
from pipelines.store import open_store
from tests.conftest import REPO

INTERVAL = "0.2"


@dataclass
class Crawled:
    env: dict[str, str]
    db: Path
    sources: Path
    result: subprocess.CompletedProcess[str]
    articles: list[Article]


def environment(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DOZOR_") and k not in ("FORCE_TERMINAL", "NO_COLOR",
                                                        "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    return {**env, "DOZOR_DATA_DIR": str(data), "COLUMNS": "200"}


def dozor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "dozor", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory, mt_packages: dict[str, Path]
            ) -> Iterator[Crawled]:
    work = tmp_path_factory.mktemp("progress")
    for lang in ("ru", "uk"):
        models.install_file(mt_packages[lang], work / "data" / "models")
    with DemoServer() as server:
        # the demo's own Telegram channels, not t.me's
        env = {**environment(work / "data"), "DOZOR_TELEGRAM_URL": server.base}
        sources = work / "sources.yaml"
        sources.write_text(yaml.safe_dump(server.sources(), allow_unicode=True),
                           encoding="utf-8")
        db = work / "dozor.db"
        result = dozor(env, "run", "--sources", str(sources), "--db", str(db),
                       "--allow-private-network", "--progress-interval", INTERVAL)
        store = open_store(db=db)
        try:
            articles = list(store.iter_articles())
        finally:
            store.close()
        yield Crawled(env, db, sources, result, articles)


def progress_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("progress: ")]


def test_run_without_a_terminal_writes_plain_lines_with_the_real_counts(crawled: Crawled
                                                                         ) -> None:
    lines = progress_lines(crawled.result.stderr)
    *periodic, last = lines
    # the crawl takes seconds (robots.txt, AutoThrottle's first delay): lines every 0.2 s
    assert len(periodic) >= 2, crawled.result.stderr
    assert all(line.startswith("progress: crawl: ") for line in periodic)
    fetched = [int(re.search(r"fetched (\d+) pages", line)[1]) for line in periodic]
    assert fetched == sorted(fetched)
    assert all(re.search(r"; \d+\.\d pages/s$", line) for line in periodic)

    # the last line is the crawl's final tally: what the run stored, per source
    pages = int(re.search(r", (\d+) pages,", crawled.result.stdout)[1])
    per_source = Counter(a.source for a in crawled.articles)
    assert len(crawled.articles) == pages and len(per_source) >= 3
    translated = sum(a.translation_status == "done" for a in crawled.articles)
    selected = sum(a.translation_status != "skipped" for a in crawled.articles)
    assert translated > 0
    parts = ", ".join(f"{s} {n}/{n}" for s, n in sorted(per_source.items()))
    assert last == (f"progress: crawl done: fetched {pages} pages, processed {pages} of "
                    f"{pages}, translated {translated} of {selected}; per source "
                    f"fetched/processed: {parts}; " + last.rsplit("; ", 1)[1]), last
    # progress is stderr's: the command's own output is as it was
    assert "progress: " not in crawled.result.stdout


def test_revisit_progress_as_json_log_records(crawled: Crawled) -> None:
    result = dozor(crawled.env, "--log-format", "json", "revisit", "--all", "--db",
                   str(crawled.db), "--allow-private-network", "--progress-interval", INTERVAL)
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    progress = [r for r in records if r["logger"] == "dozor.progress"]
    assert progress, result.stderr
    assert all(r["level"] == "info" and r["message"].startswith("progress: revisit")
               for r in progress)
    due = len(crawled.articles)
    checked = int(re.search(r"revisits: (\d+) checked", result.stdout)[1])
    assert checked == due
    assert progress[-1]["message"].startswith(
        f"progress: revisit done: checked {due} of {due} revisits"), progress[-1]
    # the figures themselves, for a log collector
    assert progress[-1]["progress"] == {
        "work": "revisit", "unit": "revisits", "final": True, "parts": {},
        "counts": [{"label": "checked", "done": due, "total": due}]}
    assert all(r["progress"]["counts"][0]["done"] <= due for r in progress)
    assert "━" not in result.stderr  # no live display among the records


def test_reprocess_on_a_terminal_draws_rich_progress(crawled: Crawled) -> None:
    primary, replica = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "dozor", "reprocess", "--db", str(crawled.db), "--sources",
         str(crawled.sources)], cwd=REPO, env={**crawled.env, "TERM": "xterm-256color"},
        stdout=subprocess.PIPE, stderr=replica, text=True)
    os.close(replica)
    screen = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal's other side closed: the command is done
            break
        if not chunk:
            break
        screen += chunk
    os.close(primary)
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == 0, stdout + screen.decode(errors="replace")
    pages = len(crawled.articles)
    assert f"reprocess: {pages} archived pages" in stdout
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode("utf-8", errors="replace"))
    assert "\x1b[" in screen.decode(errors="replace")  # drawn with terminal controls
    assert "━" in text  # rich's bars
    # the last frame: the records processed (the total unknown until the end) and files read
    assert re.search(rf"reprocess processed\s.*━.*\b{pages}/{pages}\b", text), text[-2000:]
    files = len(list((Path(crawled.env["DOZOR_DATA_DIR"]) / "warc").glob("*.warc.gz")))
    assert re.search(rf"WARC files\s.*━.*\b{files}/{files}\b", text), text[-2000:]
    assert "progress: " not in text  # no plain lines on a terminal


def test_plain_lines_keep_to_the_interval_and_short_work_stays_quiet() -> None:
    stream = io.StringIO()
    log = logging.getLogger("tests.progress")
    handler = logging.StreamHandler(stream)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        reporter = PlainProgress(0.05, log)

        def snap(done: int, final: bool = False) -> Snapshot:
            return Snapshot("reprocess", "pages", (Count("processed", done, 9),), final=final)

        reporter(snap(0))
        reporter(snap(1, final=True))  # over within one interval: the summary says it all
        assert stream.getvalue() == ""
        reporter(snap(0))
        reporter(snap(2))  # too soon for a line
        time.sleep(0.06)
        reporter(snap(5))
        reporter(snap(9, final=True))
    finally:
        log.removeHandler(handler)
    first, last = stream.getvalue().splitlines()
    assert first.startswith("progress: reprocess: processed 5 of 9 pages; ")
    assert last.startswith("progress: reprocess done: processed 9 of 9 pages; ")


def test_no_progress_gives_no_reporter() -> None:
    with progress_shown(typer.Context(TyperCommand("demo")), False, 0.1) as reporter:
        assert reporter is None

"""The analyst's command line on a real database file: search's date, source, sort and
paging options, export as CSV or JSON Lines filtered by a query, --version, dozor help
query, and read-only commands refusing a database that is not there."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dozor.cli import app
from dozor.cli.help import QUERY_HELP
from dozor.export import CSV_FIELDS
from pipelines.dedup import dedup
from pipelines.query import parse_query
from pipelines.store.sqlite import SQLiteStore
from tests.support.articles import FETCHED, corpus
from tests.support.cli import wait_until_serving
from tests.support.smtpserver import free_port

runner = CliRunner()


@pytest.fixture
def docs() -> dict:
    docs = corpus()
    docs["ru_wire"].warc_file = "crawl-00001.warc.gz"
    docs["ru_wire"].warc_record_id = "<urn:uuid:0b1c2d3e-0000-4000-8000-000000000001>"
    docs["en_other"].published_at = FETCHED - timedelta(days=5)
    return docs


@pytest.fixture
def db(tmp_path: Path, docs: dict) -> Path:
    path = tmp_path / "news.db"
    with SQLiteStore(path) as store:
        store.write(dedup(list(docs.values()), store))
    return path


def _search(db: Path, *args: str) -> list[dict]:
    result = runner.invoke(app, ["search", *args, "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_search_since_until_source_sort_offset(db: Path, docs: dict) -> None:
    everything = "relevant:true OR relevant:false"
    # since/until are publication days, both included
    assert {h["source"] for h in _search(db, everything, "--until", "2026-05-10")} == {
        "meduza", "guardian"}
    assert {h["source"] for h in _search(db, everything, "--since", "2026-05-07",
                                         "--until", "2026-05-07")} == {"guardian"}
    recent = _search(db, everything, "--since", "2026-05-11", "--limit", "50")
    assert len(recent) == len(docs) - 2
    assert {h["source"] for h in _search(db, "convicts OR заключённых", "--source", "meduza",
                                         "--source", "guardian")} == {"meduza", "guardian"}
    newest = _search(db, everything, "--sort", "newest", "--limit", "50")
    dates = [h["published_at"] for h in newest]
    assert dates == sorted(dates, reverse=True) and newest[-1]["source"] == "guardian"
    oldest = _search(db, everything, "--sort", "oldest", "--limit", "3")
    assert [h["source"] for h in oldest[:2]] == ["guardian", "meduza"]
    page2 = _search(db, everything, "--sort", "newest", "--limit", "3", "--offset", "3")
    assert [h["id"] for h in page2] == [h["id"] for h in newest[3:6]]
    result = runner.invoke(app, ["search", "x", "--db", str(db), "--since", "last week"])
    assert result.exit_code == 2 and "is not a date" in result.stderr
    result = runner.invoke(app, ["search", "x", "--db", str(db), "--sort", "best"])
    assert result.exit_code == 2


def test_export_csv_and_jsonl_with_a_query_id_and_warc(db: Path, docs: dict,
                                                       tmp_path: Path) -> None:
    query = "title:колонии OR published:<2026-05-11"
    expected = {a.id for a in docs.values() if parse_query(query).matches(a)}
    assert len(expected) == 4  # the two colony titles, the two older stories
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["export", "--db", str(db), "--format", "csv",
                                 "--query", query, "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == CSV_FIELDS
    assert {r["id"] for r in rows} == expected
    wire = next(r for r in rows if r["id"] == docs["ru_wire"].id)
    assert wire["warc_file"] == "crawl-00001.warc.gz"
    assert wire["warc_record_id"].startswith("<urn:uuid:")
    assert json.loads(wire["matched_terms"]) == ["колония", "Шторм-Z"]
    assert wire["title"] == docs["ru_wire"].title  # quotes, commas and «» survive
    result = runner.invoke(app, ["export", "--db", str(db), "--query", query,
                                 "--relevant-only"])
    jsonl = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["id"] for r in jsonl} == {a.id for a in docs.values()
                                        if a.id in expected and a.relevant}
    assert all("warc_record_id" in r and r["id"] for r in jsonl)
    result = runner.invoke(app, ["export", "--db", str(db), "--query", "title:("])
    assert result.exit_code == 2 and "syntax error" in result.stderr


def test_version_and_query_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and re.fullmatch(r"dozor \d+\.\d+\.\d+\n", result.stdout)
    result = runner.invoke(app, ["help", "query"])
    assert result.exit_code == 0 and result.stdout == QUERY_HELP
    examples = re.findall(r"^  (ru|uk|en)  (.+)$", QUERY_HELP, re.MULTILINE)
    assert {lang for lang, _ in examples} == {"ru", "uk", "en"}
    for _, example in examples:
        parse_query(example)  # every example is a valid query
    for line in re.findall(r"^      ((?:published|fetched):\S+(?: TO \S+)?)", QUERY_HELP,
                           re.MULTILINE):
        parse_query(line)
    result = runner.invoke(app, ["help", "nothing"])
    assert result.exit_code == 2 and "topics: query" in result.stderr


@pytest.mark.parametrize("command", [["search", "x"], ["export"], ["stats", "latency"],
                                     ["alerts", "list"], ["serve"]])
def test_read_only_commands_refuse_a_missing_database(tmp_path: Path,
                                                      command: list[str]) -> None:
    missing = tmp_path / "missing.db"
    result = runner.invoke(app, [*command, "--db", str(missing)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: --db {missing}: no such database " \
        "(dozor run creates it)"
    assert not list(tmp_path.glob("missing.db*"))


def test_log_format_json_writes_one_object_per_record(tmp_path: Path, db: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "dozor", "--log-format", "json", "serve", "--db", str(db),
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "DOZOR_DATA_DIR": str(tmp_path / "data")})
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/search.json?q=prison", server)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert records, err
    access = [r for r in records if r["logger"] == "dozor.ui.access"]
    assert len(access) == 1 and access[0]["level"] == "info"
    assert '"GET /search.json?q=prison HTTP/1.1" 200' in access[0]["message"]
    assert not [line for line in err.splitlines() if "GET /search.json" in line
                and not line.startswith("{")]

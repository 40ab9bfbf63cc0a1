"""`dozor search` and `dozor export` on a real database file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dozor.cli import app
from dozor.cli.search import _highlighted
from pipelines.article import EXPORT_FIELDS, EXPORT_ID, EXPORT_WARC_FIELDS
from pipelines.dedup import dedup
from pipelines.store.sqlite import SQLiteStore
from tests.support.articles import corpus
from tests.support.cli import run_dozor

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "news.db"
    with SQLiteStore(path) as store:
        store.write(dedup(list(corpus().values()), store))
    return path


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_search_json_one_object_per_hit_best_first(db: Path) -> None:
    result = runner.invoke(app, ["search", "колонии", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    hits = lines(result.stdout)
    assert [h["source"] for h in hits][-1] == "meduza"  # only in its text, not its title
    assert {h["source"] for h in hits} == {"ria", "ural-news", "meduza"}
    assert [h["rank"] for h in hits] == sorted((h["rank"] for h in hits), reverse=True)
    first = hits[0]
    assert set(first) == {"id", *EXPORT_FIELDS, *EXPORT_WARC_FIELDS, "rank", "snippet",
                          "query_terms"}
    assert "[колониях]" in first["snippet"]
    assert first["query_terms"] == ["колонии"]


def test_search_covers_english_fields_and_filters_language(db: Path) -> None:
    result = runner.invoke(app, ["search", "convicts", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    sources = {h["source"] for h in lines(result.stdout)}
    # the Russian story through its translation, the English ones through their text
    assert {"ria", "reuters", "aggregator"} <= sources
    result = runner.invoke(
        app, ["search", "convicts", "--db", str(db), "--lang", "ru", "--json"]
    )
    assert [h["source"] for h in lines(result.stdout)] == ["ria"]
    result = runner.invoke(app, ["search", "convicts", "--db", str(db), "--limit", "1",
                                 "--json"])
    assert len(lines(result.stdout)) == 1


def test_search_table(db: Path) -> None:
    result = runner.invoke(app, ["search", "Шторм-Z", "--db", str(db)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in ("pravda-uk", "ria", "ural-news", "Копейске", "Kopeysk", "Storm-Z",
                     "2026-05-12", "загонів", "https://ria.example/society/kopeisk-storm-z.html"):
        assert expected in out
    assert "reuters" not in out
    # the syndicated copy points at the original's row
    ranked = lines(runner.invoke(app, ["search", "Шторм-Z", "--db", str(db), "--json"]).stdout)
    original = [h["source"] for h in ranked].index("ria") + 1
    assert [h["source"] for h in ranked].index("ural-news") + 1 > original
    assert out.count("copy of #") == 1 and f"copy of #{original}" in out


def test_highlighted_snippet_styles_the_matches() -> None:
    text = _highlighted("…отрядов «[Шторм]-[Z]». Об этом")
    assert text.plain == "…отрядов «Шторм-Z». Об этом"
    assert [text.plain[s.start:s.end] for s in text.spans] == ["Шторм", "Z"]


def test_search_without_hits(db: Path) -> None:
    result = runner.invoke(app, ["search", "опера AND колония", "--db", str(db)])
    assert result.exit_code == 0
    assert "No articles match" in result.stderr
    result = runner.invoke(app, ["search", "опера AND колония", "--db", str(db), "--json"])
    assert result.stdout == ""


def test_query_error_names_the_position_and_exits_2(db: Path) -> None:
    result = runner.invoke(app, ["search", "колония AND (Шторм", "--db", str(db)])
    assert result.exit_code == 2
    assert "line 1, column" in result.stderr
    result = runner.invoke(app, ["search", "lang:de", "--db", str(db)])
    assert result.exit_code == 2
    assert "unknown language 'de'" in result.stderr


def test_bad_options_exit_2(db: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", "колония", "--db", str(db), "--lang", "de"])
    assert result.exit_code == 2 and "--lang 'de'" in result.stderr
    result = runner.invoke(app, ["search", "колония", "--db", str(db), "--es",
                                 "http://127.0.0.1:9200"])
    assert result.exit_code == 2 and "either --db or --es" in result.stderr
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 100)
    result = runner.invoke(app, ["search", "колония", "--db", str(notes)])
    assert result.exit_code == 2 and "the file is not a SQLite database" in result.stderr


def test_export_writes_exactly_the_design_fields(db: Path) -> None:
    result = runner.invoke(app, ["export", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    docs = lines(result.stdout)
    assert len(docs) == len(corpus())
    assert all(list(doc) == [EXPORT_ID, *EXPORT_FIELDS, *EXPORT_WARC_FIELDS, "label"]
               for doc in docs)
    wire = next(d for d in docs if d["source"] == "ria")
    copy = next(d for d in docs if d["source"] == "ural-news")
    assert copy["cluster_id"] == wire["cluster_id"]
    assert wire["title"].startswith("Осуждённых из колонии")  # UTF-8, not \u escapes
    assert wire["title_en"].startswith("Convicts")
    assert wire["published_at"] == "2026-05-12T06:30:00+00:00"
    assert wire["relevant"] is True and wire["matched_terms"] == ["колония", "Шторм-Z"]


def test_export_relevant_only_to_a_file(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "export" / "relevant.jsonl"
    out.parent.mkdir()
    out.write_text("previous export\n")
    result = runner.invoke(app, ["export", "--db", str(db), "--json", "--relevant-only",
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    docs = lines(out.read_text(encoding="utf-8"))
    relevant = [a for a in corpus().values() if a.relevant]
    assert sorted(d["url"] for d in docs) == sorted(a.url for a in relevant)
    assert f"Exported {len(relevant)} articles" in result.stderr
    assert list(out.parent.iterdir()) == [out]  # no partial file left behind


def test_export_is_json_lines_by_default_and_needs_a_writable_target(db: Path,
                                                                      tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "--db", str(db)])
    assert result.exit_code == 0
    assert lines(result.stdout) == lines(runner.invoke(
        app, ["export", "--db", str(db), "--json"]).stdout)
    result = runner.invoke(app, ["export", "--db", str(db), "--json", "--format", "csv"])
    assert result.exit_code == 2 and "--json" in result.stderr
    result = runner.invoke(app, ["export", "--db", str(db), "--json", "--output",
                                 str(tmp_path / "missing-dir" / "out.jsonl")])
    assert result.exit_code == 2 and "cannot write" in result.stderr


def test_search_on_sqlite_never_loads_the_elasticsearch_client(db: Path) -> None:
    """The client and the elastic backend cost most of a short command's start; only
    --es or ELASTICSEARCH_URL should pay for them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELASTIC", "DOZOR"))}
    env["PYTHONPROFILEIMPORTTIME"] = "1"  # every module imported, one line each on stderr
    result = run_dozor(["search", "колонии", "--db", str(db), "--json"], env)
    assert {h["source"] for h in lines(result.stdout)} == {"ria", "ural-news", "meduza"}
    loaded = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
              if line.startswith("import time:")}
    assert "pipelines.store.sqlite" in loaded
    elastic = {m for m in loaded if m.split(".")[0] in ("elasticsearch", "elastic_transport")
               or m.startswith("pipelines.store.elastic")}
    assert elastic == set()

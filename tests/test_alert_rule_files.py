"""Alert-rule files as every command that reads them loads them: a wildcard that fits no
word is named in a warning (as the topic's load does), and a rule whose `sources:` names a
source the sources file lacks is refused with the file, the rule and the field."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dozor.cli import app
from pipelines.alert import load_rules
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import rules_file

runner = CliRunner()

UNKNOWN = """\
rules:
  - name: good
    query: 'relevant:true'
    to: [desk@example.org]
  - name: elsewhere
    query: 'relevant:true'
    sources: [ria, nowhere]
    to: [desk@example.org]
"""
REFUSED = "rules[1] (elsewhere) → sources: unknown source 'nowhere'"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("rulefiles")
    db = tmp / "dozor.db"
    SQLiteStore(db).close()  # the read-only commands refuse a missing database
    own = tmp / "own-sources.yaml"
    own.write_text("sources:\n  - name: mine\n    lang: en\n    feeds: [https://example.org/feed]\n",
                   encoding="utf-8")
    return {"db": db, "unknown": rules_file(tmp, UNKNOWN), "own": own, "dir": tmp}


@pytest.mark.parametrize("command", [
    ["alerts", "list"], ["alerts", "test", "good"], ["alerts", "send"],
    ["revisit"], ["serve", "--port", "0"], ["schedule", "--every", "1h", "--cycles", "1"],
    ["run"],
])
def test_every_command_refuses_a_rule_naming_an_unknown_source(
        files: dict[str, Path], command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOZOR_SOURCES", raising=False)
    result = runner.invoke(app, [*command, "--alerts", str(files["unknown"]),
                                 "--db", str(files["db"])])
    assert result.exit_code == 2, result.output
    assert f"{files['unknown']}: {REFUSED}" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_the_sources_file_is_the_one_given_or_dozor_sources(
        files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    mine = rules_file(files["dir"], "rules:\n  - name: m\n    query: 'relevant:true'\n"
                                    "    sources: [mine]\n    to: [a@example.org]\n",
                      "mine.yaml")
    base = ["alerts", "list", "--alerts", str(mine), "--db", str(files["db"])]
    monkeypatch.delenv("DOZOR_SOURCES", raising=False)
    refused = runner.invoke(app, base)  # the shipped sources file has no "mine"
    assert refused.exit_code == 2 and "unknown source 'mine'" in refused.output
    assert runner.invoke(app, [*base, "--sources", str(files["own"])]).exit_code == 0
    monkeypatch.setenv("DOZOR_SOURCES", str(files["own"]))
    assert runner.invoke(app, base).exit_code == 0
    assert runner.invoke(app, ["alerts", "test", "m", *base[2:]]).exit_code == 0


def test_a_wildcard_that_fits_no_word_is_named_at_load(
        files: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    path = rules_file(files["dir"], """\
rules:
  - name: fine
    query: 'вербов* OR recruit*'
    to: [a@example.org]
  - name: odd-wildcard
    query: 'тюрьма OR колон?ия'
    to: [a@example.org]
""", "wild.yaml")
    with caplog.at_level(logging.WARNING, logger="pipelines.alert.rules"):
        load_rules(path)
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: rules[1] (odd-wildcard): the wildcard колон?ия fits no known word and can "
        "only match by chance; write the word itself"]

"""A query nested deeper than pipelines.query.MAX_DEPTH is refused with a clear message
wherever a query comes in: an alert rule, `dozor search`, the UI (400, not 500)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest

from pipelines.alert import load_rules
from pipelines.errors import ConfigError
from pipelines.query import MAX_DEPTH, QueryError, parse_query
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import rules_file
from tests.support.crawl_harness import REPO
from tests.test_ui import fetch, running_ui

DEEP = "(" * 999 + "колония" + ")" * 999
DEEP_UI = "(" * 600 + "колония" + ")" * 600  # the UI takes queries up to 2000 characters


@pytest.mark.parametrize("query", [DEEP, "NOT " * 999 + "колония", "-" * 999 + "вагнер",
                                   "title:(" * 500 + "x" + ")" * 500])
def test_deep_queries_are_a_query_error(query: str) -> None:
    with pytest.raises(QueryError, match=f"nested more than {MAX_DEPTH} levels deep"):
        parse_query(query)


def test_nesting_within_the_limit_still_compiles() -> None:
    nested = "(" * (MAX_DEPTH - 2) + "колония" + ")" * (MAX_DEPTH - 2)
    assert parse_query(nested).text == nested


def test_an_alert_rule_nested_too_deep_names_the_rule(tmp_path: Path) -> None:
    path = rules_file(tmp_path, f"rules:\n  - name: deep\n    query: '{DEEP}'\n"
                                "    to: [analyst@example.org]\n")
    with pytest.raises(ConfigError,
                       match=rf"rules\[0\] \(deep\) → query: nested more than {MAX_DEPTH} "):
        load_rules(path)


def test_dozor_search_says_it_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "news.db"
    SQLiteStore(db).close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOZOR_")}
    proc = subprocess.run([sys.executable, "-m", "dozor", "search", DEEP, "--db", str(db)],
                          cwd=REPO, env={**env, "DOZOR_DATA_DIR": str(tmp_path / "data")},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"nested more than {MAX_DEPTH} levels deep" in proc.stderr


def test_the_ui_answers_400_with_the_reason(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "news.db") as store, running_ui(store) as base:
        reply = fetch(f"{base}/search?{urlencode({'q': DEEP_UI})}")
    assert reply.status == 400
    assert "The query cannot be run" in reply.text
    assert f"nested more than {MAX_DEPTH} levels deep" in reply.text

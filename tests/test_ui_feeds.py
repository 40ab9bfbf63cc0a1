"""An Atom feed per alert rule, served by the UI at /rules/<name>.atom: the rule's
matching stories newest first, read over HTTP and parsed back with feedparser."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import feedparser

from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import rules_file, store_articles
from tests.support.articles import FETCHED, article, corpus
from tests.support.cli import run_dozor
from tests.test_ui import running_ui

RULES = """\
rules:
  - name: recruitment-en
    title: Recruitment <in English> & more
    query: 'relevant:true'
    languages: [en]
    to: [desk@example.org]
"""


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_rule_feed_lists_its_stories_newest_first(tmp_path: Path, store: SQLiteStore) -> None:
    docs = corpus()
    hostile = article("https://example.org/x", "Recruiters <script>alert(1)</script> & co",
                      "Prisoners recruited <b>here</b> & there.", lang="en", source="wire",
                      published=FETCHED - timedelta(minutes=5), relevant=True, score=0.9)
    store_articles(store, [*docs.values(), hostile])
    with running_ui(store, alerts=rules_file(tmp_path, RULES)) as base:
        status, kind, body = _get(f"{base}/rules/recruitment-en.atom")
        missing = _get(f"{base}/rules/nowhere.atom")
    assert status == 200 and kind.startswith("application/atom+xml")
    root = ET.fromstring(body)  # well-formed XML, the Atom namespace
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Recruitment <in English> & more"
    entries = feed.entries
    stored = [a for a in store.iter_articles([e.id.removeprefix("urn:dozor:article:")
                                              for e in entries])]
    # exactly the rule's stories: relevant and in English
    expected = {a.id for a in store.iter_articles(
        [i for i in (d.id for d in [*docs.values(), hostile])])
        if a.relevant and a.lang == "en"}
    assert {a.id for a in stored} == expected and len(entries) == len(expected) >= 3
    published = [e.published_parsed for e in entries]
    assert published == sorted(published, reverse=True)  # newest first
    first = entries[0]
    assert first.title == "Recruiters <script>alert(1)</script> & co"  # escaped, round trip
    assert first.link == "https://example.org/x"
    assert b"<script>" not in body
    assert missing[0] == 404


def test_serve_refuses_a_bad_alerts_file(tmp_path: Path, store: SQLiteStore) -> None:
    bad = rules_file(tmp_path, "rules:\n  - name: r\n    query: x\n    to: [a@example.org]\n"
                               "    schedule: sometimes\n")
    result = run_dozor(["serve", "--db", str(tmp_path / "dozor.db"), "--alerts", str(bad),
                        "--port", "0"], dict(os.environ), timeout=60, expect=2)
    assert "rules[0] (r) → schedule" in result.stderr and "Traceback" not in result.stderr

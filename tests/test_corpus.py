"""Extraction and language accuracy on the shared corpus of real ru/uk/en news pages.

The pages stay outside the repository; the test skips when they are absent. Floors sit a
little under what was measured, so a regression fails while run-to-run noise cannot
(extraction and detection are deterministic anyway).
"""

from __future__ import annotations

import codecs
import json

import pytest

from bench.corpus import Report, evaluate, format_table
from pipelines.charset import decode_html
from tests.conftest import SHARED_PAGES

pytestmark = pytest.mark.skipif(
    not (SHARED_PAGES / "manifest.json").is_file(),
    reason=f"shared page corpus not found at {SHARED_PAGES}",
)

# measured: lang 1.000/1.000/0.987 (the one English miss is a Portuguese page labelled en),
# title 1.000/0.885/0.833, date 1.000/0.857/1.000 (the uk miss, dated "Квітень 2023" on the
# page, gets a timeline's id="date-placeholder" from htmldate), body F1 0.988/0.854/0.955,
# must_contain 1.000/1.000/0.970, leakage 0.054/0.024/0.033
FLOORS = {
    "ru": {"language": 0.95, "title": 0.9, "date": 0.85, "body_f1": 0.9, "must_contain": 0.95},
    "uk": {"language": 0.95, "title": 0.8, "date": 0.8, "body_f1": 0.75, "must_contain": 0.95},
    "en": {"language": 0.95, "title": 0.75, "date": 0.95, "body_f1": 0.9, "must_contain": 0.93},
}
MAX_LEAKAGE = {"ru": 0.1, "uk": 0.07, "en": 0.07}


@pytest.fixture(scope="module")
def report() -> Report:
    return evaluate(SHARED_PAGES)


def test_prints_the_accuracy_table(report: Report, capsys: pytest.CaptureFixture[str]) -> None:
    table = format_table(report)
    with capsys.disabled():
        print("\n\nCorpus accuracy per language (extract + detect)\n" + table)
    assert sum(s.pages for s in report.scores.values()) == 132


@pytest.mark.parametrize(
    ("lang", "metric"), [(lang, metric) for lang, floors in FLOORS.items() for metric in floors]
)
def test_floor(report: Report, lang: str, metric: str) -> None:
    tally = getattr(report.scores[lang], metric)
    assert tally.total > 0
    assert tally.rate >= FLOORS[lang][metric], report.scores[lang].misses


@pytest.mark.parametrize("lang", list(MAX_LEAKAGE))
def test_boilerplate_leakage(report: Report, lang: str) -> None:
    assert report.scores[lang].leakage.rate <= MAX_LEAKAGE[lang], report.scores[lang].misses


def test_undeclared_charsets_are_detected() -> None:
    manifest = json.loads((SHARED_PAGES / "manifest.json").read_text(encoding="utf-8"))
    checked = 0
    for entry in manifest:
        body = (SHARED_PAGES / entry["file"]).read_bytes()
        decoded = decode_html(body, "text/html")
        actual = entry.get("charset_actual") or entry.get("charset_declared") or "utf-8"
        assert codecs.lookup(decoded.encoding).name == codecs.lookup(actual).name, entry["file"]
        checked += bool(entry.get("charset_actual"))
    assert checked == 2

"""Extraction and language accuracy on the shared corpus of real news pages, per language.

    .venv/bin/python -m bench.corpus [PAGES_DIR]

Every page goes through `extract` and `detect` as the crawler would hand it over: the
file's bytes with a bare `text/html` type, no charset. The manifest's gold (language,
title, date, body, must/must-not-contain snippets) is only used for scoring.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines import extract, language
from pipelines.article import Article, RawPage

LANGUAGES = ("ru", "uk", "en")
DEFAULT_PAGES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "pages"


@dataclass
class Tally:
    hits: float = 0.0
    total: int = 0

    def add(self, hit: float) -> None:
        self.hits += hit
        self.total += 1

    @property
    def rate(self) -> float | None:
        return self.hits / self.total if self.total else None


@dataclass
class LanguageScores:
    pages: int = 0
    language: Tally = field(default_factory=Tally)
    title: Tally = field(default_factory=Tally)
    date: Tally = field(default_factory=Tally)
    body_f1: Tally = field(default_factory=Tally)
    must_contain: Tally = field(default_factory=Tally)  # per snippet
    leakage: Tally = field(default_factory=Tally)  # per must-not-contain snippet
    misses: list[str] = field(default_factory=list)


@dataclass
class Report:
    scores: dict[str, LanguageScores]
    seconds: float


def load_pages(pages_dir: Path) -> list[tuple[dict[str, Any], RawPage]]:
    manifest = json.loads((pages_dir / "manifest.json").read_text(encoding="utf-8"))
    out = []
    for entry in manifest:
        url = entry.get("url") or f"https://corpus.invalid/{entry['file']}"
        page = RawPage(
            url=url,
            final_url=url,
            status=200,
            headers={"content-type": "text/html"},
            body=(pages_dir / entry["file"]).read_bytes(),
            source="corpus",
        )
        out.append((entry, page))
    return out


def evaluate(pages_dir: Path = DEFAULT_PAGES) -> Report:
    pages = load_pages(pages_dir)
    started = time.perf_counter()
    articles: dict[str, Article] = {}
    for entry, page in pages:
        # one page at a time so that each article is matched to its manifest entry
        for article in language.detect(extract.extract([page]), LANGUAGES):
            articles[entry["file"]] = article
    seconds = time.perf_counter() - started

    scores = {lang: LanguageScores() for lang in LANGUAGES}
    for entry, _ in pages:
        score_page(entry, articles.get(entry["file"]), scores[entry["lang"]])
    return Report(scores, seconds)


def score_page(entry: dict[str, Any], article: Article | None, s: LanguageScores) -> None:
    gold = entry["gold"]
    name = entry["file"]
    s.pages += 1
    s.language.add(article is not None and article.lang == entry["lang"])
    if article is None or article.lang != entry["lang"]:
        s.misses.append(f"{name}: lang {article.lang if article else 'no article'}")
    text = normalise(article.text) if article else ""
    if gold.get("title"):
        ok = article is not None and title_matches(article.title, gold["title"])
        s.title.add(ok)
        if not ok:
            s.misses.append(f"{name}: title {article.title if article else None!r}")
    if gold.get("date"):
        ok = article is not None and same_day(article.published_at, gold["date"])
        s.date.add(ok)
        if not ok:
            s.misses.append(f"{name}: date {article.published_at if article else None}")
    if gold.get("body"):
        s.body_f1.add(token_f1(text, gold["body"]))
    for snippet in gold.get("must_contain") or []:
        found = normalise(snippet) in text
        s.must_contain.add(found)
        if not found:
            s.misses.append(f"{name}: missing {snippet[:50]!r}")
    for snippet in gold.get("must_not_contain") or []:
        leaked = normalise(snippet) in text
        s.leakage.add(leaked)
        if leaked:
            s.misses.append(f"{name}: leaked {snippet[:50]!r}")


def normalise(text: str | None) -> str:
    # the manifest's convention: all whitespace, NBSP included, collapsed to one space;
    # invisible format characters (word joiners, soft hyphens) dropped, as extraction does
    visible = "".join(ch for ch in text or "" if unicodedata.category(ch) != "Cf")
    return " ".join(visible.split())


def title_matches(found: str, gold: str) -> bool:
    a, b = normalise(found).casefold(), normalise(gold).casefold()
    if not a:
        return False
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    return len(shorter.split()) >= 3 and shorter in longer


def same_day(found: datetime | None, gold: str) -> bool:
    """Same calendar day as the gold date, in the gold's own offset when it has one.

    A gold date without an offset is a local day somewhere in UTC-12..UTC+14; an extracted
    time of exactly 00:00 UTC is how a page's date-only value is stored.
    """
    if found is None:
        return False
    if re.fullmatch(r"\d{4}-\d{2}", gold):
        return found.strftime("%Y-%m") == gold
    when = datetime.fromisoformat(gold)
    if found.time() == datetime.min.time() and found.utcoffset() == timedelta(0):
        return found.date() == when.date()
    if when.tzinfo is not None:
        return found.astimezone(when.tzinfo).date() == when.date()
    day_start = datetime.combine(when.date(), datetime.min.time(), UTC)
    return day_start - timedelta(hours=14) <= found < day_start + timedelta(hours=36)


def token_f1(found: str, gold: str) -> float:
    got = Counter(re.findall(r"\w+", found.casefold()))
    want = Counter(re.findall(r"\w+", gold.casefold()))
    overlap = sum((got & want).values())
    if not overlap:
        return 0.0
    precision = overlap / sum(got.values())
    recall = overlap / sum(want.values())
    return 2 * precision * recall / (precision + recall)


COLUMNS = (
    ("language", "lang acc"),
    ("title", "title"),
    ("date", "date"),
    ("body_f1", "body F1"),
    ("must_contain", "must_contain"),
    ("leakage", "leakage"),
)


def format_table(report: Report) -> str:
    header = f"{'lang':<5}{'pages':>6}" + "".join(f"{label:>16}" for _, label in COLUMNS)
    lines = [header]
    for lang, s in report.scores.items():
        cells = []
        for attr, _ in COLUMNS:
            tally: Tally = getattr(s, attr)
            rate = tally.rate
            cells.append(f"{'-' if rate is None else f'{rate:.3f}'} (n={tally.total})")
        lines.append(f"{lang:<5}{s.pages:>6}" + "".join(f"{c:>16}" for c in cells))
    lines.append(f"extract + detect over {sum(s.pages for s in report.scores.values())} pages: "
                 f"{report.seconds:.1f} s")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages_dir", nargs="?", type=Path, default=DEFAULT_PAGES)
    parser.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    args = parser.parse_args(argv)
    pages_dir = args.pages_dir
    if not (pages_dir / "manifest.json").is_file():
        print(f"no corpus at {pages_dir} (manifest.json missing)", file=sys.stderr)
        return 2
    report = evaluate(pages_dir)
    print(format_table(report))
    if args.verbose:
        for lang, s in report.scores.items():
            for miss in s.misses:
                print(f"  {lang} {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

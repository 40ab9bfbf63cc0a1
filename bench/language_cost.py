"""What langdetect's sample size costs and buys: accuracy and CPU per text of
`pipelines.language.detect` on whole articles (the shared pages as extracted, the
coverage set's items) and on short texts, with the whole text (langdetect's own
ceiling, 10,000 characters) beside Dozor's bounded sample; side by side in one run.

    .venv/bin/python -m bench.language_cost [SHARED_FIXTURES_DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.corpus import load_pages
from bench.short_language import DEFAULT_FIXTURES, LANGUAGES, samples
from pipelines import extract, language
from pipelines.article import Article, utcnow

WHOLE = 10_000  # langdetect reads no more than this of a text


def articles(fixtures: Path) -> dict[str, list[tuple[str, Article]]]:
    pages = load_pages(fixtures / "pages")
    sets: dict[str, list[tuple[str, Article]]] = {"pages": [], "coverage": [], "short": []}
    for entry, page in pages:
        if entry["lang"] in LANGUAGES:
            sets["pages"] += [(entry["lang"], a) for a in extract.extract([page])]
    items = json.loads((fixtures / "coverage" / "items.json").read_text(encoding="utf-8"))
    for item in items:
        if item["lang"] in LANGUAGES:
            sets["coverage"].append((item["lang"], Article(
                url=item["url"], canonical_url=item["url"], source="coverage",
                fetched_at=utcnow(), title=item["title"], text="\n".join(item["paras"]))))
    for _, lang, text in samples(fixtures):
        sets["short"].append((lang, Article(url="https://x.invalid/", canonical_url="",
                                            source="short", fetched_at=utcnow(), text=text)))
    return sets


def score(data: list[tuple[str, Article]], limit: int) -> tuple[float, float]:
    """(accuracy, ms CPU per text) with langdetect reading at most `limit` characters."""
    saved = language.MAX_SAMPLE_CHARS
    language.MAX_SAMPLE_CHARS = limit
    try:
        start = time.process_time()
        language.detect([a for _, a in data], LANGUAGES)
        spent = time.process_time() - start
    finally:
        language.MAX_SAMPLE_CHARS = saved
    right = sum(a.lang == lang for lang, a in data)
    return right / len(data), spent / len(data) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fixtures", nargs="?", type=Path, default=DEFAULT_FIXTURES)
    args = parser.parse_args()
    sets = articles(args.fixtures)
    language.detect([sets["short"][0][1]], LANGUAGES)  # profiles load outside the clock
    bounded = language.MAX_SAMPLE_CHARS
    print(f"{'set':<10}{'n':>5}  {'whole text':>22}  {f'sample of {bounded}':>22}")
    for name, data in sets.items():
        whole_acc, whole_ms = score(data, WHOLE)
        acc, ms = score(data, bounded)
        print(f"{name:<10}{len(data):>5}  {whole_acc:9.3f} {whole_ms:7.2f} ms/text  "
              f"{acc:9.3f} {ms:7.2f} ms/text   cost {ms / whole_ms:.2f}x")


if __name__ == "__main__":
    main()

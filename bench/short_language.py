"""Language of short texts (a Telegram post's line or two): Dozor beside plain langdetect.

    .venv/bin/python -m bench.short_language [SHARED_FIXTURES_DIR]

The short texts are real: the first line of every page's gold body in
`fixtures/pages` and the title and first paragraph of every labelled item in
`fixtures/coverage/items.json`, each with its known language. Plain langdetect is its
most probable language over every profile it has (seeded, as Dozor seeds it); Dozor is
`pipelines.language.classify` over ru/uk/en without any hint.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from pipelines.language import classify, text_probabilities

LANGUAGES = ("ru", "uk", "en")
DEFAULT_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def samples(fixtures: Path = DEFAULT_FIXTURES) -> list[tuple[str, str, str]]:
    """(set, language, text) for every short text of the shared fixtures."""
    out = []
    manifest = json.loads((fixtures / "pages" / "manifest.json").read_text(encoding="utf-8"))
    for page in manifest:
        line = _first_line(page["gold"].get("body") or "")
        if line and page["lang"] in LANGUAGES:
            out.append(("pages", page["lang"], line))
    items = json.loads((fixtures / "coverage" / "items.json").read_text(encoding="utf-8"))
    for item in items:
        if item["lang"] not in LANGUAGES:
            continue
        out.append(("titles", item["lang"], _first_line(item["title"])))
        first = next((p for p in item["paras"] if sum(c.isalpha() for c in p) >= 20), "")
        if first:
            out.append(("paragraphs", item["lang"], _first_line(first)))
    return out


def langdetect_answer(text: str) -> str:
    scores = text_probabilities(text)
    return max(scores, key=scores.__getitem__) if scores else "other"


def dozor_answer(text: str) -> str:
    return classify(text, LANGUAGES)[0]


def accuracy(data: list[tuple[str, str, str]]) -> dict[str, dict[str, tuple[int, int, int]]]:
    """{set or "all": {lang: (dozor right, langdetect right, total)}}."""
    tally: dict[str, Counter[tuple[str, str]]] = {}
    for group, lang, text in data:
        for key in (group, "all"):
            counts = tally.setdefault(key, Counter())
            counts[(lang, "total")] += 1
            counts[(lang, "dozor")] += dozor_answer(text) == lang
            counts[(lang, "langdetect")] += langdetect_answer(text) == lang
    return {key: {lang: (c[(lang, "dozor")], c[(lang, "langdetect")], c[(lang, "total")])
                  for lang in LANGUAGES if c[(lang, "total")]}
            for key, c in tally.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixtures", nargs="?", type=Path, default=DEFAULT_FIXTURES)
    args = parser.parse_args()
    data = samples(args.fixtures)
    started = time.perf_counter()
    result = accuracy(data)
    elapsed = time.perf_counter() - started
    print(f"{len(data)} short texts (median {sorted(len(t) for _, _, t in data)[len(data) // 2]}"
          f" characters), both detectors in {elapsed:.1f} s")
    print(f"{'set':<12}{'lang':<6}{'n':>5}{'dozor':>9}{'langdetect':>12}{'ratio':>8}")
    for group in ("pages", "titles", "paragraphs", "all"):
        for lang, (ours, theirs, total) in result.get(group, {}).items():
            ratio = f"{ours / theirs:.2f}" if theirs else "inf"
            print(f"{group:<12}{lang:<6}{total:>5}{ours / total:>9.3f}{theirs / total:>12.3f}"
                  f"{ratio:>8}")


if __name__ == "__main__":
    main()

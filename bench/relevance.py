"""Topic relevance on real, hand-labelled coverage: recall and precision per language.

    .venv/bin/python -m bench.relevance [ITEMS_JSON] [--topic FILE] [--verbose]

Each excerpt of ``../shared/fixtures/coverage/items.json`` goes through the stages an
extracted page goes through (language → terms → relevance) as an article whose title
is the excerpt's title and whose text is its paragraphs. The item's ``lang`` (from the
text) groups the figures; a detected language that differs is reported, since an
article detected as another language is judged by the profile all the same. Misses and
false positives are listed with the rules that fired and the score, which is what an
analyst needs to see why.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines import language, relevance
from pipelines.article import Article
from pipelines.config.paths import DEFAULTS_DIR
from pipelines.terms.normalisation import analyse

LANGUAGES = ("ru", "uk", "en")
DEFAULT_ITEMS = (Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "coverage"
                 / "items.json")


@dataclass
class Judged:
    item: dict[str, Any]
    article: Article
    fired: list[tuple[str, float]]

    @property
    def gold(self) -> bool:
        return self.item["label"] == "relevant"

    def line(self) -> str:
        rules = ", ".join(f"{name} {weight:+g}" for name, weight in self.fired) or "no rule"
        lang = "" if self.article.lang == self.item["lang"] else f" [detected {self.article.lang}]"
        return (f"{self.item['id']} ({self.item['kind']}){lang} score {self.article.score:.3f}:"
                f" {rules} | {self.item['title'][:70]}")


@dataclass
class LanguageFigures:
    relevant: int = 0
    irrelevant: int = 0
    true_positives: int = 0
    misses: list[Judged] = field(default_factory=list)
    false_positives: list[Judged] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.true_positives / self.relevant if self.relevant else 1.0

    @property
    def precision(self) -> float:
        kept = self.true_positives + len(self.false_positives)
        return self.true_positives / kept if kept else 1.0


def load_items(path: Path = DEFAULT_ITEMS) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))


def item_article(item: dict[str, Any]) -> Article:
    url = item.get("url") or f"https://coverage.invalid/{item['id']}"
    return Article(url=url, canonical_url=url, source="coverage", fetched_at=datetime.now(UTC),
                   title=item["title"], text="\n\n".join(item["paras"]))


def judge(items: list[dict[str, Any]], profile: relevance.TopicProfile) -> list[Judged]:
    articles = [item_article(item) for item in items]
    articles = relevance.classify(analyse(language.detect(articles, LANGUAGES)), profile)
    return [Judged(item, article, [(r.name, r.weight) for r in profile.fired(article)])
            for item, article in zip(items, articles, strict=True)]


def figures(judged: list[Judged]) -> dict[str, LanguageFigures]:
    out = {lang: LanguageFigures() for lang in LANGUAGES}
    for j in judged:
        f = out[j.item["lang"]]
        if j.gold:
            f.relevant += 1
            if j.article.relevant:
                f.true_positives += 1
            else:
                f.misses.append(j)
        else:
            f.irrelevant += 1
            if j.article.relevant:
                f.false_positives.append(j)
    return out


def evaluate(items_path: Path = DEFAULT_ITEMS,
             topic: Path | None = None) -> dict[str, LanguageFigures]:
    profile = relevance.load_topic(topic or DEFAULTS_DIR / "topic.yaml")
    return figures(judge(load_items(items_path), profile))


def format_report(result: dict[str, LanguageFigures]) -> str:
    lines = ["lang  relevant  irrelevant  recall  precision  misses  false+"]
    for lang, f in result.items():
        lines.append(f"{lang:<5} {f.relevant:>8}  {f.irrelevant:>10}  {f.recall:6.3f}  "
                     f"{f.precision:9.3f}  {len(f.misses):>6}  {len(f.false_positives):>6}")
    for f in result.values():
        for j in f.misses:
            lines.append(f"  miss  {j.line()}")
        for j in f.false_positives:
            lines.append(f"  false {j.line()}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("items", nargs="?", type=Path, default=DEFAULT_ITEMS)
    parser.add_argument("--topic", type=Path, default=None,
                        help="topic profile (default: the shipped one)")
    args = parser.parse_args(argv)
    if not args.items.is_file():
        print(f"error: {args.items} not found", file=sys.stderr)
        return 2
    print(format_report(evaluate(args.items, args.topic)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

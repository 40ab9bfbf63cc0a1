"""The indexed alert matcher answers exactly what evaluating every rule on every article
answers, over real coverage texts and rules of every kind the shipped ones use."""

from __future__ import annotations

import json
import random
import re

from pipelines.alert.rules import AlertRule, compile_rule
from pipelines.article import Article, utcnow
from pipelines.language import detect
from pipelines.matching import PythonMatcher
from pipelines.terms.normalisation import analyse
from tests.conftest import SHARED_PAGES

COVERAGE = SHARED_PAGES.parent / "coverage" / "items.json"
_WORD = re.compile(r"[^\W\d_]{4,}")


def _articles() -> list[Article]:
    items = json.loads(COVERAGE.read_text(encoding="utf-8"))
    out = [Article(url=item["url"], canonical_url=item["url"], source=f"src-{n % 3}",
                   fetched_at=utcnow(), title=item["title"], text="\n".join(item["paras"]),
                   relevant=item["label"] == "relevant")
           for n, item in enumerate(items)]
    return analyse(detect(out, ("ru", "uk", "en")))


def _rules(articles: list[Article], count: int) -> list[AlertRule]:
    rng = random.Random(3)
    words = sorted({w.lower() for a in articles for w in _WORD.findall(a.text)})
    pairs = [m for a in articles for m in re.findall(r"[^\W\d_]{4,} [^\W\d_]{4,}", a.text)]
    specs = []
    for i in range(count):
        a, b, c = rng.sample(words, 3)
        query = [f"{a} OR {b} OR {c}", f"{a} AND ({b} OR {c})", f'"{rng.choice(pairs)}"~1',
                 f"{a} AND NOT {b}", f"{a[:4]}* OR {b}", f"NOT {a}", "relevant:true",
                 f"({a} OR {b}) AND lang:{rng.choice(['ru', 'uk', 'en'])}",
                 # asked article by article, on what the rest of the query leaves
                 f"title:{a} OR text:({b} AND {c})", f"fetched:>now-1d AND {a}",
                 f"published:>now-1d OR (possible:false AND {a})",
                 # field wildcards, multi-valued fields, wildcards inside a word
                 f"source:src-? AND ({a} OR {b})", f"cluster_id:* AND {a}",
                 f"event:edited OR {a[:2]}?{a[3:]}",
                 f"NOT ({a} OR {b}) OR relevant:false"][i % 15]
        extra: dict[str, object] = {}
        if i % 5 == 0:
            extra["languages"] = [rng.choice(["ru", "uk", "en"])]
        if i % 7 == 0:
            extra["sources"] = ["src-1"]
        specs.append(AlertRule(name=f"r{i}", query=query, to=["a@example.org"], **extra))
    return specs


def test_indexed_matcher_answers_what_every_rule_on_every_article_answers() -> None:
    articles = _articles()
    rules = [compile_rule(spec) for spec in _rules(articles, 400)]
    expected = {r.name: [a.id for a in articles if r.query.matches(a)] for r in rules}
    found = PythonMatcher().match(rules, articles)
    assert found == expected
    # the comparison is not vacuous: rules of every kind match some and miss some
    assert sum(map(len, expected.values())) > 1000
    assert sum(1 for ids in expected.values() if 0 < len(ids) < len(articles)) > 200


def test_no_articles_or_no_rules() -> None:
    rules = [compile_rule(AlertRule(name="x", query="колония", to=["a@example.org"]))]
    assert PythonMatcher().match(rules, []) == {"x": []}
    assert PythonMatcher().match([], _articles()[:3]) == {}

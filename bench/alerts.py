"""Alert matching at scale: RULES alert rules over ARTICLES new articles, Dozor's
matcher against a straightforward evaluation (every rule's `Query.matches` on every
article), answers compared, then `queue_matches` through a real SQLite store with its
delivery log; measured side by side in one run.

    .venv/bin/python -m bench.alerts [--rules 1000] [--articles 10000] [PAGES_DIR]

The articles mix sentences of the shared corpus (`bench.store.build_articles`); the
rules are built from their words like the shipped ones: ORs of terms, ANDs, phrases,
NOT, language filters and source lists, with a fixed seed, and loaded from an alerts
file twice in one process: the second load reuses the compiled queries.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

from bench.corpus import DEFAULT_PAGES
from bench.store import Pool, build_articles
from pipelines.alert.delivery import AlertReport, queue_matches
from pipelines.alert.rules import AlertRule, load_rules
from pipelines.article import Article
from pipelines.store.sqlite import SQLiteStore

_WORD = re.compile(r"[^\W\d_]{5,}")


def build_rules(articles: list[Article], count: int) -> list[AlertRule]:
    rng = random.Random(11)
    words: dict[str, Counter[str]] = {}
    pairs: dict[str, list[str]] = {}
    for a in articles[:2000]:
        found = _WORD.findall(a.text)
        words.setdefault(a.lang, Counter()).update(w.lower() for w in found)
        pairs.setdefault(a.lang, []).extend(
            f"{x} {y}" for x, y in zip(found[::7], found[1::7], strict=False))
    # rules name words of middling frequency, as analysts do: not "который", not hapaxes
    vocab = {lang: [w for w, n in c.most_common()[50:3000] if n >= 2]
             for lang, c in words.items()}
    langs = sorted(vocab)
    sources = sorted({a.source for a in articles})
    specs = []
    for i in range(count):
        lang = langs[i % len(langs)]
        pick = rng.sample(vocab[lang], 4)
        kind = i % 6
        extra: dict[str, object] = {}
        if kind == 0:
            query = " OR ".join(pick[:3])
        elif kind == 1:
            query = f"{pick[0]} AND ({pick[1]} OR {pick[2]})"
        elif kind == 2:
            query = f'"{rng.choice(pairs[lang])}" OR {pick[0]}'
        elif kind == 3:
            query = f"({pick[0]} OR {pick[1]}) AND lang:{lang}"
        elif kind == 4:
            query = f"{pick[0]} AND NOT {pick[1]}"
            extra["languages"] = [lang]
        else:
            query = f"{pick[0]} OR {pick[1]}"
            extra["sources"] = rng.sample(sources, 3)
        specs.append(AlertRule(name=f"rule-{i}", query=query, to=["a@example.org"], **extra))
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="?", type=Path, default=DEFAULT_PAGES)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--articles", type=int, default=10_000)
    args = parser.parse_args()
    if not (args.pages / "manifest.json").exists():
        sys.exit(f"no corpus at {args.pages} (manifest.json missing)")

    articles = build_articles(Pool(args.pages), args.articles)
    for a in articles:
        a.cluster_id = a.id
    specs = build_rules(articles, args.rules)
    with tempfile.TemporaryDirectory() as tmp:
        # through the alerts file, as `dozor run` and `dozor schedule` load them
        path = Path(tmp) / "alerts.yaml"
        path.write_text(yaml.safe_dump({"rules": [
            spec.model_dump(mode="json", exclude_defaults=True) for spec in specs]},
            allow_unicode=True), encoding="utf-8")
        start = time.process_time()
        rules = load_rules(path)
        compile_s = time.process_time() - start
        start = time.process_time()
        again = load_rules(path)
        again_s = time.process_time() - start
    once = all(a.query is b.query for a, b in zip(rules, again, strict=True))
    print(f"{len(rules)} rules x {len(articles)} articles; loading the rules file "
          f"{compile_s:.2f} s CPU, loading it again in the same process {again_s:.2f} s "
          f"CPU (compiled once: {once})")

    start = time.process_time()
    naive: dict[str, list[str]] = {r.name: [] for r in rules}
    for a in articles:  # article by article: its term positions are built once
        for r in rules:
            if r.query.matches(a):
                naive[r.name].append(a.id)
    naive_s = time.process_time() - start

    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "alerts.db")
        new_ids = store.write(articles).new
        matcher = store.alert_matcher()
        start = time.process_time()
        found = matcher.match(rules, articles)
        match_s = time.process_time() - start

        report = AlertReport()
        start, cpu = time.perf_counter(), time.process_time()
        queue_matches(store, rules, new_ids, report)
        queue_s, queue_cpu = time.perf_counter() - start, time.process_time() - cpu
        queued = sum(report.queued.values()) + sum(report.folded.values())
        store.close()

    pairs = len(rules) * len(articles)
    matches = sum(map(len, naive.values()))
    same = found == naive
    print(f"straightforward (every rule on every article): {naive_s:7.2f} s CPU "
          f"{pairs / naive_s:12,.0f} pairs/s  {matches} matches")
    print(f"Dozor's matcher ({type(matcher).__name__}):      {match_s:7.2f} s CPU "
          f"{pairs / match_s:12,.0f} pairs/s  answers identical: {same}")
    print(f"ratio straightforward / Dozor:                 {naive_s / match_s:7.1f}x")
    print(f"queue_matches (store reads, matching, delivery log): {queue_s:.2f} s wall, "
          f"{queue_cpu:.2f} s CPU, {queued} deliveries (target < 10 s)")
    if not same:
        differ = [name for name in naive if naive[name] != found.get(name)]
        sys.exit(f"answers differ for {len(differ)} rules, e.g. {differ[:5]}")
    if not once:
        sys.exit("loading the rules file again compiled its rules again")


if __name__ == "__main__":
    main()

"""`dozor topic test`: a topic profile tried on the stored articles, which it never changes."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import typer

from dozor.cli.app import DbOption, EsOption, app, config_of, console, store_from
from dozor.cli.options import TopicOption
from pipelines.article import Article
from pipelines.relevance import TopicProfile, classify, load_topic

topic_app = typer.Typer(help="Topic profiles: try one before switching it on.",
                        no_args_is_help=True)
app.add_typer(topic_app, name="topic")

SAMPLES = 5
CHANGES = ("becomes_relevant", "stops_relevant", "becomes_possible", "stops_possible")


def _change(stored: Article, tried: Article) -> str | None:
    if tried.relevant != stored.relevant:
        return "becomes_relevant" if tried.relevant else "stops_relevant"
    if tried.possible != stored.possible:
        return "becomes_possible" if tried.possible else "stops_possible"
    return None


def evaluate(profile: TopicProfile, articles: list[Article],
             labels: dict[str, bool]) -> dict[str, Any]:
    """What `profile` would change among `articles`, and how it agrees with `labels`."""
    report: dict[str, Any] = {"topic": profile.name, "articles": len(articles),
                              "relevant": 0, **{c: 0 for c in CHANGES},
                              "samples": {c: [] for c in CHANGES}}
    agree = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for stored in articles:
        (tried,) = classify([dataclasses.replace(stored)], profile)
        report["relevant"] += tried.relevant
        change = _change(stored, tried)
        if change:
            report[change] += 1
            if len(report["samples"][change]) < SAMPLES:
                report["samples"][change].append({
                    "id": stored.id, "source": stored.source, "lang": stored.lang,
                    "title": stored.title, "score": tried.score,
                    "rules": [r.name for r in profile.fired(stored)]})
        if stored.id in labels:
            key = ("t" if tried.relevant == labels[stored.id] else "f") + \
                  ("p" if tried.relevant else "n")
            agree[key] += 1
    labelled = sum(agree.values())
    report["labelled"] = labelled
    report["precision"] = (round(agree["tp"] / (agree["tp"] + agree["fp"]), 4)
                           if agree["tp"] + agree["fp"] else None)
    report["recall"] = (round(agree["tp"] / (agree["tp"] + agree["fn"]), 4)
                        if agree["tp"] + agree["fn"] else None)
    return report


@topic_app.command("test")
def test_topic(ctx: typer.Context, topic: TopicOption = None, db: DbOption = None,
               es: EsOption = None,
               as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
               ) -> None:
    """How a topic profile would classify the stored articles (nothing is changed):
    how many become relevant or stop being, samples with the rules that fired, and
    precision/recall against the analysts' labels."""
    config = config_of(ctx, topic)
    profile = load_topic(config.paths.topic)
    with store_from(config, db, es, read_only=True) as store:
        articles = list(store.iter_articles())
        report = evaluate(profile, articles, store.labels())
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return
    console.print(f"[bold]{profile.name}[/] on {report['articles']} stored article(s): "
                  f"{report['relevant']} would be relevant; "
                  + ", ".join(f"{report[c]} {c.replace('_', ' ')}" for c in CHANGES) + ".",
                  highlight=False, soft_wrap=True)
    for change in CHANGES:
        for s in report["samples"][change]:
            console.print(f"  {change.replace('_', ' ')}: [{s['lang']}] {s['source']}: "
                          f"{s['title']} (score {s['score']}; rules: "
                          f"{', '.join(s['rules']) or 'none'})",
                          highlight=False, markup=False, soft_wrap=True)
    if report["labelled"]:
        console.print(f"Against {report['labelled']} analysts' label(s): precision "
                      f"{report['precision']}, recall {report['recall']}.", highlight=False)
    else:
        console.print("No analysts' labels yet: label stories in `dozor serve` for "
                      "precision and recall.")

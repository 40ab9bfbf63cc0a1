"""`dozor search` and `dozor export`: reading the index back out."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.table import Table
from rich.text import Text

from dozor.cli.app import DbOption, EsOption, app, console, err_console, fail, store_from
from pipelines.article import Article
from pipelines.config.settings import get_settings
from pipelines.query import QueryError
from pipelines.store import SearchHit

# pipelines.terms.snippets.snippet wraps each matched word in [ ]
_MARKED = re.compile(r"\[([^\[\]]+)\]")


def _check_lang(lang: str | None) -> None:
    known = [*get_settings().languages, "other"]
    if lang is not None and lang not in known:
        raise fail(f"--lang {lang!r}: expected one of {', '.join(known)}")


def _highlighted(snippet: str) -> Text:
    out = Text()
    last = 0
    for marked in _MARKED.finditer(snippet):
        out.append(snippet[last : marked.start()])
        out.append(marked.group(1), style="bold black on yellow")
        last = marked.end()
    out.append(snippet[last:])
    return out


def _hit_json(hit: SearchHit) -> str:
    doc = {
        "id": hit.article.id,
        **hit.article.export(),
        "rank": round(hit.rank, 6),
        "snippet": hit.snippet,
        "query_terms": hit.matched_terms,
    }
    return json.dumps(doc, ensure_ascii=False)


def results_table(hits: list[SearchHit]) -> Table:
    table = Table(show_lines=True, expand=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("title", ratio=3, overflow="fold")  # URLs wrap, never cut
    table.add_column("source", no_wrap=True)
    table.add_column("lang", no_wrap=True)
    table.add_column("date", no_wrap=True)
    table.add_column("snippet", ratio=5)
    first_of_cluster: dict[str, int] = {}
    for number, hit in enumerate(hits, 1):
        article = hit.article
        title = Text(article.title or article.canonical_url, style="bold")
        if article.title_en:
            title.append("\n" + article.title_en, style="italic dim")
        title.append("\n" + article.url, style="blue")
        # a syndicated copy is flagged, so the same wire story is not read twice
        original = first_of_cluster.setdefault(article.cluster_id or article.id, number)
        if original != number:
            title.append(f"\ncopy of #{original}", style="magenta")
        when = article.published_at or article.fetched_at
        table.add_row(
            str(number),
            title,
            article.source,
            article.lang,
            when.date().isoformat(),
            _highlighted(hit.snippet),
        )
    return table


@app.command()
def search(
    query: Annotated[
        str,
        typer.Argument(
            help="Lucene query syntax: words match every inflected form (лагерь finds "
            "лагеря), AND/OR/NOT, \"phrases\", wildcards*, fields such as lang:uk, "
            "source:meduza, relevant:true."
        ),
    ],
    db: DbOption = None,
    es: EsOption = None,
    lang: Annotated[
        str | None, typer.Option("--lang", help="Only articles in this language.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most hits to show.")] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per hit per line.")
    ] = False,
) -> None:
    """Search titles and texts (original and English) across every language, best first."""
    _check_lang(lang)
    with store_from(db, es) as store:
        try:
            hits = store.search(query, lang=lang, limit=limit)
        except QueryError as exc:
            raise fail(f"query: {exc}") from None
    if as_json:
        for hit in hits:
            sys.stdout.write(_hit_json(hit) + "\n")
        return
    if not hits:
        err_console.print(f"No articles match {query!r}.", highlight=False)
        return
    console.print(results_table(hits))


def _write_export(out: TextIO, articles: Iterable[Article], relevant_only: bool) -> int:
    written = 0
    for article in articles:
        if relevant_only and not article.relevant:
            continue
        out.write(json.dumps(article.export(), ensure_ascii=False) + "\n")
        written += 1
    return written


@app.command()
def export(
    db: DbOption = None,
    es: EsOption = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="JSON Lines: one object per article (the only format)."),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout.",
                     dir_okay=False),
    ] = None,
    relevant_only: Annotated[
        bool, typer.Option("--relevant-only", help="Only articles on topic.")
    ] = False,
) -> None:
    """Every stored article, in the order stored: url, canonical_url, source, lang, title,
    text, title_en, text_en, published_at, fetched_at, relevant, score, matched_terms,
    translation_status, cluster_id."""
    if not as_json:
        raise fail("choose the output format: dozor export --json")
    with store_from(db, es) as store:
        if output is None:
            _write_export(sys.stdout, store.iter_articles(), relevant_only)
            return
        # written beside the target and moved into place, so a failed export never
        # leaves a truncated file where a previous good one was
        partial = output.with_name(output.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8") as out:
                written = _write_export(out, store.iter_articles(), relevant_only)
            os.replace(partial, output)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise fail(f"cannot write {output}: {exc}") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    err_console.print(f"Exported {written} articles to {output}", highlight=False)

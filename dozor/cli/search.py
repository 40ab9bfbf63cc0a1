"""`dozor search`: the best hits of a query across every language."""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from dozor.cli.app import (
    DbOption,
    EsOption,
    app,
    config_of,
    console,
    err_console,
    fail,
    store_from,
)
from dozor.cli.options import (
    SinceOption,
    Sort,
    SourceFilterOption,
    UntilOption,
    filtered_query,
)
from pipelines.config.config import Config
from pipelines.store import SearchHit

# pipelines.terms.snippets.snippet wraps each matched word in [ ]
_MARKED = re.compile(r"\[([^\[\]]+)\]")


def _check_lang(config: Config, lang: str | None) -> None:
    known = [*config.settings.languages, "other"]
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
    ctx: typer.Context,
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
    offset: Annotated[int, typer.Option("--offset", min=0,
                                        help="Skip this many hits first (paging).")] = 0,
    since: SinceOption = None,
    until: UntilOption = None,
    source: SourceFilterOption = None,
    sort: Annotated[Sort, typer.Option("--sort", help="relevance (best first), newest or "
                                       "oldest (by publication date, undated last).")
                    ] = Sort.relevance,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per hit per line.")
    ] = False,
) -> None:
    """Search titles and texts (original and English) across every language, best first."""
    config = config_of(ctx)
    _check_lang(config, lang)
    compiled = filtered_query(query, "search", lang, since, until, source)
    with store_from(config, db, es, read_only=True) as store:
        hits = store.search(compiled, limit=limit, offset=offset, sort=sort.value)
    if as_json:
        for hit in hits:
            sys.stdout.write(_hit_json(hit) + "\n")
        return
    if not hits:
        err_console.print(f"No articles match {query!r}.", highlight=False)
        return
    console.print(results_table(hits))

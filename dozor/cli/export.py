"""`dozor export`: every stored article as JSON Lines, the fields `Article.export` gives."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, TextIO

import typer

from dozor.cli.app import DbOption, EsOption, app, config_of, err_console, fail, store_from
from pipelines.article import Article


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
    ctx: typer.Context,
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
    with store_from(config_of(ctx), db, es, read_only=True) as store:
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

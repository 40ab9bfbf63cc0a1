"""`dozor export`: stored articles as JSON Lines or CSV, the fields `Article.export` gives."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from dozor.cli.app import DbOption, EsOption, app, config_of, err_console, fail, store_from
from dozor.cli.options import SinceOption, SourceFilterOption, UntilOption, filtered_query
from dozor.export import Format, write_export


@app.command()
def export(
    ctx: typer.Context,
    db: DbOption = None,
    es: EsOption = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="jsonl (one JSON object per article) or csv.")
    ] = Format.jsonl,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON Lines (the default; kept as an alias).")
    ] = False,
    query: Annotated[
        str, typer.Option("--query", "-q", help="Only articles matching this search query "
                          "(the syntax of dozor search: dozor help query).")
    ] = "",
    since: SinceOption = None,
    until: UntilOption = None,
    source: SourceFilterOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout.",
                     dir_okay=False),
    ] = None,
    relevant_only: Annotated[
        bool, typer.Option("--relevant-only", help="Only articles on topic.")
    ] = False,
    versions: Annotated[
        bool, typer.Option("--versions", help="JSON only: each article also carries "
                           "removed, events and versions (every version revisits recorded: "
                           "title, text, date, what changed, its WARC record).")
    ] = False,
) -> None:
    """Stored articles, in the order stored: id, url, canonical_url, source, lang, title,
    text, title_en, text_en, published_at, fetched_at, relevant, score, matched_terms,
    translation_status, cluster_id (a Telegram post adds channel, post_id, views,
    forwarded_from, links, relevant_via), warc_file, warc_record_id."""
    if as_json and fmt is not Format.jsonl:
        raise fail("--json is JSON Lines: give either --json or --format csv")
    filters = bool(query.strip() or since or until or source or relevant_only)
    compiled = filtered_query(query, "export", None, since, until, source) if filters else None
    if compiled is not None and relevant_only:
        compiled = compiled.restrict(("relevant", [True]))
    if versions and fmt is not Format.jsonl:
        raise fail("--versions is JSON Lines only")
    with store_from(config_of(ctx), db, es, read_only=True) as store:
        history = store if versions else None
        labels = store.labels()
        if output is None:
            write_export(sys.stdout, store.iter_articles(), compiled, fmt, history, labels)
            return
        # written beside the target and moved into place, so a failed export never
        # leaves a truncated file where a previous good one was
        partial = output.with_name(output.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as out:
                written = write_export(out, store.iter_articles(), compiled, fmt, history, labels)
            os.replace(partial, output)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise fail(f"cannot write {output}: {exc}") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    err_console.print(f"Exported {written} articles to {output}", highlight=False)

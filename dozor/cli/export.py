"""`dozor export`: stored articles as JSON Lines or CSV, the fields `Article.export` gives."""

from __future__ import annotations

import csv
import enum
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, TextIO

import typer

from dozor.cli.app import DbOption, EsOption, app, config_of, err_console, fail, store_from
from dozor.cli.options import SinceOption, SourceFilterOption, UntilOption, filtered_query
from pipelines.article import (
    EXPORT_FIELDS,
    EXPORT_ID,
    EXPORT_WARC_FIELDS,
    POST_EXPORT_FIELDS,
    Article,
)
from pipelines.query import Query
from pipelines.store import History
from pipelines.store.history import Version

# a CSV row has every column; a post's columns stay empty for an article
CSV_FIELDS = (EXPORT_ID, *EXPORT_FIELDS, *POST_EXPORT_FIELDS, *EXPORT_WARC_FIELDS)


class Format(enum.StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def _csv_cell(value: object) -> object:
    # lists (matched terms, links) as JSON, so a cell holding a ';' or ',' stays one value
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value


def version_rows(history: History, article: Article) -> list[dict[str, object]]:
    """Every version of the article, oldest first (one, the article, before a revisit
    changed it)."""
    return [{"version": v.version, "fetched_at": v.fetched_at.isoformat(), "title": v.title,
             "text": v.text,
             "published_at": v.published_at.isoformat() if v.published_at else None,
             "changed": v.changed, "warc_file": v.warc_file,
             "warc_record_id": v.warc_record_id}
            for v in history.versions(article.id) or [Version.of(article, 1)]]


def write_export(out: TextIO, articles: Iterable[Article], query: Query | None,
                 fmt: Format, history: History | None = None) -> int:
    """Write the articles `query` matches (all without one); the number written. With
    `history`, each row also carries `removed`, `events` and every version."""
    writer = None
    if fmt is Format.csv:
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, restval="")
        writer.writeheader()
    written = 0
    for article in articles:
        # the query's own matcher decides, as in search, on either backend
        if query is not None and not query.matches(article):
            continue
        row = article.export()
        if history is not None:
            row |= {"removed": article.removed, "events": article.events,
                    "versions": version_rows(history, article)}
        if writer is None:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})
        written += 1
    return written


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
    forwarded_from, links), warc_file, warc_record_id."""
    if as_json and fmt is not Format.jsonl:
        raise fail("--json is JSON Lines: give either --json or --format csv")
    filters = bool(query.strip() or since or until or source or relevant_only)
    compiled = filtered_query(query, "export", None, since, until, source) if filters else None
    if compiled is not None and relevant_only:
        compiled = compiled.restrict(("relevant", [True]))
    if versions and fmt is not Format.jsonl:
        raise fail("--versions is JSON Lines only")
    with store_from(config_of(ctx), db, es, read_only=True) as store:
        if versions and not isinstance(store, History):
            raise fail("--versions needs the SQLite store (--db): Elasticsearch keeps no "
                       "article history yet")
        history = store if versions and isinstance(store, History) else None
        if output is None:
            write_export(sys.stdout, store.iter_articles(), compiled, fmt, history)
            return
        # written beside the target and moved into place, so a failed export never
        # leaves a truncated file where a previous good one was
        partial = output.with_name(output.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as out:
                written = write_export(out, store.iter_articles(), compiled, fmt, history)
            os.replace(partial, output)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise fail(f"cannot write {output}: {exc}") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    err_console.print(f"Exported {written} articles to {output}", highlight=False)

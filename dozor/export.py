"""Articles as export rows, JSON Lines or CSV: what `dozor export` and the UI's export
of a search write (the fields `Article.export` gives)."""

from __future__ import annotations

import csv
import enum
import json
from collections.abc import Iterable, Mapping
from typing import TextIO

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
CSV_FIELDS = (EXPORT_ID, *EXPORT_FIELDS, *POST_EXPORT_FIELDS, *EXPORT_WARC_FIELDS, "label")


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


def label_value(relevant: bool | None) -> str | None:
    """An analyst's label as exported and shown: relevant, not_relevant or none."""
    return None if relevant is None else "relevant" if relevant else "not_relevant"


def write_export(out: TextIO, articles: Iterable[Article], query: Query | None,
                 fmt: Format, history: History | None = None,
                 labels: Mapping[str, bool] | None = None) -> int:
    """Write the articles `query` matches (all without one); the number written. Each row
    carries the analysts' `label` (of `labels`). With `history`, each row also carries
    `removed`, `events` and every version."""
    labels = labels or {}
    writer = None
    if fmt is Format.csv:
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, restval="")
        writer.writeheader()
    written = 0
    for article in articles:
        # the query's own matcher decides, as in search, on either backend
        if query is not None and not query.matches(article):
            continue
        row = article.export() | {"label": label_value(labels.get(article.id))}
        if history is not None:
            row |= {"removed": article.removed, "events": article.events,
                    "versions": version_rows(history, article)}
        if writer is None:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})
        written += 1
    return written

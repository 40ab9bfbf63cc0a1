"""`dozor history URL`: an article's versions, with what changed between them."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from dozor.cli.app import DbOption, EsOption, app, config_of, console, store_from
from pipelines.article import article_id
from pipelines.errors import DozorError
from pipelines.store.history import Version
from pipelines.urls import BadURL, canonicalize


class NoHistory(DozorError):
    """No stored article at that URL."""


def version_doc(v: Version, previous: Version | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": v.version, "fetched_at": v.fetched_at.isoformat(), "title": v.title,
        "published_at": v.published_at.isoformat() if v.published_at else None,
        "changed": v.changed, "warc_file": v.warc_file, "warc_record_id": v.warc_record_id,
        "text": v.text}
    if previous is not None:
        # start-up cost: the revisit stage (extraction, language) loads only for a diff
        from pipelines.revisit import sentence_diff, share_changed, word_diff

        removed, added = sentence_diff(previous.text, v.text)
        doc["diff"] = {"share_changed": share_changed(previous.text, v.text),
                       "removed_sentences": removed, "added_sentences": added,
                       "words": word_diff(previous.text, v.text)}
    return doc


@app.command()
def history(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The article's URL (any form of it).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    db: DbOption = None,
    es: EsOption = None,
) -> None:
    """An article's versions (title, date, what changed, its archived copy) and events."""
    config = config_of(ctx)
    try:
        ident = article_id(canonicalize(url))
    except BadURL as exc:
        raise NoHistory(f"not a usable URL: {exc}") from None
    with store_from(config, db, es) as store:
        article = store.get(ident)
        if article is None:
            raise NoHistory(f"no stored article at {url}")
        versions = store.versions(ident) or [Version.of(article, 1)]
        events = store.events(ident)
    docs = [version_doc(v, versions[i - 1] if i else None) for i, v in enumerate(versions)]
    if as_json:
        print(json.dumps({
            "url": article.canonical_url, "removed": article.removed, "versions": docs,
            "events": [{"kind": e.kind, "at": e.at.isoformat(), "version": e.version,
                        "detail": e.detail} for e in events]}, ensure_ascii=False, indent=2))
        return
    state = "[red]REMOVED[/] " if article.removed else ""
    console.print(f"{state}{article.canonical_url}: {len(versions)} version(s)")
    for doc in docs:
        console.print(f"v{doc['version']}  {doc['fetched_at']}  {doc['title']!r}  "
                      f"published {doc['published_at']}  changed: "
                      f"{', '.join(doc['changed']) or '-'}  archive: {doc['warc_file']} "
                      f"{doc['warc_record_id']}", highlight=False, markup=False)
        diff = doc.get("diff")
        if diff and "text" in doc["changed"]:
            console.print(f"    text changed: {diff['share_changed']:.0%}", highlight=False)
            for s in diff["removed_sentences"]:
                console.print(f"    - {s}", highlight=False, markup=False)
            for s in diff["added_sentences"]:
                console.print(f"    + {s}", highlight=False, markup=False)
    for e in events:
        console.print(f"event {e.kind}  {e.at.isoformat()}  "
                      f"{json.dumps(e.detail, ensure_ascii=False)[:200]}",
                      highlight=False, markup=False)

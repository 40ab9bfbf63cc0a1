"""`dozor reprocess`: archived pages through every stage again, without the network."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dozor.cli.app import DbOption, EsOption, app, config_of, console, fail, store_from
from dozor.cli.options import (
    PROGRESS_INTERVAL,
    ProgressIntervalOption,
    ProgressOption,
    SourcesOption,
    TopicOption,
)
from dozor.cli.progress import progress_shown
from dozor.cli.run import new_by_language
from dozor.lock import run_lock
from pipelines.config import paths
from pipelines.config.backend import store_options
from pipelines.config.sources import load_sources


@app.command()
def reprocess(
    ctx: typer.Context,
    warc: Annotated[Path | None, typer.Option(
        "--warc", help="A WARC file or a directory of them (default: the archive).",
        exists=True)] = None,
    sources: SourcesOption = None,
    topic: TopicOption = None,
    db: DbOption = None,
    es: EsOption = None,
    stale: Annotated[bool, typer.Option(
        "--stale", help="Only the pages whose stored articles older code made (their "
        "derived_version is not this Dozor's): terms and dedup signatures are rebuilt.")
    ] = False,
    progress: ProgressOption = True,
    progress_interval: ProgressIntervalOption = PROGRESS_INTERVAL,
) -> None:
    """Rebuild articles from archived pages, without the network, through every stage."""
    # start-up cost: the stages (language, translation models) load only when used
    from dozor.run import reprocess_archive
    from pipelines.process import DERIVED_VERSION, build_pipeline, stale_records

    config = config_of(ctx, topic)
    keep = frozenset(s.name for s in load_sources(sources or paths.default_sources())
                     if s.keep == "relevant")
    with run_lock(config.paths.data, "dozor reprocess", store_options(config, db, es)["db"]), \
            store_from(config, db, es) as store:
        pipeline, notices = build_pipeline(store, config, keep)
        only = stale_records(store) if stale else None
        try:
            with progress_shown(ctx, progress, progress_interval) as reporter:
                report = reprocess_archive(pipeline, config, warc, only, reporter)
        except FileNotFoundError as exc:
            raise fail(str(exc)) from None
        finally:
            pipeline.close()
        table = new_by_language(store, pipeline.totals.new_ids)

    totals = pipeline.totals
    console.print(f"reprocess: {report.pages} archived pages from {report.files} WARC file(s); "
                  f"{totals.articles} articles, {totals.relevant} relevant, "
                  f"{len(totals.new_ids)} new"
                  + (f"; {report.current} pages left alone (made by this version: "
                     f"{DERIVED_VERSION})" if stale else ""), highlight=False)
    if table is not None:
        console.print(table)
    for line in notices:
        console.print(f"[yellow]notice:[/] {line}", highlight=False)
    if report.batches_failed:
        console.print(f"[red]{report.pages_failed} pages in {report.batches_failed} batch(es) "
                      "failed in the stages (see the log).[/]", highlight=False)
        raise typer.Exit(1)

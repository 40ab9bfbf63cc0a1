"""`dozor translate`: stored articles left pending, translated now (the backfill)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated

import typer

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
from dozor.cli.options import PROGRESS_INTERVAL, ProgressIntervalOption, ProgressOption
from dozor.cli.progress import progress_shown
from pipelines import backfill
from pipelines.backfill import count_pending, requeue_failed, translate_pending
from pipelines.models import models_dir
from pipelines.pool import StagePool, worker_count
from pipelines.progress import Count, Snapshot
from pipelines.translate import load_translator


@app.command("translate")
def translate(
    ctx: typer.Context,
    db: DbOption = None,
    es: EsOption = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="Translate at most this many articles in this run.")] = None,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Also retry articles whose translation failed.")] = False,
    progress: ProgressOption = True,
    progress_interval: ProgressIntervalOption = PROGRESS_INTERVAL,
) -> None:
    """Translate stored articles left pending (e.g. stored before a model was installed).

    Safe to interrupt and run again: each chunk is saved as it is done, and only
    articles still pending are taken up.
    """
    config = config_of(ctx)
    settings = config.settings
    translator, notices = load_translator(settings.translation, settings.languages,
                                          models_dir(config))
    if translator is None:
        raise fail("translation is switched off (translation.mode: none in the settings file)")
    for notice in notices:
        err_console.print(notice, highlight=False, soft_wrap=True)
    if not translator.pairs:
        raise fail("no translation model is installed, so nothing can be translated", code=1)
    counts = {"done": 0, "failed": 0, "skipped": 0}
    with store_from(config, db, es) as store:
        if retry_failed:
            console.print(f"{requeue_failed(store)} failed translation(s) queued again")
        total = count_pending(store, set(translator.pairs))
        if limit is not None:
            total = min(total, limit)
        # the stage pool of run and reprocess (crawl.stage_workers) analyses the terms of
        # one chunk while the next is translated: with one chunk there is nothing to overlap
        workers = worker_count(settings.crawl.stage_workers) if total > backfill.CHUNK else 0
        pool = StagePool(workers, preload=[backfill.__name__]) if workers else None
        with pool or nullcontext(), progress_shown(ctx, progress, progress_interval) as reporter:
            def tell(final: bool = False) -> None:
                if reporter is not None:
                    failed = [Count("failed", counts["failed"])] if counts["failed"] else []
                    reporter(Snapshot("translate", "articles", (
                        Count("translated", sum(counts.values()), total), *failed),
                        final=final))

            tell()
            for chunk in translate_pending(store, translator, total, pool):
                for article in chunk:
                    counts[article.translation_status] += 1
                tell()
            tell(final=True)
    console.print(
        f"translated {counts['done']}, failed {counts['failed']}, skipped {counts['skipped']} "
        f"(not selected by translation.mode: {settings.translation.mode})",
        highlight=False,
    )
    if counts["failed"]:
        console.print("failed articles are logged; run again with --retry-failed to retry them")

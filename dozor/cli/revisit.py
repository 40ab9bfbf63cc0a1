"""`dozor revisit`: fetch stored articles again and record what changed."""

from __future__ import annotations

from typing import Annotated

import typer

from dozor.cli.app import DbOption, EsOption, app, config_of, console, store_from
from dozor.cli.options import (
    PROGRESS_INTERVAL,
    AlertsOption,
    PrivateOption,
    ProgressIntervalOption,
    ProgressOption,
    VerboseOption,
    log_level,
)
from dozor.cli.progress import progress_shown
from dozor.cli.rulefiles import alert_rules
from dozor.lock import run_lock
from pipelines.config.backend import store_options


@app.command()
def revisit(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option(
        "--all", help="Every stored article (of --source), due or not, its schedule "
        "done or not.")] = False,
    source: Annotated[str | None, typer.Option(
        "--source", help="Only this source's articles.")] = None,
    alerts: AlertsOption = None,
    db: DbOption = None,
    es: EsOption = None,
    allow_private_network: PrivateOption = False,
    verbose: VerboseOption = False,
    progress: ProgressOption = True,
    progress_interval: ProgressIntervalOption = PROGRESS_INTERVAL,
) -> None:
    """Fetch stored articles again (those due on the revisit schedule, or --all): a new
    version when the title, text or date changed, an event when an article was edited,
    retitled, redated, removed or restored; alert rules on `event:` are mailed.

    Exit status: 0 when done, 2 for bad options, rules or database, 75 when a run holds
    the lock.
    """
    config = config_of(ctx)
    # a bad settings file (revisit.schedule...) fails now, not after the stages loaded
    _ = config.settings
    from dozor.run import revisit_cycle  # start-up cost: Scrapy loads only to crawl

    # against DOZOR_SOURCES, else the shipped sources file
    alert_rules(alerts, None)
    with run_lock(config.paths.data, "dozor revisit", store_options(config, db, es)["db"]), \
            store_from(config, db, es) as store, \
            progress_shown(ctx, progress, progress_interval) as reporter:
        report, alert_report = revisit_cycle(store, config, alerts, source, all_,
                                             allow_private_network,
                                             log_level=log_level(verbose), progress=reporter)
    console.print(report.line(), highlight=False)
    if alert_report is not None:
        for line in alert_report.lines():
            console.print(line, highlight=False, markup=False)

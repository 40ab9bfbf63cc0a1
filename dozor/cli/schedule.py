"""`dozor schedule`: `dozor run` on a cron expression or an interval, one cycle at a time."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from dozor.cli.app import DbOption, EsOption, app, config_of, fail
from dozor.cli.options import AlertsOption, SourcesOption
from dozor.cli.rulefiles import alert_rules
from dozor.cli.worker import RedisOption, redis_url
from dozor.schedule import (
    CycleRunner,
    make_trigger,
    parse_duration,
    run_command,
    run_schedule,
)
from pipelines.config import paths
from pipelines.config.sources import load_sources


@app.command()
def schedule(
    ctx: typer.Context,
    cron: Annotated[str | None, typer.Option(
        help='Crontab expression, e.g. "*/30 * * * *" (local time). First cycle at the '
        "next match.")] = None,
    every: Annotated[str | None, typer.Option(
        help="Interval such as 30m, 2h, 1h30m (default 30m when --cron is not given). "
        "First cycle at once.")] = None,
    sources: SourcesOption = None,
    alerts: AlertsOption = None,
    db: DbOption = None,
    es: EsOption = None,
    allow_private_network: Annotated[bool, typer.Option(
        "--allow-private-network", help="Passed to `dozor run`.")] = False,
    timeout: Annotated[str | None, typer.Option(
        help="Kill a cycle that runs longer than this (e.g. 2h); default: no limit.")] = None,
    cycles: Annotated[int | None, typer.Option(
        min=1, help="Stop after this many cycles (default: run until stopped).")] = None,
    due: Annotated[bool, typer.Option(
        "--due/--all", help="Each tick crawls only the sources that are due (`dozor run "
        "--due`, the default), so ticks can be frequent: e.g. --every 5m; --all crawls "
        "every source at each tick.")] = True,
    redis: RedisOption = None,
) -> None:
    """Run the full cycle (crawl, process, alert) on a schedule, never two at once.

    Each cycle is `dozor run` in a child process holding the run lock; its output and
    figures go to the log. Ctrl-C or SIGTERM stops the schedule after the running
    cycle. cron or a systemd timer calling `dozor run` is an alternative (README).

    Each tick crawls only the sources that are due (adaptive polling: a source that
    publishes often is due every few minutes, a quiet one every few hours, within the
    settings' polling bounds), so ticks can be frequent: e.g. --every 5m. --all crawls
    every source at each tick.
    """
    if db and es:
        raise fail("give either --db or --es, not both")
    url = redis_url(ctx, redis, db)
    if url:
        return _lead(ctx, url, es, every, cron, sources, cycles)
    trigger = make_trigger(cron, every)
    limit = parse_duration(timeout, "--timeout") if timeout else None
    # a typo in a config file, or a rule naming a source it lacks, fails now, not at
    # every tick
    alert_rules(alerts, sources)

    run_args: list[str] = ["--due"] if due else []
    for option, value in (("--sources", sources), ("--alerts", alerts), ("--db", db)):
        if value is not None:
            run_args += [option, str(Path(value).resolve())]
    if es:
        run_args += ["--es", es]
    if allow_private_network:
        run_args.append("--allow-private-network")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # APScheduler's own lines repeat ours (an overrun tick is logged by dozor.schedule)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    run_schedule(trigger, CycleRunner(run_command(run_args), limit), max_cycles=cycles,
                 start_now=cron is None)


def _lead(ctx: typer.Context, url: str, es: str | None, every: str | None, cron: str | None,
          sources: Path | None, cycles: int | None) -> None:
    """--redis: no cycles of its own; while it leads (one scheduler at a time, a lease in
    Redis), the sources due by their adaptive schedule go on the shared frontier for
    `dozor worker`s at each tick."""
    if cron:
        raise fail("--redis takes --every, not --cron: the due sources are enqueued at "
                   "each tick by their adaptive schedule")
    tick = parse_duration(every or "1m").total_seconds()
    load_sources(sources or paths.default_sources())
    from dozor.worker import lead  # start-up cost: Redis and the store

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    lead(config_of(ctx), url, es, tick, sources_file=sources, cycles=cycles)

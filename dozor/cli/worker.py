"""`dozor worker`: one of any number of crawler processes on a shared Redis frontier."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer
from rich.table import Table

from dozor.cli.app import DbOption, EsOption, app, config_of, console, fail
from dozor.cli.options import (
    AlertsOption,
    PrivateOption,
    SourcesOption,
    VerboseOption,
    log_level,
)
from dozor.cli.sources_status import JsonOption
from dozor.cli.stats import stats_app

RedisOption = Annotated[str | None, typer.Option(
    "--redis", help="Redis URL of the shared frontier, e.g. redis://host:6379/0 "
    "(default: DOZOR_REDIS_URL).")]


def redis_url(ctx: typer.Context, given: str | None, db: object) -> str | None:
    """--redis, else DOZOR_REDIS_URL; combined with --db a usage error (exit 2)."""
    url = given or config_of(ctx).get("DOZOR_REDIS_URL")
    if url and db:
        raise fail("--redis needs the Elasticsearch store (--es): the SQLite store (--db) is "
                   "one machine's and cannot be shared by workers")
    return url


@app.command()
def worker(
    ctx: typer.Context,
    redis: RedisOption = None,
    es: EsOption = None,
    db: DbOption = None,
    sources: SourcesOption = None,
    alerts: AlertsOption = None,
    allow_private_network: PrivateOption = False,
    idle_exit: Annotated[float | None, typer.Option(
        "--exit-when-idle", min=0, help="Stop once the frontier has been empty this many "
        "seconds (default: run until stopped).")] = None,
    visibility_timeout: Annotated[float, typer.Option(
        min=1, help="Seconds a request taken by a worker that stopped answering stays "
        "leased before it goes back to the queue.")] = 120.0,
    verbose: VerboseOption = False,
) -> None:
    """Crawl from the shared Redis frontier, run the stages, write to Elasticsearch.

    Takes due sources (put there by `dozor schedule --redis`) and article requests from
    Redis; run any number, on any number of hosts. Alerts stay exactly-once through the
    delivery log in Elasticsearch. SIGTERM or Ctrl-C stops after the requests in flight."""
    url = redis_url(ctx, redis, db)
    if not url:
        raise fail("give --redis URL (or set DOZOR_REDIS_URL)")
    from dozor.worker import run_worker  # start-up cost: Scrapy and the stages

    handler = logging.StreamHandler()
    # Scrapy lowers the root logger to NOTSET once it starts: without its own level this
    # handler would print every DEBUG line, each scraped page whole among them
    handler.setLevel(logging.INFO)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        handlers=[handler])
    report = run_worker(config_of(ctx), url, es, sources_file=sources, alerts_file=alerts,
                        allow_private_network=allow_private_network, idle_exit=idle_exit,
                        visibility_timeout=visibility_timeout, log_level=log_level(verbose))
    figures = report.crawl
    console.print(f"worker stopped: {figures.get('requests', 0)} requests, "
                  f"{figures.get('pages', 0)} pages, {report.new_ids} new articles, "
                  f"{report.alerts_sent} digests sent")


@stats_app.command("workers")
def workers(ctx: typer.Context, redis: RedisOption = None, as_json: JsonOption = False) -> None:
    """Each live `dozor worker`'s figures, read from Redis: pages, pages/s, errors, and
    the frontier's depth (queued, leased) when it last reported."""
    url = redis_url(ctx, redis, None)
    if not url:
        raise fail("give --redis URL (or set DOZOR_REDIS_URL)")
    from dozor.worker import redis_client, with_backoff, worker_figures

    server = redis_client(url)
    rows = with_backoff(f"Redis at {url}", lambda: worker_figures(server), attempts=1)
    if as_json:
        print(json.dumps(rows))
        return
    if not rows:
        console.print("no worker has reported in the last 30 s", highlight=False)
        return
    table = Table(title="workers", title_justify="left")
    columns = ("worker", "pages", "pages_per_s", "errors", "queued", "leased")
    for column in columns:
        table.add_column(column.replace("_per_s", "/s"), justify="left" if column == "worker"
                         else "right")
    for row in rows:
        table.add_row(*(row.get(c, "-") for c in columns))
    console.print(table)

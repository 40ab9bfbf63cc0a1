"""`dozor worker`: one of any number of crawler processes on a shared Redis frontier."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from dozor.cli.app import DbOption, EsOption, app, config_of, console, fail
from dozor.cli.options import (
    AlertsOption,
    PrivateOption,
    SourcesOption,
    VerboseOption,
    log_level,
)

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

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    report = run_worker(config_of(ctx), url, es, sources_file=sources, alerts_file=alerts,
                        allow_private_network=allow_private_network, idle_exit=idle_exit,
                        visibility_timeout=visibility_timeout, log_level=log_level(verbose))
    figures = report.crawl
    console.print(f"worker stopped: {figures.get('requests', 0)} requests, "
                  f"{figures.get('pages', 0)} pages, {report.new_ids} new articles, "
                  f"{report.alerts_sent} digests sent")

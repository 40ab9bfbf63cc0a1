"""`dozor sources status`: every feed, sitemap, listing and channel's health, worst first."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from dozor.cli.app import DbOption, EsOption, config_of, console, store_from
from dozor.cli.sources import sources_app
from pipelines.health import HealthRecord, worst_first

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]
STYLES = {"ok": None, "silent": "yellow"}


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


def status_table(records: list[HealthRecord]) -> Table:
    table = Table(expand=True)
    for name in ("state", "source", "kind", "url", "status", "failures", "last attempt",
                 "last success", "last new", "items/day", "bytes", "304", "next due"):
        table.add_column(name, overflow="fold", no_wrap=name in ("state", "304"))
    for r in records:
        table.add_row(r.state, r.source, r.kind, r.url + (f" -> {r.final_url}" if r.final_url
                                                          else ""),
                      r.error or str(r.status or "-"), str(r.failures), _when(r.last_attempt),
                      _when(r.last_success), _when(r.last_new),
                      f"{r.items_per_day:.1f}" if r.items_per_day is not None else "-",
                      str(r.bytes), f"{r.not_modified_share:.0%}", _when(r.next_due),
                      style=STYLES.get(r.state, "red"))
    return table


@sources_app.command("status")
def status(ctx: typer.Context, db: DbOption = None, es: EsOption = None,
           as_json: JsonOption = False) -> None:
    """Each source's feeds, sitemaps, listings and channels as the last runs found them:
    state (blocked, moved, unavailable, failing, silent, ok), worst first, with the last
    attempt, success and new item, consecutive failures, items per day, bytes, the share
    of 304 answers and the next due poll. Exit status 1 when any is not ok."""
    with store_from(config_of(ctx), db, es) as store:
        records = worst_first(store.health_records())
    if as_json:
        for r in records:
            print(json.dumps({**r.to_dict(), "not_modified_share": r.not_modified_share},
                             ensure_ascii=False))
    elif records:
        console.print(status_table(records))
    else:
        console.print("no source health recorded yet: `dozor run` records it", highlight=False)
    if any(r.state != "ok" for r in records):
        raise typer.Exit(1)

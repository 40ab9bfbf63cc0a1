"""`dozor stats latency`: how long stories take from publication to the analyst."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from dozor.cli.app import DbOption, EsOption, app, config_of, console, store_from
from dozor.cli.sources_status import JsonOption
from pipelines.article import utcnow
from pipelines.health import LATENCY_SPANS, latency_report

stats_app = typer.Typer(help="Figures about Dozor's own work.", no_args_is_help=True)
app.add_typer(stats_app, name="stats")


def minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f}"


def latency_table(report: dict[str, dict[str, dict[str, float | int | None]]]) -> Table:
    table = Table(title="minutes, p50 / p95 (n)", title_justify="left")
    table.add_column("source")
    for span in LATENCY_SPANS:
        table.add_column(span.replace("_", " "), justify="right")
    for group, spans in report.items():
        cells = []
        for span in LATENCY_SPANS:
            s = spans.get(span)
            cells.append(f"{minutes(s['p50'])} / {minutes(s['p95'])} ({s['n']})" if s else "-")
        table.add_row("all sources" if group == "*" else group, *cells)
    return table


@stats_app.command("latency")
def latency(ctx: typer.Context, db: DbOption = None, es: EsOption = None,
            days: Annotated[int, typer.Option(min=1, help="Articles stored in the last N "
                                                          "days.")] = 7,
            as_json: JsonOption = False) -> None:
    """p50/p95 per source and overall of publication -> first seen, first seen -> stored,
    stored -> delivered (per rule that sent it) and publication -> delivered."""
    with store_from(config_of(ctx), db, es, read_only=True) as store:
        report = latency_report(store.delivery_timings(utcnow() - timedelta(days=days)))
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
    elif report:
        console.print(latency_table(report))
    else:
        console.print(f"no article stored in the last {days} day(s)", highlight=False)

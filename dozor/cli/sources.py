"""`dozor sources check`: every feed, sitemap, listing and Telegram channel fetched once,
reported."""

from __future__ import annotations

import typer
from rich.table import Table

from dozor.cli.app import app, config_of, console
from dozor.cli.options import PrivateOption, SourcesOption, VerboseOption, log_level
from pipelines.config import paths
from pipelines.config.sources import load_sources

sources_app = typer.Typer(help="Inspect the sources file.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")


@sources_app.command("check")
def check(
    ctx: typer.Context,
    sources: SourcesOption = None,
    allow_private_network: PrivateOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Fetch every feed, sitemap, listing and Telegram channel (its first preview page) once;
    report status, items (posts for a channel) and newest date."""
    # start-up cost: Scrapy and Twisted load only for the commands that crawl
    from crawler.runner import check_sources

    loaded = load_sources(sources or paths.default_sources())
    results = check_sources(loaded, config_of(ctx), allow_private_network,
                            log_level=log_level(verbose))
    table = Table(show_lines=False, expand=True)
    for name in ("source", "kind", "url", "status", "format", "items", "newest", "problem"):
        table.add_column(name, overflow="fold", no_wrap=name in ("kind", "status", "items"))
    for r in results:
        style = None if r.ok else "red"
        table.add_row(r.source, r.kind, r.url, str(r.status or "-"), r.format, str(r.items),
                      r.newest.strftime("%Y-%m-%d %H:%M") if r.newest else "-",
                      r.problem or "", style=style)
    console.print(table)
    bad = sum(not r.ok for r in results)
    console.print(f"{len(results) - bad} of {len(results)} feeds/sitemaps/listings answered "
                  "with something readable", highlight=False)
    if bad:
        raise typer.Exit(1)

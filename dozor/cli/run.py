"""`dozor run`, `dozor reprocess` and `dozor sources check`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dozor.cli.app import DbOption, EsOption, app, console, fail, store_from, user_errors
from dozor.lock import LOCK_BUSY_EXIT, LockBusy, run_lock
from pipelines.alert import load_rules
from pipelines.config import paths
from pipelines.config.sources import load_sources
from pipelines.store import Store

SourcesOption = Annotated[Path | None, typer.Option(
    "--sources", help="Sources file (default: the shipped sources.yaml).", dir_okay=False)]
PrivateOption = Annotated[bool, typer.Option(
    "--allow-private-network",
    help="Let the crawler contact private, loopback and link-local addresses (cloud "
    "metadata addresses stay refused). DOZOR_ALLOWED_NETWORKS=CIDR,... allows just those.")]
VerboseOption = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Log the crawl as it goes (Scrapy's INFO level).")]

sources_app = typer.Typer(help="Inspect the sources file.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")


def _log_level(verbose: bool) -> str:
    return "INFO" if verbose else "WARNING"


def _new_by_language(store: Store, new_ids: list[str]) -> Table | None:
    if not new_ids:
        return None
    new: Counter[str] = Counter()
    relevant: Counter[str] = Counter()
    for article in store.iter_articles(new_ids):
        new[article.lang] += 1
        relevant[article.lang] += article.relevant
    table = Table(title="new articles", title_justify="left")
    table.add_column("language")
    table.add_column("new", justify="right")
    table.add_column("relevant", justify="right")
    for lang, count in new.most_common():
        table.add_row(lang, str(count), str(relevant[lang]))
    return table


def _crawl_line(figures: dict[str, int]) -> str:
    parts = [
        f"{figures['requests']} requests",
        f"responses 2xx {figures['responses_2xx']} · 3xx {figures['responses_3xx']} · "
        f"4xx {figures['responses_4xx']} · 5xx {figures['responses_5xx']}",
        f"{figures['pages']} pages",
        f"{figures['seen_skipped']} already stored (not fetched)",
    ]
    for key, label in (("non_html", "not HTML"), ("robots_forbidden", "forbidden by robots.txt"),
                       ("refused", "refused by the network guard"), ("errors", "errors"),
                       ("unsafe_xml", "unsafe feeds refused"),
                       ("bad_documents", "unreadable feeds/sitemaps")):
        if figures.get(key):
            parts.append(f"{figures[key]} {label}")
    return "crawl: " + ", ".join(parts)


@app.command()
def run(
    sources: SourcesOption = None,
    alerts: Annotated[Path | None, typer.Option(
        "--alerts", help="Alert rules file (default: the shipped alerts.yaml).",
        dir_okay=False)] = None,
    db: DbOption = None,
    es: EsOption = None,
    allow_private_network: PrivateOption = False,
    verbose: VerboseOption = False,
) -> None:
    """One cycle: crawl every source, extract, classify, translate, index, send alerts.

    Exit status: 0 when the cycle is done, even if a digest could not be sent: its
    stories are stored and stay pending in the delivery log, a warning line says why,
    and `dozor alerts send` (or the next run) sends them. 1 when a batch of pages failed
    in the stages (archived: `dozor reprocess` runs it again). 2 for a bad sources or
    rules file, options or database. 75 when another run holds the lock.
    """
    # A failed digest does not fail the run: the run's work (crawl, index) is done and
    # nothing is lost, and a scheduler retrying a "failed" run would crawl again only to
    # meet the same mail server. `dozor alerts send` is the command whose job is mail, so
    # it is the one that exits 1 for it.
    from dozor.run import run_cycle

    with user_errors():
        load_sources(sources or paths.default_sources())  # a bad file fails before the lock
        # and bad alert rules before the crawl, not after it with the run's stories
        # waiting for a fixed file
        load_rules(alerts or paths.default_alerts())
    try:
        with run_lock("dozor run"), store_from(db, es) as store, user_errors():
            report = run_cycle(store, sources, alerts, allow_private_network,
                               log_level=_log_level(verbose))
            table = _new_by_language(store, report.batches.new_ids)
    except LockBusy as exc:
        raise fail(str(exc), code=LOCK_BUSY_EXIT) from None

    totals, figures = report.batches, report.crawl
    console.print(_crawl_line(figures), highlight=False)
    console.print(f"stages: {totals.articles} articles, {totals.relevant} relevant, "
                  f"{len(totals.new_ids)} new"
                  + (f", {totals.dropped} off-topic dropped (keep: relevant)"
                     if totals.dropped else "")
                  + (f", {totals.spooled} spooled for retry" if totals.spooled else ""),
                  highlight=False)
    if table is not None:
        console.print(table)
    for line in report.messages:
        console.print(f"[yellow]notice:[/] {line}", highlight=False)
    if report.alerts is not None:
        for line in report.alerts.lines():
            console.print(line, highlight=False, markup=False)
        if report.alerts.failed:
            failures = "; ".join(f"{d.rule}: {d.detail}" for d in report.alerts.failed)
            console.print(f"[yellow]warning:[/] {len(report.alerts.failed)} digest(s) NOT sent "
                          f"({escape(failures)}); their stories are safe and stay pending: "
                          "`dozor alerts send` sends them once the mail server takes them, "
                          "or the next `dozor run` does", highlight=False, soft_wrap=True)
    if figures.get("batches_failed"):
        console.print(f"[red]{figures['pages_failed']} pages in {figures['batches_failed']} "
                      "batch(es) failed in the stages (see the log); they are archived: "
                      "`dozor reprocess` runs them again.[/]", highlight=False)
        raise typer.Exit(1)


@app.command()
def reprocess(
    warc: Annotated[Path | None, typer.Option(
        "--warc", help="A WARC file or a directory of them (default: the archive).",
        exists=True)] = None,
    sources: SourcesOption = None,
    db: DbOption = None,
    es: EsOption = None,
) -> None:
    """Rebuild articles from archived pages, without the network, through every stage."""
    from dozor.run import reprocess_archive
    from pipelines.process import build_pipeline

    with user_errors():
        keep = frozenset(s.name for s in load_sources(sources or paths.default_sources())
                         if s.keep == "relevant")
    try:
        with run_lock("dozor reprocess"), store_from(db, es) as store, user_errors():
            pipeline, notices = build_pipeline(store, keep)
            try:
                report = reprocess_archive(pipeline, warc)
            except FileNotFoundError as exc:
                raise fail(str(exc)) from None
            table = _new_by_language(store, pipeline.totals.new_ids)
    except LockBusy as exc:
        raise fail(str(exc), code=LOCK_BUSY_EXIT) from None

    totals = pipeline.totals
    console.print(f"reprocess: {report.pages} archived pages from {report.files} WARC file(s); "
                  f"{totals.articles} articles, {totals.relevant} relevant, "
                  f"{len(totals.new_ids)} new", highlight=False)
    if table is not None:
        console.print(table)
    for line in notices:
        console.print(f"[yellow]notice:[/] {line}", highlight=False)
    if report.batches_failed:
        console.print(f"[red]{report.pages_failed} pages in {report.batches_failed} batch(es) "
                      "failed in the stages (see the log).[/]", highlight=False)
        raise typer.Exit(1)


@sources_app.command("check")
def check(
    sources: SourcesOption = None,
    allow_private_network: PrivateOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Fetch every feed, sitemap and listing once; report status, items and newest date."""
    from crawler.runner import check_sources

    with user_errors():
        loaded = load_sources(sources or paths.default_sources())
        results = check_sources(loaded, allow_private_network, log_level=_log_level(verbose))
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

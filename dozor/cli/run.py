"""`dozor run`: one full cycle, with its figures for the analyst."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dozor.cli.app import DbOption, EsOption, app, config_of, console, store_from
from dozor.cli.options import (
    PROGRESS_INTERVAL,
    AlertsOption,
    PrivateOption,
    ProgressIntervalOption,
    ProgressOption,
    SourcesOption,
    TopicOption,
    VerboseOption,
    log_level,
)
from dozor.cli.progress import progress_shown
from dozor.lock import run_lock
from pipelines.alert import load_rules
from pipelines.config import paths
from pipelines.config.backend import store_options
from pipelines.config.sources import load_sources
from pipelines.store import ArticlesReader

if TYPE_CHECKING:  # start-up cost: the stages load only for the commands that run them
    from pipelines.alert import AlertReport
    from pipelines.process import BatchResult

ALL_FAILED_EXIT = 3  # every source crawled failed: documented in `dozor run --help`


def new_by_language(store: ArticlesReader, new_ids: list[str]) -> Table | None:
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
                       ("bad_documents", "unreadable feeds/sitemaps"),
                       ("too_old", "entries too old"),
                       ("offsite", "entries outside the source's domains"),
                       ("bad_links", "malformed links"), ("too_long", "over-long links"),
                       ("offsite_redirects", "redirects out of the source's domains"),
                       ("redirect_loops", "redirect loops"),
                       ("sitemap_bounds", "sitemaps beyond the depth/count bound"),
                       ("over_budget", "requests past the source's time budget"),
                       ("telegram_posts", "Telegram posts"),
                       ("telegram_pages", "Telegram channel pages"),
                       ("telegram_skipped", "Telegram messages skipped (service, poll, sticker, "
                                            "media)"),
                       ("telegram_unavailable", "Telegram channels unavailable"),
                       ("not_modified", "feeds/sitemaps/channels unchanged (304)")):
        if figures.get(key):
            parts.append(f"{figures[key]} {label}")
    return "crawl: " + ", ".join(parts)


def stage_line(totals: BatchResult, fetched: int, seconds: float) -> str:
    """CPU seconds per stage and pages per second, so a slow stage shows without a
    profiler."""
    spent = sum(totals.seconds.values())
    parts = [f"{stage} {cpu:.1f}" for stage, cpu in totals.seconds.items()]
    rates = [f"{fetched / seconds:.1f} pages/s fetched" if seconds else "",
             f"{totals.pages / spent:.1f} pages per stage CPU second" if spent else ""]
    return ("stage CPU seconds: " + (", ".join(parts) or "none") + "; "
            + ", ".join(r for r in rates if r))


@app.command()
def run(
    ctx: typer.Context,
    sources: SourcesOption = None,
    alerts: AlertsOption = None,
    topic: TopicOption = None,
    db: DbOption = None,
    es: EsOption = None,
    allow_private_network: PrivateOption = False,
    verbose: VerboseOption = False,
    due: Annotated[bool, typer.Option(
        "--due", help="Crawl only the sources whose next poll is due (adaptive polling: "
        "`dozor sources status` shows when each is).")] = False,
    progress: ProgressOption = True,
    progress_interval: ProgressIntervalOption = PROGRESS_INTERVAL,
) -> None:
    """One cycle: crawl every source, extract, classify, translate, index, send alerts.

    Exit status: 0 when the cycle is done, even if a digest could not be sent: its
    stories are stored and stay pending in the delivery log, a warning line says why,
    and `dozor alerts send` (or the next run) sends them. 1 when a batch of pages failed
    in the stages (archived: `dozor reprocess` runs it again). 2 for a bad sources or
    rules file, options or database. 3 when every source crawled failed (each of its
    feeds, sitemaps, listings and channels), so cron and systemd see a dead crawl. 75
    when another run holds the lock.
    """
    # A failed digest does not fail the run: the run's work (crawl, index) is done and
    # nothing is lost, and a scheduler retrying a "failed" run would crawl again only to
    # meet the same mail server. `dozor alerts send` is the command whose job is mail, so
    # it is the one that exits 1 for it.
    config = config_of(ctx, topic)
    # a bad file fails before the lock
    names = {s.name for s in load_sources(sources or paths.default_sources())}
    # and bad alert rules (one naming a source the run does not crawl) before the crawl,
    # not after it with the run's stories waiting for a fixed file
    load_rules(alerts or paths.default_alerts(), sources=names)
    # start-up cost: Scrapy, Twisted and the stages load only for the commands that crawl,
    # and only once the files are known to be good
    from dozor.run import run_cycle

    with run_lock(config.paths.data, "dozor run", store_options(config, db, es)["db"]), \
            store_from(config, db, es) as store, \
            progress_shown(ctx, progress, progress_interval) as reporter:
        report = run_cycle(store, config, sources, alerts, allow_private_network,
                           log_level=log_level(verbose), due_only=due, progress=reporter)
        table = new_by_language(store, report.batches.new_ids)

    totals, figures = report.batches, report.crawl
    if due:
        console.print(f"due: {report.crawled_sources} source(s) crawled, "
                      f"{report.skipped_sources} not due yet", highlight=False)
        if not figures:
            _print_alerts(report.alerts)
            return
    console.print(_crawl_line(figures), highlight=False)
    console.print(f"stages: {totals.articles} articles, {totals.relevant} relevant, "
                  f"{len(totals.new_ids)} new"
                  + (f", {totals.dropped} off-topic dropped (keep: relevant)"
                     if totals.dropped else "")
                  + (f", {totals.spooled} spooled for retry" if totals.spooled else ""),
                  highlight=False)
    if verbose:
        console.print(stage_line(totals, figures.get("pages", 0), figures.get("seconds", 0)),
                      highlight=False)
    if report.revisits is not None:
        console.print(report.revisits.line(), highlight=False)
    if table is not None:
        console.print(table)
    for line in report.messages:
        console.print(f"[yellow]notice:[/] {line}", highlight=False)
    _print_alerts(report.alerts)
    for line in report.failures:
        console.print(f"[red]failed:[/] {escape(line)}", highlight=False, soft_wrap=True)
    for line in report.health_lines:
        console.print(line, highlight=False, markup=False)
    if report.all_failed:
        console.print(f"[red]every source failed ({report.failed_sources}): nothing was "
                      "crawled[/]", highlight=False)
        raise typer.Exit(ALL_FAILED_EXIT)
    if figures.get("batches_failed"):
        console.print(f"[red]{figures['pages_failed']} pages in {figures['batches_failed']} "
                      "batch(es) failed in the stages (see the log); they are archived: "
                      "`dozor reprocess` runs them again.[/]", highlight=False)
        raise typer.Exit(1)


def _print_alerts(alerts: AlertReport | None) -> None:
    if alerts is None:
        return
    for line in alerts.lines():
        console.print(line, highlight=False, markup=False)
    if alerts.failed:
        failures = "; ".join(f"{d.rule}: {d.detail}" for d in alerts.failed)
        console.print(f"[yellow]warning:[/] {len(alerts.failed)} digest(s) NOT sent "
                      f"({escape(failures)}); their stories are safe and stay pending: "
                      "`dozor alerts send` sends them once the mail server takes them, "
                      "or the next `dozor run` does", highlight=False, soft_wrap=True)

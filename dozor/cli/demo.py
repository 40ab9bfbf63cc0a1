"""`dozor demo`: one full cycle, offline, against the bundled news site on 127.0.0.1."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import replace
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table
from rich.text import Text

from dozor.cli.app import app, config_of, console, fail
from dozor.cli.options import PROGRESS_INTERVAL, ProgressIntervalOption, ProgressOption
from dozor.cli.progress import progress_shown
from dozor.cli.search import results_table
from dozor.demo.server import DemoServer
from pipelines.query import parse_query
from pipelines.store import ArticlesReader, open_store

# Words in their dictionary forms: the index matches every inflection (колония finds
# колонии, помилування finds помилуваних), in all three languages at once.
SEARCH_EXAMPLE = "колония OR колонія OR colony"


def _languages_table(store: ArticlesReader) -> Table:
    stored: Counter[str] = Counter()
    relevant: Counter[str] = Counter()
    for article in store.iter_articles():
        stored[article.lang] += 1
        relevant[article.lang] += article.relevant
    table = Table(title="Stored articles per language")
    for column in ("language", "articles", "relevant"):
        table.add_column(column, justify="right" if column != "language" else "left")
    for lang in sorted(stored):
        table.add_row(lang, str(stored[lang]), str(relevant[lang]))
    table.add_row("all", str(sum(stored.values())), str(sum(relevant.values())), style="bold")
    return table


def _relevant_table(store: ArticlesReader) -> Table:
    table = Table(title="On topic (shipped profile: prisoner recruitment)", show_lines=True,
                  expand=True)
    table.add_column("title", ratio=3, overflow="fold")
    table.add_column("source", no_wrap=True)
    table.add_column("lang", no_wrap=True)
    table.add_column("matched terms", ratio=2, overflow="fold")
    articles = sorted((a for a in store.iter_articles() if a.relevant),
                      key=lambda a: (a.lang, -a.score))
    for article in articles:
        title = Text(article.title, style="bold")
        if article.title_en:
            title.append("\n" + article.title_en, style="italic")
        elif article.translation_status == "pending":
            title.append("\n(English title pending: no translation model installed)", style="dim")
        table.add_row(title, article.source, article.lang, ", ".join(article.matched_terms))
    return table


def _text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else "(no text part)"


@app.command()
def demo(
    ctx: typer.Context,
    keep: Annotated[
        Path | None,
        typer.Option("--keep", help="Keep the demo's database, WARC archive and outbox in "
                     "this folder (default: a temporary folder, removed afterwards).",
                     file_okay=False),
    ] = None,
    progress: ProgressOption = True,
    progress_interval: ProgressIntervalOption = PROGRESS_INTERVAL,
) -> None:
    """Crawl a small bundled news site (ru/uk/en) on 127.0.0.1 end to end, offline, and
    show what Dozor found: languages, on-topic stories, a search, the alert email."""
    # start-up cost: Scrapy, Twisted and the stages load only for the commands that crawl
    from dozor.run import run_cycle

    if keep and (keep / "demo.db").exists():
        # the site gets a new port each time, so a second demo into the same database
        # would store every story again under new URLs
        raise fail(f"{keep} already holds a demo database: give --keep a new folder")
    with tempfile.TemporaryDirectory(prefix="dozor-demo-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        outbox = work / "outbox"
        with DemoServer() as server:
            base = config_of(ctx)
            config = replace(base, paths=replace(
                base.paths, outbox=outbox, warc=work / "warc", spool=work / "spool",
            )).with_env(
                DOZOR_ALLOWED_NETWORKS="127.0.0.1/32",  # the demo site and nothing else
                DOZOR_SMTP_HOST=None,  # the digest goes to the outbox, never to a real server
                DOZOR_TELEGRAM_URL=server.base,  # the demo's own channels, not t.me
            )
            sources = work / "sources.yaml"
            sources.write_text(yaml.safe_dump(server.sources(), allow_unicode=True),
                               encoding="utf-8")
            outlets = ", ".join([*(o.name for o in server.site.outlets.values()),
                                 *(f"@{name}" for name in sorted(server.channels))])
            console.print(f"Serving the demo news site at [bold]{server.base}[/] ({outlets})",
                          highlight=False)
            store = open_store(db=work / "demo.db")
            try:
                with progress_shown(ctx, progress, progress_interval) as reporter:
                    report = run_cycle(store, config, sources_file=sources, log_level="ERROR",
                                       progress=reporter)
                crawl = report.crawl
                console.print(f"Fetched {crawl.get('pages', 0)} pages "
                              f"({crawl.get('requests', 0)} requests), stored "
                              f"{len(report.batches.new_ids)} new articles.", highlight=False)
                for line in report.messages:
                    console.print(f"[dim]{line}[/]", highlight=False)
                if not report.batches.new_ids:
                    raise fail("the demo crawl stored nothing; see the messages above", code=1)
                console.print(_languages_table(store))
                console.print(_relevant_table(store))
                console.rule(f"dozor search {SEARCH_EXAMPLE!r}")
                console.print(results_table(store.search(parse_query(SEARCH_EXAMPLE), limit=6)))
            finally:
                store.close()
        _print_alert(outbox)
        if keep:
            console.print(f"Kept in {work}: try  dozor search --db {work / 'demo.db'} "
                          "'relevant:true AND lang:uk'", highlight=False)


def _print_alert(outbox: Path) -> None:
    emails = sorted(outbox.glob("*.eml"))
    if not emails:
        raise fail(f"no alert email was written to {outbox}", code=1)
    for path in emails:
        message = message_from_bytes(path.read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        console.rule("Alert email (written to the outbox; SMTP when DOZOR_SMTP_HOST is set)")
        console.print(f"To: {message['To']}\nSubject: {message['Subject']}\n", highlight=False)
        console.print(_text_part(message), highlight=False, markup=False)

"""Options several commands share, spelt once so their help reads the same everywhere."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from pipelines.query import Query, parse_query

SourcesOption = Annotated[Path | None, typer.Option(
    "--sources", help="Sources file (default: the shipped sources.yaml).", dir_okay=False)]
TopicOption = Annotated[Path | None, typer.Option(
    "--topic", help="Topic profile (default: DOZOR_TOPIC, else the shipped topic.yaml).",
    dir_okay=False)]
AlertsOption = Annotated[Path | None, typer.Option(
    "--alerts", help="Alert rules file (default: the shipped alerts.yaml).", dir_okay=False)]
PrivateOption = Annotated[bool, typer.Option(
    "--allow-private-network",
    help="Let the crawler contact private, loopback and link-local addresses (cloud "
    "metadata addresses stay refused). DOZOR_ALLOWED_NETWORKS=CIDR,... allows just those.")]
VerboseOption = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Log the crawl as it goes (Scrapy's INFO level).")]
ProgressOption = Annotated[bool, typer.Option(
    "--progress/--no-progress",
    help="Show how the work goes on stderr: a live display on a terminal, else a line "
    "every --progress-interval seconds (a JSON log record with --log-format json).")]
ProgressIntervalOption = Annotated[float, typer.Option(
    "--progress-interval", min=0.1, metavar="SECONDS",
    help="Seconds between progress lines when stderr is not a terminal.")]
PROGRESS_INTERVAL = 30.0


SinceOption = Annotated[str | None, typer.Option(
    "--since", help="Published on or after: a day (2026-01-31), a time or now-7d.")]
UntilOption = Annotated[str | None, typer.Option(
    "--until", help="Published on or before: a day (the whole day), a time or now-1d.")]
SourceFilterOption = Annotated[list[str] | None, typer.Option(
    "--source", help="Only this source (repeat for several).")]


class Sort(enum.StrEnum):
    relevance = "relevance"
    newest = "newest"
    oldest = "oldest"


def filtered_query(text: str, name: str, lang: str | None = None, since: str | None = None,
                   until: str | None = None, sources: list[str] | None = None) -> Query:
    """The query a search or an export runs: `text` (all articles when empty) with the
    command's filters joined to its compiled tree."""
    query = parse_query(text, name=name) if text.strip() else Query.every(name)
    return (query.in_language(lang).between("published", since, until)
            .restrict(("source", sources or [])))


def log_level(verbose: bool) -> str:
    return "INFO" if verbose else "WARNING"

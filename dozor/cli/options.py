"""Options several commands share, spelt once so their help reads the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SourcesOption = Annotated[Path | None, typer.Option(
    "--sources", help="Sources file (default: the shipped sources.yaml).", dir_okay=False)]
AlertsOption = Annotated[Path | None, typer.Option(
    "--alerts", help="Alert rules file (default: the shipped alerts.yaml).", dir_okay=False)]
PrivateOption = Annotated[bool, typer.Option(
    "--allow-private-network",
    help="Let the crawler contact private, loopback and link-local addresses (cloud "
    "metadata addresses stay refused). DOZOR_ALLOWED_NETWORKS=CIDR,... allows just those.")]
VerboseOption = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Log the crawl as it goes (Scrapy's INFO level).")]


def log_level(verbose: bool) -> str:
    return "INFO" if verbose else "WARNING"

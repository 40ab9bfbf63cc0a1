"""The `dozor` Typer application and the options every command shares."""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dozor.cli.errors import DozorGroup, err_console, fail
from pipelines.config.backend import store_options
from pipelines.config.config import Config
from pipelines.store import Store, open_store

app = typer.Typer(
    name="dozor",
    help="Dozor: multilingual news monitoring (crawl, extract, classify, translate, index, alert).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    cls=DozorGroup,
)

console = Console()
__all__ = ["app", "config_of", "console", "err_console", "fail", "store_from"]


class LogFormat(enum.StrEnum):
    text = "text"
    json = "json"


class JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(),
               "level": record.levelname.lower(), "logger": record.name,
               "message": record.getMessage()}
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        if isinstance(progress := getattr(record, "progress", None), dict):
            doc["progress"] = progress  # a progress line's figures (dozor.cli.progress)
        return json.dumps(doc, ensure_ascii=False)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"dozor {version('dozor')}")
        raise typer.Exit()


@app.callback()
def _configure(
    ctx: typer.Context,
    _version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_show_version,
        help="Print the version and exit.")] = False,
    log_format: Annotated[LogFormat, typer.Option(
        "--log-format", help="text, or json: one JSON object per log record on stderr "
        "(time, level, logger, message), for log collectors.")] = LogFormat.text,
) -> None:
    # the CLI is the entry point: the environment is read here, once, for the command
    ctx.obj = Config.from_env()
    if log_format is LogFormat.json:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLogFormatter())
        # every logger, Scrapy's included, propagates to the root (the UI's access log
        # takes this handler too)
        logging.getLogger().handlers[:] = [handler]
        logging.getLogger("dozor.ui.access").addHandler(handler)


def config_of(ctx: typer.Context, topic: Path | None = None) -> Config:
    """The Config the `dozor` callback built for this command; a command's `--topic`
    takes the place of DOZOR_TOPIC (and of the shipped profile) for everything it runs."""
    config = ctx.find_root().obj
    assert isinstance(config, Config)
    if topic is not None:
        config = dataclasses.replace(config, paths=dataclasses.replace(config.paths,
                                                                       topic=topic))
    return config

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="SQLite database file (the embedded default).", dir_okay=False),
]
EsOption = Annotated[
    str | None,
    typer.Option(
        "--es",
        help="Elasticsearch URL (default: $ELASTICSEARCH_URL); switches the command from "
        "SQLite to Elasticsearch. --db wins over the environment variable.",
    ),
]


@contextmanager
def store_from(config: Config, db: Path | None, es: str | None,
               read_only: bool = False) -> Iterator[Store]:
    """The store a command names; `read_only` for a command that only reads (SQLite opens
    the file read-only: it must exist, and read-only media work)."""
    if db and es:
        raise fail("give either --db or --es, not both")
    if read_only and db and not db.exists():
        # reading a database that is not there would create an empty one and answer nothing
        raise fail(f"--db {db}: no such database (dozor run creates it)")
    store = open_store(**store_options(config, db, es), read_only=read_only)
    try:
        yield store
    finally:
        store.close()


def is_tty() -> bool:
    return sys.stdout.isatty()

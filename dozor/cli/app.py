"""The `dozor` Typer application and the options every command shares."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pipelines.errors import ConfigError
from pipelines.store import Store, StoreError, open_store

app = typer.Typer(
    name="dozor",
    help="Dozor: multilingual news monitoring (crawl, extract, classify, translate, index, alert).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)

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


def fail(message: str, code: int = 2) -> typer.Exit:
    # escaped: messages quote user input and patterns like [a-z0-9] that rich would eat
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Config and backend problems end the command with their message, not a traceback."""
    try:
        yield
    except (ConfigError, StoreError) as exc:
        raise fail(str(exc)) from None


@contextmanager
def store_from(db: Path | None, es: str | None) -> Iterator[Store]:
    if db and es:
        raise fail("give either --db or --es, not both")
    with user_errors():
        store = open_store(db=db, es=es)
        try:
            yield store
        finally:
            store.close()


def is_tty() -> bool:
    return sys.stdout.isatty()

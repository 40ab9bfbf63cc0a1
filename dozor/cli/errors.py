"""Every `DozorError` that reaches the command line ends the command here: its message
on one line, and the exit status of its class. No command catches them one by one.

Exit status: 0 done; 1 the command ran but part of its work failed (each command's
help says which part); 2 a bad file, option, setting, query or backend (every
`DozorError` without its own entry below); 3 `dozor run` crawled sources and every
one failed; 75 (EX_TEMPFAIL) another cycle holds the run lock.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from dozor.lock import LOCK_BUSY_EXIT, LockBusy
from pipelines.errors import DozorError
from pipelines.query import QueryError

USAGE_EXIT = 2
EXIT_CODES: dict[type[DozorError], int] = {LockBusy: LOCK_BUSY_EXIT}
# a query error names a position in the query the analyst typed: say it is the query's
PREFIXES: dict[type[DozorError], str] = {QueryError: "query: "}

err_console = Console(stderr=True)


def fail(message: str, code: int = USAGE_EXIT) -> typer.Exit:
    # escaped: messages quote user input and patterns like [a-z0-9] that rich would eat
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def exit_for(exc: DozorError) -> typer.Exit:
    """Print `exc` as the command's error line; the Exit carrying its status (the
    nearest class with an entry decides)."""
    classes = type(exc).__mro__
    code = next((EXIT_CODES[c] for c in classes if c in EXIT_CODES), USAGE_EXIT)
    prefix = next((PREFIXES[c] for c in classes if c in PREFIXES), "")
    return fail(prefix + str(exc), code)


class DozorGroup(TyperGroup):
    """The `dozor` command group: runs a command and maps its DozorError to an exit."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except DozorError as exc:
            raise exit_for(exc) from None

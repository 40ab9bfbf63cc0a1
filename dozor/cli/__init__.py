"""Command-line interface: one module per command, named like it, each registering
itself on the shared app (`dozor.cli.app`); errors end a command in `dozor.cli.errors`."""

from __future__ import annotations

from dozor.cli.app import app

# Importing a command module registers its commands: one line per module.
# isort: off
from dozor.cli import run  # noqa: E402,F401
from dozor.cli import reprocess  # noqa: E402,F401
from dozor.cli import sources  # noqa: E402,F401
from dozor.cli import sources_status  # noqa: E402,F401
from dozor.cli import stats  # noqa: E402,F401
from dozor.cli import search  # noqa: E402,F401
from dozor.cli import export  # noqa: E402,F401
from dozor.cli import models  # noqa: E402,F401
from dozor.cli import translate  # noqa: E402,F401
from dozor.cli import alerts  # noqa: E402,F401
from dozor.cli import schedule  # noqa: E402,F401
from dozor.cli import demo  # noqa: E402,F401
from dozor.cli import setup  # noqa: E402,F401
from dozor.cli import serve  # noqa: E402,F401
from dozor.cli import help  # noqa: E402,F401
from dozor.cli import revisit  # noqa: E402,F401
from dozor.cli import history  # noqa: E402,F401
from dozor.cli import worker  # noqa: E402,F401
from dozor.cli import topic  # noqa: E402,F401
# isort: on


def main() -> None:
    app()

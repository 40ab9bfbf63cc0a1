"""Command-line interface. Each module registers its commands on the shared app."""

from __future__ import annotations

from dozor.cli.app import app

# Importing a command module registers its commands.
from dozor.cli import run  # noqa: E402,F401


def main() -> None:
    app()

"""`dozor models install | list`: the offline translation models (Argos packages)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dozor.cli.app import app, config_of, console, err_console, fail
from pipelines import models

models_app = typer.Typer(
    help="Offline translation models (Argos Translate packages): install and list.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def _splitter(model: models.InstalledModel) -> str:
    return f"minisbd ({model.sbd_model.name})" if model.sbd_model else "sentencex (rule-based)"


def _installed_line(model: models.InstalledModel) -> str:
    return (f"installed {model.from_code}→{model.to_code} {model.version} "
            f"({_size(model.size)}) in {model.path}; sentence splitting: {_splitter(model)}")


@models_app.command("install")
def install(
    ctx: typer.Context,
    langs: Annotated[list[str] | None, typer.Argument(
        help="Source languages to install a →en package for, e.g. ru uk.")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="Install a local .argosmodel file instead (no network needed).",
        dir_okay=False)] = None,
) -> None:
    """Install Argos Translate packages (→English) from the package index or a file."""
    if bool(langs) == bool(file):
        raise fail("give source languages (dozor models install ru uk) "
                   "or --file PATH.argosmodel, not both")
    directory = models.models_dir(config_of(ctx))
    if file:
        model = models.install_file(file, directory)
        notice = models.fetch_sbd_model(model, download_ok=False)
        console.print(_installed_line(models.find(directory, model.from_code) or model),
                      highlight=False)
        if notice:
            err_console.print(f"note: {notice}", highlight=False)
        return
    langs = list(dict.fromkeys(langs or []))
    if models.TARGET in langs:
        raise models.ModelError("English is the target language; nothing to install")
    index = models.available(directory)
    for lang in langs:
        with Progress(TextColumn(f"{lang}→{models.TARGET}"), BarColumn(), DownloadColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task("download", total=None)

            def progress(done: int, total: int | None, task=task, bar=bar) -> None:
                bar.update(task, completed=done, total=total)

            model, notice = models.install_from_index(lang, directory, index, progress)
        console.print(_installed_line(model), highlight=False)
        if notice:
            err_console.print(f"note: {notice}", highlight=False)


@models_app.command("list")
def list_models(ctx: typer.Context) -> None:
    """Installed translation packages: pair, version, size, sentence splitter, path."""
    directory = models.models_dir(config_of(ctx))
    found = models.installed(directory)
    if not found:
        console.print(f"No translation models in {directory}. Install one with: "
                      f"dozor models install ru uk (or --file PATH.argosmodel)", highlight=False)
        return
    table = Table(title=f"Translation models in {directory}", title_justify="left")
    for column in ("pair", "version", "size", "sentences", "path"):
        table.add_column(column, overflow="fold")
    for model in found:
        table.add_row(f"{model.from_code}→{model.to_code}", model.version, _size(model.size),
                      _splitter(model), str(model.path))
    console.print(table)

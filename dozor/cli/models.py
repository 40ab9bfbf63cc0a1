"""`dozor models ...` (Argos translation packages) and `dozor translate` (backfill)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dozor.cli.app import DbOption, EsOption, app, console, err_console, fail, store_from
from pipelines import models
from pipelines.article import Article
from pipelines.config.settings import get_settings
from pipelines.store import Store
from pipelines.terms.normalisation import analyse
from pipelines.translate import load_translator

models_app = typer.Typer(
    help="Offline translation models (Argos Translate packages): install and list.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")

BACKFILL_CHUNK = 32  # articles per store page; their sentences are translated together


def _directory() -> Path:
    return models.models_dir(get_settings().translation)


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
    directory = _directory()
    try:
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
    except models.ModelError as exc:
        raise fail(str(exc)) from None


@models_app.command("list")
def list_models() -> None:
    """Installed translation packages: pair, version, size, sentence splitter, path."""
    directory = _directory()
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


def _reset_failed(store: Store) -> int:
    """Mark failed translations pending again, so the backfill takes them up."""
    failed: list[Article] = []
    count = 0
    for article in store.iter_articles():
        if article.translation_status == "failed":
            article.translation_status = "pending"
            failed.append(article)
        if len(failed) >= BACKFILL_CHUNK:
            store.mark_translation(failed)
            count += len(failed)
            failed = []
    store.mark_translation(failed)
    return count + len(failed)


def _count_pending(store: Store, langs: set[str]) -> int:
    total, after = 0, ""
    while page := store.pending_translation(limit=500, after_id=after):
        total += sum(a.lang in langs for a in page)
        after = page[-1].id
    return total


@app.command("translate")
def translate(
    db: DbOption = None,
    es: EsOption = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="Translate at most this many articles in this run.")] = None,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Also retry articles whose translation failed.")] = False,
) -> None:
    """Translate stored articles left pending (e.g. stored before a model was installed).

    Safe to interrupt and run again: each chunk is saved as it is done, and only
    articles still pending are taken up.
    """
    settings = get_settings()
    translator, notices = load_translator(settings.translation, settings.languages)
    if translator is None:
        raise fail("translation is switched off (translation.mode: none in the settings file)")
    for notice in notices:
        err_console.print(notice, highlight=False, soft_wrap=True)
    if not translator.pairs:
        raise fail("no translation model is installed, so nothing can be translated", code=1)
    langs = set(translator.pairs)
    counts = {"done": 0, "failed": 0, "skipped": 0}
    with store_from(db, es) as store:
        if retry_failed:
            console.print(f"{_reset_failed(store)} failed translation(s) queued again")
        total = _count_pending(store, langs)
        if limit is not None:
            total = min(total, limit)
        with Progress(TextColumn("translating"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("translate", total=total)
            after, seen = "", 0
            while seen < total and (page := store.pending_translation(BACKFILL_CHUNK, after)):
                after = page[-1].id
                todo = [a for a in page if a.lang in langs][: total - seen]
                if not todo:
                    continue
                translator.translate(todo)
                analyse(todo)
                store.mark_translation(todo)
                for article in todo:
                    counts[article.translation_status] += 1
                seen += len(todo)
                bar.advance(task, len(todo))
    console.print(
        f"translated {counts['done']}, failed {counts['failed']}, skipped {counts['skipped']} "
        f"(not selected by translation.mode: {settings.translation.mode})",
        highlight=False,
    )
    if counts["failed"]:
        console.print("failed articles are logged; run again with --retry-failed to retry them")

"""How long work shows its progress on stderr: a live display when stderr is a terminal,
otherwise a plain line every few seconds (a JSON log record with `--log-format json`),
so cron mail and log collectors see a long crawl move without a screen of redraws."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from dozor.cli.app import JsonLogFormatter, LogFormat
from dozor.cli.errors import err_console
from pipelines.progress import Count, Reporter, Snapshot

PROGRESS_LOGGER = "dozor.progress"
LIVE_INTERVAL = 0.25  # seconds between the snapshots a live display takes
# a timer's tick may come a little early: it still counts as the interval
_SLACK = 0.95


def _of(count: Count) -> str:
    return f"{count.done}" if count.total is None else f"{count.done} of {count.total}"


def describe(snapshot: Snapshot, seconds: float) -> str:
    """`progress: crawl: fetched 120 pages, processed 96 of 120; per source
    fetched/processed: wire 50/40, tass 70/56; 3.2 pages/s`."""
    head, *rest = snapshot.counts
    figures = ", ".join([f"{head.label} {_of(head)} {snapshot.unit}",
                         *(f"{c.label} {_of(c)}" for c in rest)])
    line = f"progress: {snapshot.work}{' done' if snapshot.final else ''}: {figures}"
    if snapshot.parts:
        width = max(len(f) for f in snapshot.parts.values())
        labels = "/".join(c.label for c in snapshot.counts[:width])
        line += f"; per source {labels}: " + ", ".join(
            f"{name} {'/'.join(map(str, figs))}" for name, figs in snapshot.parts.items())
    if seconds > 0:
        line += f"; {head.done / seconds:.1f} {snapshot.unit}/s"
    return line


class PlainProgress:
    """A line per piece of work every `interval` seconds, as a `dozor.progress` log
    record, and its last one when the work ends (none for work over within an interval:
    the command's summary says it all)."""

    def __init__(self, interval: float, log: logging.Logger) -> None:
        self.interval = interval
        self.log = log
        self.started: dict[str, float] = {}
        self.shown: dict[str, float] = {}

    def __call__(self, snapshot: Snapshot) -> None:
        now = time.monotonic()
        started = self.started.setdefault(snapshot.work, now)
        if snapshot.final:
            del self.started[snapshot.work]
            if self.shown.pop(snapshot.work, None) is None:
                return
        elif now - self.shown.get(snapshot.work, started) < self.interval * _SLACK:
            return
        else:
            self.shown[snapshot.work] = now
        # the figures too, for a JSON log record's readers
        self.log.info(describe(snapshot, now - started), extra={"progress": asdict(snapshot)})


class LiveProgress:
    """rich's progress display: a bar per count, and per part (per source: its last
    figure of its first)."""

    interval = LIVE_INTERVAL

    def __init__(self, display: Progress) -> None:
        self.display = display
        self.tasks: dict[tuple[str, ...], TaskID] = {}
        self.started: dict[str, float] = {}

    def _show(self, key: tuple[str, ...], description: str, done: int, total: int | None,
              rate: str = "") -> None:
        task = self.tasks.get(key)
        if task is None:
            task = self.tasks[key] = self.display.add_task(description, total=total, rate=rate)
        self.display.update(task, completed=done, total=total, rate=rate)

    def __call__(self, snapshot: Snapshot) -> None:
        work = snapshot.work
        seconds = time.monotonic() - self.started.setdefault(work, time.monotonic())
        for i, count in enumerate(snapshot.counts):
            rate = f"{count.done / seconds:.1f} {snapshot.unit}/s" if i == 0 and seconds else ""
            # once the work is over an open count is complete: its bar stops pulsing
            total = count.done if count.total is None and snapshot.final else count.total
            self._show((work, count.label), f"{work} {count.label}" if i == 0 else
                       f"  {count.label}", count.done, total, rate)
        for name, figs in snapshot.parts.items():
            self._show((work, "part", name), f"  {name}", figs[-1],
                       figs[0] if len(figs) > 1 else None)


@contextmanager
def progress_shown(ctx: typer.Context, show: bool, interval: float) -> Iterator[Reporter | None]:
    """The reporter for a command's long work (None with --no-progress)."""
    if not show:
        yield None
        return
    json_lines = ctx.find_root().params.get("log_format") == LogFormat.json
    if err_console.is_terminal and not err_console.is_dumb_terminal and not json_lines:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                      console=err_console) as display:
            yield LiveProgress(display)
        return
    log = logging.getLogger(PROGRESS_LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter() if json_lines else logging.Formatter("%(message)s"))
    # its own handler: the crawl's log level (WARNING unless --verbose) is not progress's
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield PlainProgress(interval, log)
    finally:
        log.removeHandler(handler)

"""One Dozor cycle at a time per data directory, and per database.

`dozor run` (by hand, from cron, or as a child of `dozor schedule`) and `dozor alerts
send` hold an exclusive flock on a file in the data directory and, for a SQLite
store, on `<database>.lock` beside the database file: two cycles with different data
directories on one `--db` would otherwise both send its pending digests. The kernel drops the
lock when the holding process ends, however it ends, so a crash or `kill -9` never
leaves a stale lock behind; the file itself stays (deleting it would race with a
process opening it) and only says who held it last.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.article import utcnow
from pipelines.errors import DozorError

LOCK_FILE = "dozor-run.lock"
# sysexits.h EX_TEMPFAIL: "try again later", which is what a busy lock means
LOCK_BUSY_EXIT = 75


class LockBusy(DozorError, RuntimeError):
    """Another cycle holds the lock; str() names it and the lock file."""


def lock_path(data_dir: Path) -> Path:
    return data_dir / LOCK_FILE


@contextmanager
def run_lock(data_dir: Path, what: str = "dozor run",
             database: Path | None = None) -> Iterator[Path]:
    """Held while a cycle runs; `data_dir` (Config.paths.data) holds the lock file, and
    `database` (a SQLite file) gets its own beside it."""
    with _flock(lock_path(data_dir), what) as path:
        if database is None:
            yield path
            return
        database.parent.mkdir(parents=True, exist_ok=True)
        with _flock(database.with_name(database.name + ".lock"), what):
            yield path


@contextmanager
def _flock(path: Path, what: str) -> Iterator[Path]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 300, 0).decode("utf-8", "replace").strip()
            raise LockBusy(
                f"another Dozor cycle is running ({holder or 'holder unknown'}); "
                f"not starting a second one. Lock file: {path}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what}, pid {os.getpid()}, since {utcnow():%Y-%m-%d %H:%M:%S} UTC"
                  .encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the only descriptor releases the flock

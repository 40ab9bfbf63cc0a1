"""One SQLite connection: opened, configured and migrated once, then shared by every
role under one lock; each write is one transaction.

WAL lets the crawler write while a search or the UI reads. A read-only connection
(`read_only=True`, the commands that only read) changes nothing in the file, so it
works on read-only media too; errors name their real cause (read-only, corrupt, not
a database, full disk), from SQLite's own error code.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

from pipelines.store.base import DatabaseUnusable, StoreError
from pipelines.store.sqlite.codec import key_digest, pack
from pipelines.store.sqlite.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, statements

BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = 65_536  # the page cache's ceiling; pages are allocated as used
# Well under SQLite's limit on bound parameters per statement.
CHUNK = 500


def marks(n: int) -> str:
    return ",".join("?" * n)


def cause(exc: sqlite3.Error) -> str:
    """What is wrong, in words, from SQLite's error code (the message alone is vague)."""
    name = getattr(exc, "sqlite_errorname", "")
    reasons = {
        "SQLITE_READONLY": "the file or its folder is read-only",
        "SQLITE_CORRUPT": "the file is corrupt",
        "SQLITE_NOTADB": "the file is not a SQLite database",
        "SQLITE_FULL": "the disk is full",
        "SQLITE_IOERR": "the disk could not be read or written",
        "SQLITE_CANTOPEN": "the file cannot be opened",
        "SQLITE_PERM": "permission denied",
    }
    reason = next((text for code, text in reasons.items() if name.startswith(code)), "")
    return f"{reason} ({exc})" if reason else str(exc)


def _error(message: str, exc: sqlite3.Error, path: Path | None = None) -> StoreError:
    name = getattr(exc, "sqlite_errorname", "")
    broken = name in ("SQLITE_CORRUPT", "SQLITE_NOTADB")
    reason = cause(exc)
    if path is not None and name.startswith("SQLITE_CANTOPEN") and _on_read_only_media(path):
        # SQLite only says it cannot open the file (or its -wal/-shm beside it)
        reason = f"the file or its folder is read-only: on read-only media ({exc})"
    return (DatabaseUnusable if broken else StoreError)(f"{message}: {reason}")


def _on_read_only_media(path: Path) -> bool:
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class SQLiteConnection:
    """The file every role of `SQLiteStore` reads and writes (or only reads)."""

    def __init__(self, path: Path | str, read_only: bool = False) -> None:
        self.path = Path(path)
        # a file not there yet is made, as before: an empty database to read
        self.read_only = read_only and self.path.exists()
        self._db = self._connect(immutable=False)
        self._lock = threading.RLock()
        try:
            try:
                self._configure()
            except sqlite3.OperationalError:
                if not read_only:
                    raise
                # a WAL database on read-only media: SQLite cannot make its -shm file
                # there; nothing can change the file, so it may be read as immutable
                self._db.close()
                self._db = self._connect(immutable=True)
                self._configure()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise _error(f"cannot open database {self.path}", exc, self.path) from exc
        except StoreError:
            self._db.close()
            raise

    def _connect(self, immutable: bool) -> sqlite3.Connection:
        try:
            if self.read_only:
                flags = "mode=ro&immutable=1" if immutable else "mode=ro"
                db = sqlite3.connect(f"{self.path.resolve().as_uri()}?{flags}", uri=True,
                                     timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                     check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(
                    self.path,
                    timeout=BUSY_TIMEOUT_MS / 1000,
                    isolation_level=None,  # transactions are explicit: one per call
                    check_same_thread=False,  # the lock below serialises callers
                )
        except OSError as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise _error(f"cannot open database {self.path}", exc, self.path) from exc
        db.row_factory = sqlite3.Row
        # migration 17 converts the stored dedup keys with it, 19 the texts with pack
        db.create_function("key_digest", 1, key_digest, deterministic=True)
        db.create_function("pack", 1, pack, deterministic=True)
        return db

    # ------------------------------------------------------------------ set-up

    def _configure(self) -> None:
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # a batch of alert matches touches every rule's part of the delivery log; within
        # SQLite's default 2 MB cache it reads and writes the same pages again and again
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        if self.read_only:
            # reading the schema is the first access: it fails here on unusable media
            self._db.execute("SELECT count(*) FROM sqlite_schema").fetchone()
            return
        self._db.execute("PRAGMA journal_mode = WAL")
        # with WAL, NORMAL loses no committed transaction on an application crash
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")

    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        if self.schema_version() == SCHEMA_VERSION:
            return
        if self.read_only:
            version = self.schema_version()
            if not version:
                raise StoreError(f"{self.path} is not a Dozor database (no schema)")
            raise StoreError(
                f"{self.path} has schema version {version}, this Dozor uses "
                f"{SCHEMA_VERSION}: open it once with a writing command (dozor run, "
                "dozor alerts send) to upgrade it" if version < SCHEMA_VERSION else
                f"{self.path} has schema version {version}, newer than this Dozor "
                f"understands ({SCHEMA_VERSION}); upgrade Dozor to open it")
        # IMMEDIATE: two processes opening a fresh file do not both migrate it
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self.schema_version()
            app_id = self._db.execute("PRAGMA application_id").fetchone()[0]
            if version and app_id != APPLICATION_ID:
                raise StoreError(f"{self.path} is a SQLite database of another program")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this Dozor "
                    f"understands ({SCHEMA_VERSION}); upgrade Dozor to open it"
                )
            if version == 0 and self._db.execute(
                "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'"
            ).fetchone()[0]:
                raise StoreError(f"{self.path} is a SQLite database of another program")
            for number in range(version, SCHEMA_VERSION):
                for statement in statements(MIGRATIONS[number]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number + 1}")
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transactions

    def _transaction(self, action: str, work: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            if self.read_only:
                raise StoreError(f"cannot {action} in {self.path}: opened read-only")
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _error(f"cannot {action} in {self.path}", exc) from exc
            try:
                result = work(self._db)
                self._db.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                self._rollback()
                raise _error(f"cannot {action} in {self.path}", exc) from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        # SQLite has already rolled back after some errors (a full disk, an I/O error)
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise _error(f"cannot read {self.path}", exc) from exc


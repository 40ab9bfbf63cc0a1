"""One SQLite connection: opened, configured and migrated once, then shared by every
role under one lock; each write is one transaction.

WAL lets the crawler write while a search or the UI reads.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

from pipelines.store.base import StoreError
from pipelines.store.sqlite.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, statements

BUSY_TIMEOUT_MS = 10_000
# Well under SQLite's limit on bound parameters per statement.
CHUNK = 500


def marks(n: int) -> str:
    return ",".join("?" * n)


class SQLiteConnection:
    """The file every role of `SQLiteStore` reads and writes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # transactions are explicit: one per call
                check_same_thread=False,  # the lock below serialises callers
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        try:
            self._configure()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{self.path}: not a usable Dozor database ({exc})") from exc
        except StoreError:
            self._db.close()
            raise

    # ------------------------------------------------------------------ set-up

    def _configure(self) -> None:
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        # with WAL, NORMAL loses no committed transaction on an application crash
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")

    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        if self.schema_version() == SCHEMA_VERSION:
            return
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
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot {action} in {self.path}: {exc}") from exc
            try:
                result = work(self._db)
                self._db.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(f"cannot {action} in {self.path}: {exc}") from exc
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
                raise StoreError(f"cannot read {self.path}: {exc}") from exc


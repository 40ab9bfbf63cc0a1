"""The embedded default backend: one SQLite file with an FTS5 index.

`SQLiteStore` is one connection (connection.py: opening, migrations, transactions)
with a class per store role over it; the file's layout is in schema.py.
"""

from __future__ import annotations

from pipelines.store.sqlite.alerts import SQLiteAlertInbox
from pipelines.store.sqlite.articles import SQLiteArticles
from pipelines.store.sqlite.dedup import SQLiteDuplicates
from pipelines.store.sqlite.deliveries import SQLiteDeliveryLog
from pipelines.store.sqlite.frontier import SQLiteFrontier
from pipelines.store.sqlite.health import SQLiteHealth
from pipelines.store.sqlite.history import SQLiteHistory
from pipelines.store.sqlite.labels import SQLiteLabels
from pipelines.store.sqlite.schema import COLUMNS, MIGRATIONS, SCHEMA_VERSION
from pipelines.store.sqlite.search import SQLiteSearch
from pipelines.store.sqlite.translation import SQLiteTranslation

__all__ = ["COLUMNS", "MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore"]


class SQLiteStore(SQLiteArticles, SQLiteSearch, SQLiteFrontier, SQLiteDuplicates,
                  SQLiteTranslation, SQLiteAlertInbox, SQLiteDeliveryLog, SQLiteHealth,
                  SQLiteHistory, SQLiteLabels):
    """A Dozor database file; see `pipelines.store.roles` for the contract."""

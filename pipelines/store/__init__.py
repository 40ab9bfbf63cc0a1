"""Backends behind one interface; `open_store` is the only place that names them."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.store.base import (
    Delivery,
    DupCandidate,
    SearchHit,
    Store,
    StoreError,
    StoreStats,
    WriteResult,
)

__all__ = [
    "Delivery",
    "DupCandidate",
    "SearchHit",
    "Store",
    "StoreError",
    "StoreStats",
    "WriteResult",
    "open_store",
]


def open_store(db: Path | str | None = None, es: str | None = None) -> Store:
    """The SQLite file at `db`, or the Elasticsearch cluster at `es`.

    `es` falls back to ELASTICSEARCH_URL; with neither, the embedded default database
    under the data directory.
    """
    es = es or (None if db else os.environ.get("ELASTICSEARCH_URL"))
    if es:
        from pipelines.store.elastic import ElasticStore

        return ElasticStore(es)
    from pipelines.config.paths import default_db
    from pipelines.store.sqlite import SQLiteStore

    return SQLiteStore(Path(db) if db else default_db())

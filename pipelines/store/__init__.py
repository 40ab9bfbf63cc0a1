"""The store: role protocols (roles.py) and two backends; `open_store` is the only place
that names them. Nothing here reads the environment: the entry point says which store
(pipelines.config.backend resolves --db/--es and the environment)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipelines.store.base import (
    SORTS,
    DatabaseUnusable,
    Delivery,
    DupCandidate,
    SearchHit,
    SearchSummary,
    StoreError,
    StoreStats,
    WriteResult,
)
from pipelines.store.roles import (
    AlertInbox,
    AlertStore,
    ArticlesReader,
    ArticlesWriter,
    DeliveryLog,
    DuplicateCandidates,
    Frontier,
    History,
    Ingest,
    Labels,
    SourceHealth,
    Store,
    TranslationQueue,
)

__all__ = [
    "AlertInbox",
    "AlertStore",
    "ArticlesReader",
    "ArticlesWriter",
    "DatabaseUnusable",
    "Delivery",
    "DeliveryLog",
    "DupCandidate",
    "DuplicateCandidates",
    "Frontier",
    "History",
    "Ingest",
    "SORTS",
    "SearchHit",
    "SearchSummary",
    "Labels",
    "SourceHealth",
    "Store",
    "StoreError",
    "StoreStats",
    "TranslationQueue",
    "WriteResult",
    "open_store",
]


def open_store(db: Path | str | None = None, es: str | None = None, *,
               spool_dir: Path | None = None,
               es_secrets: Mapping[str, str] | None = None, read_only: bool = False) -> Store:
    """The SQLite file at `db`, or the Elasticsearch cluster at `es` (articles it cannot
    take wait under `spool_dir`; `es_secrets` holds the ELASTIC_* credentials).

    `read_only`: a command that only reads opens the SQLite file read-only (read-only
    media work); Elasticsearch ignores it."""
    # imported here: a command opens one backend, and each costs its start-up
    if es:
        from pipelines.store.elastic import Credentials, ElasticStore

        return ElasticStore(es, spool_dir=spool_dir,
                            credentials=Credentials.from_environ(es_secrets or {}))
    if db is None:
        raise StoreError("no store given: a database file (--db) or an Elasticsearch URL")
    from pipelines.store.sqlite import SQLiteStore

    return SQLiteStore(Path(db), read_only=read_only)

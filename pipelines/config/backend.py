"""Which store a command opens: its --db/--es options, else the environment.

Resolved once at an entry point (CLI, `scrapy crawl`) and passed to
`pipelines.store.open_store`, which reads no environment itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypedDict

from pipelines.config import paths

ES_SECRETS = ("ELASTIC_API_KEY", "ELASTIC_USERNAME", "ELASTIC_PASSWORD", "ELASTIC_CA_CERTS")


class StoreOptions(TypedDict):
    db: Path | None
    es: str | None
    spool_dir: Path
    es_secrets: dict[str, str]


def store_options(db: Path | str | None = None, es: str | None = None) -> StoreOptions:
    """`es` falls back to ELASTICSEARCH_URL; with neither, the embedded default database
    under the data directory."""
    es = es or (None if db else os.environ.get("ELASTICSEARCH_URL")) or None
    return StoreOptions(
        db=None if es else Path(db) if db else paths.default_db(),
        es=es,
        spool_dir=paths.spool_dir(),
        es_secrets={name: os.environ[name] for name in ES_SECRETS if os.environ.get(name)},
    )

"""Which store a command opens: its --db/--es options, else the environment (as the
entry point's `Config` read it).

Resolved once at an entry point (CLI, `scrapy crawl`) and passed to
`pipelines.store.open_store`, which reads no environment itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

from pipelines.config.config import Config

ES_SECRETS = ("ELASTIC_API_KEY", "ELASTIC_USERNAME", "ELASTIC_PASSWORD", "ELASTIC_CA_CERTS")


class StoreOptions(TypedDict):
    db: Path | None
    es: str | None
    spool_dir: Path
    es_secrets: dict[str, str]


def store_options(config: Config, db: Path | str | None = None,
                  es: str | None = None) -> StoreOptions:
    """`es` falls back to ELASTICSEARCH_URL; with neither, the embedded default database
    under the data directory."""
    es = es or (None if db else config.get("ELASTICSEARCH_URL"))
    return StoreOptions(
        db=None if es else Path(db) if db else config.paths.db,
        es=es,
        spool_dir=config.paths.spool,
        es_secrets={name: value for name in ES_SECRETS if (value := config.get(name))},
    )

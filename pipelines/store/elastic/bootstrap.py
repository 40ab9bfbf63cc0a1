"""First contact with a cluster: its indices set up, or brought up to this Dozor's fields."""

from __future__ import annotations

import logging

from elasticsearch import ApiError, Elasticsearch

from index_config import IndexNames
from index_config.install import SetupError, add_missing_fields, install_elasticsearch
from pipelines.store.base import StoreError
from pipelines.store.elastic.connection import describe, unreachable

log = logging.getLogger("pipelines.store.elastic")


def prepare_indices(client: Elasticsearch, names: IndexNames, url: str) -> None:
    """Set the indices up if `dozor setup` was never run (nothing is ever written to an
    index created without the templates), else add the fields they lack."""
    if not _alias_exists(client, names.articles):
        log.info("no %s alias on %s yet: setting the indices up", names.articles, url)
        try:
            install_elasticsearch(client, names)
        except SetupError as exc:
            raise StoreError(f"{exc} (run `dozor setup` with an account that may "
                             "manage templates and indices)") from exc
        return
    # Indices set up by an older Dozor lack the fields added since (the alert mark):
    # with `dynamic: false` a value in an unmapped field is never indexed, so a story
    # could not be found again by its mark.
    try:
        changes = add_missing_fields(client, names)
    except ApiError as exc:
        if unreachable(exc):
            raise
        raise StoreError(f"cannot add the fields this Dozor needs to the indices on "
                         f"{url} ({describe(exc)}); run `dozor setup` with an "
                         "account that may manage templates and indices") from exc
    for change in changes:
        log.warning("%s %s %s: %s", change.kind, change.name, change.action, change.detail)


def _alias_exists(client: Elasticsearch, alias: str) -> bool:
    try:
        return bool(client.indices.exists_alias(name=alias))
    except ApiError as exc:
        if exc.status_code != 400:
            raise
        # A HEAD answer has no body to say why. Elasticsearch 8.x refuses every request
        # of the 9.x client with 400: a GET gets the reason (describe() names it).
        client.info()
        raise

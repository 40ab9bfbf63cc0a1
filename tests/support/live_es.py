"""A live Elasticsearch cluster for the tests, when ELASTICSEARCH_URL is set: every test
gets its own random index prefix, deleted afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from elasticsearch import Elasticsearch

import index_config as cfg
from pipelines.store.elastic import Credentials, connect

# read at import, before the tests' autouse fixture clears it for every other test
LIVE_ES_URL = os.environ.get("ELASTICSEARCH_URL")
LIVE_CREDENTIALS = Credentials.from_environ(os.environ)
NO_LIVE_ES = "ELASTICSEARCH_URL is not set: no live Elasticsearch cluster to test against"


@contextmanager
def live_names() -> Iterator[cfg.IndexNames]:
    """Index names under a fresh prefix on the live cluster; everything made under it
    (indices, templates, the ILM policy) is deleted on the way out."""
    names = cfg.IndexNames(f"dozor-test-{uuid.uuid4().hex[:8]}")
    client = connect(LIVE_ES_URL, credentials=LIVE_CREDENTIALS)
    try:
        yield names
    finally:
        delete_indices(client, names)
        for template in (names.articles_template, names.rules_template):
            client.options(ignore_status=404).indices.delete_index_template(name=template)
        for component in (names.article_component, names.rule_component):
            client.options(ignore_status=404).cluster.delete_component_template(name=component)
        client.options(ignore_status=404).ilm.delete_lifecycle(name=names.ilm_policy)
        client.close()


def delete_indices(client: Elasticsearch, names: cfg.IndexNames) -> None:
    """Every index under the prefix, deleted by name: Elasticsearch 8+ refuses a wildcard
    delete (action.destructive_requires_name defaults to true)."""
    created = client.indices.get(index=f"{names.prefix}-*", expand_wildcards="all",
                                 allow_no_indices=True)
    if created:
        client.indices.delete(index=",".join(sorted(created)))

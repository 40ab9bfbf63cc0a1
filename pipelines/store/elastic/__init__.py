"""The scale-out backend: an Elasticsearch cluster, through the official client.

Layout (index_config/): articles live in dated indices behind one alias; new articles
are created through the alias (its write index), an article already stored is
rewritten in the index that holds it (writes.py). Alert rules live in a percolator
index (percolator.py), the delivery log and the crawl frontier in two small side
indices. `ElasticStore` is one client and spool (core.py) with a class per store role.
"""

from __future__ import annotations

from pipelines.store.elastic.alerts import ElasticAlertInbox
from pipelines.store.elastic.articles import ElasticArticles
from pipelines.store.elastic.connection import Credentials, connect, describe, safe_url
from pipelines.store.elastic.core import ALERT_STATE, BulkSettings
from pipelines.store.elastic.dedup import ElasticDuplicates
from pipelines.store.elastic.deliveries import ElasticDeliveryLog
from pipelines.store.elastic.frontier import ElasticFrontier
from pipelines.store.elastic.health import ElasticHealth
from pipelines.store.elastic.history import ElasticHistory
from pipelines.store.elastic.labels import ElasticLabels
from pipelines.store.elastic.search import ElasticSearch
from pipelines.store.elastic.translation import ElasticTranslation
from pipelines.store.elastic.writes import ElasticWrites

__all__ = ["ALERT_STATE", "BulkSettings", "Credentials", "ElasticStore", "connect",
           "describe", "safe_url"]


class ElasticStore(ElasticWrites, ElasticArticles, ElasticSearch, ElasticFrontier,
                   ElasticDuplicates, ElasticTranslation, ElasticAlertInbox, ElasticHistory,
                   ElasticDeliveryLog, ElasticHealth, ElasticLabels):
    """Dozor's indices in one cluster; see `pipelines.store.roles` for the contract."""

"""Alert rules matched by the Elasticsearch percolator.

Each rule is registered as one document of the percolator index (id = rule name)
holding `rule.query.to_es()`: the same compiled query the Python matcher evaluates,
so both backends pick the same stories. New articles are then percolated in batches
(`documents` of one percolate query per batch) and each hit's
`_percolator_document_slot` says which articles of the batch the rule matched.

Only the fields a rule can name are sent (pipelines.query.FIELDS), not whole texts.
If the cluster cannot percolate, the rules are evaluated in Python instead (same
semantics, with a warning), so a story is not missed because of the percolator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from elasticsearch.helpers import BulkIndexError, bulk

from index_config import checksum
from pipelines.article import Article, utcnow
from pipelines.matching import MatchRule, PythonMatcher
from pipelines.query import DATE_FIELDS, FIELD_ATTRS, FIELDS, scope_fields
from pipelines.store.elastic.connection import ES_ERRORS, describe
from pipelines.store.elastic.core import ElasticCore

log = logging.getLogger(__name__)

BATCH = 100  # articles per percolate request


def percolate_doc(article: Article) -> dict[str, Any]:
    """The fields a rule's query may name, by their index names (dates as stored)."""
    stored = article.to_dict()
    names = [FIELD_ATTRS.get(name, name) for name in FIELDS] + list(DATE_FIELDS.values())
    return {name: stored[name] for name in names} | scope_fields(article)


class PercolatorMatcher:
    def __init__(self, store: ElasticCore, batch: int = BATCH) -> None:
        self.store = store
        self.batch = batch

    def match(self, rules: Sequence[MatchRule],
              articles: Iterable[Article]) -> dict[str, list[str]]:
        """Article ids per rule name, in the order the articles came; every rule a key."""
        articles = list(articles)
        found: dict[str, set[str]] = {rule.name: set() for rule in rules}
        if rules and articles:
            try:
                self.register(rules)
                for start in range(0, len(articles), self.batch):
                    self._percolate(articles[start:start + self.batch], rules, found)
            except (*ES_ERRORS, BulkIndexError) as exc:
                reason = _bulk_reason(exc) if isinstance(exc, BulkIndexError) else describe(exc)
                log.warning("percolation on %s failed (%s): matching the rules in Python",
                            self.store.url, reason)
                return PythonMatcher().match(rules, articles)
        return {name: [a.id for a in articles if a.id in ids] for name, ids in found.items()}

    def register(self, rules: Sequence[MatchRule]) -> list[str]:
        """Bring the percolator index in line with `rules`: index new and changed rules,
        delete the ones no longer in the file. Returns the rule names (re)indexed."""
        client, index = self.store.client, self.store.names.rules
        self.store.ensure_indices()
        wanted = {rule.name: rule for rule in rules}
        digests = {name: checksum(rule.query.to_es()) for name, rule in wanted.items()}
        stored = {
            hit["_id"]: (hit["_source"] or {}).get("query_checksum")
            for hit in client.search(index=index, query={"match_all": {}},
                                     source=["query_checksum"], size=10_000)["hits"]["hits"]
        }
        now = utcnow().isoformat()
        changed = [name for name in wanted if stored.get(name) != digests[name]]
        actions: list[dict[str, Any]] = [
            {"_op_type": "index", "_index": index, "_id": name,
             "_source": {"rule": name, "query": wanted[name].query.to_es(),
                         "source_query": wanted[name].query.text,
                         "query_checksum": digests[name], "updated_at": now}}
            for name in changed
        ]
        actions += [{"_op_type": "delete", "_index": index, "_id": name}
                    for name in stored if name not in wanted]
        if actions:
            # raise_on_error: a rule the cluster cannot parse is a real error, reported
            bulk(client, actions, refresh="wait_for")
            log.info("percolator rules: %d registered, %d removed", len(changed),
                     len(actions) - len(changed))
        return changed

    def _percolate(self, articles: list[Article], rules: Sequence[MatchRule],
                   found: dict[str, set[str]]) -> None:
        response = self.store.client.search(
            index=self.store.names.rules,
            query={"bool": {
                "must": [{"percolate": {"field": "query",
                                        "documents": [percolate_doc(a) for a in articles]}}],
                # only this run's rules, whatever else the index holds
                "filter": [{"ids": {"values": [rule.name for rule in rules]}}],
            }},
            source=False,
            size=len(rules),
        )
        for hit in response["hits"]["hits"]:
            slots = hit.get("fields", {}).get("_percolator_document_slot", [])
            found[hit["_id"]].update(articles[slot].id for slot in slots)


def _bulk_reason(exc: BulkIndexError) -> str:
    first = next(iter(exc.errors[0].values())) if exc.errors else {}
    error = first.get("error") or {}
    return f"rule {first.get('_id')!r} refused: {error.get('type')}: {error.get('reason')}"

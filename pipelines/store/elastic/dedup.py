"""Near-duplicate candidates by content hash and by LSH band key."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pipelines.store.base import DupCandidate
from pipelines.store.elastic.core import ElasticCore

log = logging.getLogger("pipelines.store.elastic")


class ElasticDuplicates(ElasticCore):
    """The DuplicateCandidates role."""

    def dup_candidates(self, content_hashes: Iterable[str],
                       lsh_bands: Iterable[str]) -> list[DupCandidate]:
        hashes = [h for h in dict.fromkeys(content_hashes) if h]
        bands = [b for b in dict.fromkeys(lsh_bands) if b]
        should = []
        if hashes:
            should.append({"terms": {"content_hash": hashes}})
        if bands:
            should.append({"terms": {"lsh_bands": bands}})
        if not should or self.breaker.down():
            return []
        query = {"bool": {"should": should, "minimum_should_match": 1}}
        found: list[DupCandidate] = []
        with self._contact("look up near-duplicates", unavailable=lambda why: log.warning(
                "Elasticsearch at %s unavailable (%s): near-duplicates of this batch are "
                "only grouped among themselves", self.url, why)):
            found = [
                DupCandidate(id=h["_id"], cluster_id=h["_source"].get("cluster_id") or "",
                             content_hash=h["_source"].get("content_hash") or "",
                             minhash=h["_source"].get("minhash") or [],
                             lsh_bands=h["_source"].get("lsh_bands") or [])
                for h in self._search_all(self.names.articles, query, [{"id": "asc"}],
                                          source=["cluster_id", "content_hash", "minhash",
                                                  "lsh_bands"])
            ]
        return found

"""The crawl frontier: stored article ids and the `seen` index, and the spool's URLs."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pipelines.article import article_id
from pipelines.store.base import StoreError, chunks
from pipelines.store.elastic.connection import ES_ERRORS, describe, unreachable
from pipelines.store.elastic.core import PAGE, ElasticCore

log = logging.getLogger("pipelines.store.elastic")


class ElasticFrontier(ElasticCore):
    """The Frontier role."""

    def seen(self, canonical_urls: Iterable[str]) -> set[str]:
        by_id = {article_id(url): url for url in dict.fromkeys(canonical_urls)}
        spooled = set(by_id.values()) & self.spool.urls()
        if self.breaker.down():
            return spooled
        found: set[str] = set()
        # unavailable: fetching again is safe, the write is by id and lands in the spool
        with self._contact("look up seen URLs", unavailable=lambda why: log.warning(
                "Elasticsearch at %s unavailable (%s): only spooled URLs count as seen",
                self.url, why)):
            for chunk in chunks(list(by_id), PAGE):
                response = self.client.search(
                    index=self.names.articles, query={"ids": {"values": list(chunk)}},
                    source=False, size=len(chunk),
                )
                found.update(h["_id"] for h in response["hits"]["hits"])
                docs = self.client.mget(index=self.names.seen, ids=list(chunk),
                                        source=False)["docs"]
                found.update(d["_id"] for d in docs if d.get("found"))
        return {by_id[i] for i in found} | spooled

    def mark_seen(self, canonical_urls: Iterable[str]) -> None:
        urls = list(dict.fromkeys(canonical_urls))
        if not urls:
            return
        down = self.breaker.down()
        if down:
            self.spool.put(seen=urls, reason=down)
            return
        try:
            self.ensure_indices()
            self._write_seen(urls)
        except ES_ERRORS as exc:
            path = self.spool.put(seen=urls, reason=describe(exc))
            if not unreachable(exc):
                raise StoreError(f"cannot mark URLs seen on {self.url} ({describe(exc)}); "
                                 f"kept in {path}") from exc
            log.warning("Elasticsearch at %s unavailable (%s): %d seen URL(s) kept in %s",
                        self.url, self.breaker.went_down(exc), len(urls), path)

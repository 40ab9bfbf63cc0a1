"""The crawl frontier: stored article ids and the `seen` index, and the spool's URLs."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta

from pipelines.article import article_id, utcnow
from pipelines.store.base import StoreError, chunks, gone_retry
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
                                        source=["retry_at"])["docs"]
                now = utcnow().isoformat()
                # a 404/410 URL counts only until it may be asked again
                found.update(d["_id"] for d in docs if d.get("found")
                             and (d.get("_source") or {}).get("retry_at", "9999") > now)
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

    def mark_gone(self, statuses: Mapping[str, int]) -> None:
        if not statuses:
            return
        now = utcnow()
        with self._contact("record gone URLs"):
            ids = {article_id(url): url for url in statuses}
            docs = self.client.mget(index=self.names.seen, ids=list(ids),
                                    source=["attempts"])["docs"]
            before = {d["_id"]: (d.get("_source") or {}).get("attempts", 0)
                      for d in docs if d.get("found")}
            actions = []
            for doc_id, url in ids.items():
                attempts = before.get(doc_id, 0) + 1
                retry = now + timedelta(seconds=gone_retry(attempts))
                actions.append({"_op_type": "index", "_index": self.names.seen, "_id": doc_id,
                                "_source": {"url": url, "seen_at": now.isoformat(),
                                            "status": statuses[url], "attempts": attempts,
                                            "retry_at": retry.isoformat()}})
            errors = self._bulk_errors(actions)
        if errors:
            raise StoreError(f"cannot record gone URLs on {self.url}: {errors[0]}")

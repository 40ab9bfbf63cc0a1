"""Stored articles read back: the ArticlesReader role (search aside)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pipelines.article import Article
from pipelines.store.base import StoreStats, chunks
from pipelines.store.elastic.core import PAGE, ElasticCore

STATS_BUCKETS = 10_000  # distinct languages, sources, statuses counted (exact below it)


class ElasticArticles(ElasticCore):
    """Reads over the articles alias."""

    def get(self, article_id: str) -> Article | None:
        return next(iter(self.iter_articles([article_id])), None)

    def iter_articles(self, ids: Iterable[str] | None = None) -> Iterator[Article]:
        """In the order of `ids`, or in the order stored (stored_at, then id), page by
        page with search_after."""
        with self._contact("read articles"):
            if ids is not None:
                for chunk in chunks(list(dict.fromkeys(ids)), PAGE):
                    response = self.client.search(
                        index=self.names.articles, query={"ids": {"values": list(chunk)}},
                        size=len(chunk),
                    )
                    found = {h["_id"]: h["_source"] for h in response["hits"]["hits"]}
                    yield from (Article.from_dict(found[i]) for i in chunk if i in found)
                return
            for hit in self._search_all(self.names.articles, {"match_all": {}},
                                        [{"stored_at": "asc"}, {"id": "asc"}]):
                yield Article.from_dict(hit["_source"])

    def count(self) -> int:
        with self._contact("count articles"):
            return self.client.count(index=self.names.articles)["count"]

    def stats(self) -> StoreStats:
        """Counts for an overview, from one aggregation request."""
        groups = {"by_lang": "lang", "by_source": "source",
                  "by_translation": "translation_status"}
        aggs: dict[str, Any] = {
            name: {"terms": {"field": field, "size": STATS_BUCKETS}}
            for name, field in groups.items()
        }
        aggs["relevant"] = {"filter": {"term": {"relevant": True}}}
        with self._contact("count articles"):
            response = self.client.search(index=self.names.articles, size=0, aggs=aggs,
                                          track_total_hits=True)
        found = response["aggregations"]
        return StoreStats(
            total=response["hits"]["total"]["value"],
            relevant=found["relevant"]["doc_count"],
            **{name: {b["key"]: b["doc_count"] for b in found[name]["buckets"]}
               for name in groups},
        )

    def cluster_members(self, cluster_id: str, limit: int = 50) -> list[Article]:
        with self._contact("read a near-duplicate cluster"):
            response = self.client.search(
                index=self.names.articles, query={"term": {"cluster_id": cluster_id}},
                sort=[{"published_at": {"order": "asc", "missing": "_last"}},
                      {"fetched_at": "asc"}, {"id": "asc"}],
                size=limit,
            )
        return [Article.from_dict(h["_source"]) for h in response["hits"]["hits"]]

"""Search: the query's own semantics decide, BM25 ranks, highlighting gives snippets."""

from __future__ import annotations

from typing import Any

from pipelines.article import Article
from pipelines.query import FIELD_ATTRS, Query
from pipelines.store.base import (
    FACETS,
    SearchHit,
    SearchSummary,
    StoreError,
    as_stories,
    check_offset,
    check_sort,
)
from pipelines.store.elastic.core import ElasticCore
from pipelines.terms.snippets import article_snippet

# text fields searched (and highlighted) for ranking, with the title weighted up as the
# SQLite store does
RANK_FIELDS = (
    "title^4", "title.ru^4", "title.uk^4", "title.en^4", "title_en^4",
    "text", "text.ru", "text.uk", "text.en", "text_en",
)
SNIPPET_CHARS = 240
# Highlighting reads at most this many characters of a text: a longer one would otherwise
# fail the whole search (index.highlight.max_analyzed_offset, 1,000,000 by default, wins
# when lower). A match past it gets the lemma-aware snippet instead.
HIGHLIGHT_CHARS = 100_000
# from + size may not pass index.max_result_window (10,000 by default)
RESULT_WINDOW = 10_000
FACET_BUCKETS = 50
STORIES_EXACT = 40_000
# as SQLite orders: undated articles last, then by fetch time
_SORTS: dict[str, list[Any]] = {
    "relevance": ["_score", {"published_at": {"order": "desc", "missing": "_last"}},
                  {"fetched_at": "desc"}],
    "newest": [{"published_at": {"order": "desc", "missing": "_last"}}, {"fetched_at": "desc"}],
    "oldest": [{"published_at": {"order": "asc", "missing": "_last"}}, {"fetched_at": "asc"}],
}


class ElasticSearch(ElasticCore):
    """The ArticlesReader role's search."""

    def search(self, query: Query, limit: int = 20, offset: int = 0,
               sort: str = "relevance", collapse: bool = False) -> list[SearchHit]:
        """The query's own semantics (`Query.to_es()` on the normalised terms) decide what
        matches; BM25 over the title and text fields ranks (or the publication date, by
        `sort`); highlighting gives the snippet, with the lemma-aware snippet of
        pipelines.terms as the fallback. `collapse`: stories instead of articles
        (`as_stories`), by field collapsing on cluster_id."""
        check_offset(offset)
        check_sort(sort)
        if offset + limit > RESULT_WINDOW:
            raise StoreError(f"search results on Elasticsearch stop at number {RESULT_WINDOW} "
                             f"(index.max_result_window); results {offset + 1}-"
                             f"{offset + limit} were asked for: narrow the query")
        words = " ".join(query.words)
        bool_query = _bool_query(query)
        if words:
            bool_query["should"] = [{"multi_match": {"query": words, "fields": list(RANK_FIELDS),
                                                     "type": "most_fields"}}]
        body: dict[str, Any] = {
            "query": {"bool": bool_query},
            "from": offset,
            "size": limit,
            # ties (e.g. a filter-only query) newest first, as on SQLite
            "sort": _SORTS[sort],
            "track_scores": True,
        }
        if collapse:
            body["collapse"] = {"field": "cluster_id"}
        if words:
            body["highlight"] = {
                "pre_tags": ["["], "post_tags": ["]"],
                "fragment_size": SNIPPET_CHARS, "number_of_fragments": 1,
                "max_analyzed_offset": HIGHLIGHT_CHARS,
                "highlight_query": {"multi_match": {"query": words,
                                                    "fields": list(RANK_FIELDS)}},
                "fields": {name.split("^")[0]: {} for name in RANK_FIELDS
                           if name.startswith("text")},
            }
        with self._contact(f"search {query.text!r}"):
            response = self.client.search(index=self.names.articles, body=body)
        hits = []
        for hit in response["hits"]["hits"]:
            article = Article.from_dict(hit["_source"])
            terms = query.matched_terms(article)
            text = _pick_highlight(hit.get("highlight", {}), article.lang)
            if not text:
                text = article_snippet(article, terms)
            hits.append(SearchHit(article=article, rank=float(hit.get("_score") or 0.0),
                                  snippet=" ".join(text.split()), matched_terms=terms))
        return as_stories(query, hits, self._members(query, hits)) if collapse else hits

    def _members(self, query: Query, tops: list[SearchHit]) -> list[Article]:
        """The articles of the clusters of `tops` that `query` matches."""
        clusters = [c for c in dict.fromkeys(h.article.cluster_id for h in tops) if c]
        if not clusters:
            return []
        bool_query = _bool_query(query)
        bool_query.setdefault("filter", []).append({"terms": {"cluster_id": clusters}})
        with self._contact(f"read the copies of {len(clusters)} stories"):
            response = self.client.search(
                index=self.names.articles, query={"bool": bool_query},
                sort=[{"stored_at": "asc"}, {"id": "asc"}], size=RESULT_WINDOW)
        return [Article.from_dict(h["_source"]) for h in response["hits"]["hits"]]


    def summarise(self, query: Query) -> SearchSummary:
        """How many articles match `query`, and how many per facet value."""
        relevance = {"relevant": {"term": {"relevant": True}},
                     "possible": {"bool": {"must": [{"term": {"possible": True}}],
                                           "must_not": [{"term": {"relevant": True}}]}}}
        aggs: dict[str, Any] = {
            name: {"terms": {"field": FIELD_ATTRS.get(name, name), "size": FACET_BUCKETS}}
            for name in FACETS if name != "relevance"}
        aggs |= {f"relevance_{k}": {"filter": v} for k, v in relevance.items()}
        # exact up to its threshold (the largest Elasticsearch takes), an estimate above
        aggs["stories"] = {"cardinality": {"field": "cluster_id",
                                           "precision_threshold": STORIES_EXACT}}
        body = {"query": {"bool": _bool_query(query)}, "size": 0, "track_total_hits": True,
                "aggs": aggs}
        with self._contact(f"count {query.text!r}"):
            response = self.client.search(index=self.names.articles, body=body)
        total = int(response["hits"]["total"]["value"])
        found = response.get("aggregations", {})
        facets = {name: {str(b["key"]).lower() if isinstance(b["key"], bool) else str(b["key"]):
                         b["doc_count"] for b in found.get(name, {}).get("buckets", [])}
                  for name in FACETS if name != "relevance"}
        counted = {k: found.get(f"relevance_{k}", {}).get("doc_count", 0) for k in relevance}
        counted["other"] = total - sum(counted.values())
        facets["relevance"] = {k: n for k, n in sorted(counted.items(), key=lambda kv: -kv[1])
                               if n}
        return SearchSummary(total, {name: facets[name] for name in FACETS},
                             stories=int(found.get("stories", {}).get("value", 0)))


def _bool_query(query: Query) -> dict[str, Any]:
    out: dict[str, Any] = {"must": [query.to_es()]}
    if query.lang:
        out["filter"] = [{"term": {"lang": query.lang}}]
    return out


def _pick_highlight(highlight: dict[str, list[str]], lang: str) -> str:
    """The highlighted fragment of the article's own language first, then any."""
    preferred = [f"text.{lang}", "text", "text.ru", "text.uk", "text.en", "text_en"]
    for name in preferred:
        if highlight.get(name):
            return highlight[name][0]
    return ""


"""Search: the query's own semantics decide, BM25 ranks, highlighting gives snippets."""

from __future__ import annotations

from typing import Any

from pipelines.article import Article
from pipelines.query import Query
from pipelines.store.base import SearchHit, StoreError, check_offset
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


class ElasticSearch(ElasticCore):
    """The ArticlesReader role's search."""

    def search(self, query: Query, limit: int = 20, offset: int = 0) -> list[SearchHit]:
        """The query's own semantics (`Query.to_es()` on the normalised terms) decide what
        matches; BM25 over the title and text fields ranks; highlighting gives the
        snippet, with the lemma-aware snippet of pipelines.terms as the fallback."""
        check_offset(offset)
        if offset + limit > RESULT_WINDOW:
            raise StoreError(f"search results on Elasticsearch stop at number {RESULT_WINDOW} "
                             f"(index.max_result_window); results {offset + 1}-"
                             f"{offset + limit} were asked for: narrow the query")
        lang = query.lang
        words = " ".join(query.words)
        bool_query: dict[str, Any] = {"must": [query.to_es()]}
        if lang:
            bool_query["filter"] = [{"term": {"lang": lang}}]
        if words:
            bool_query["should"] = [{"multi_match": {"query": words, "fields": list(RANK_FIELDS),
                                                     "type": "most_fields"}}]
        body: dict[str, Any] = {
            "query": {"bool": bool_query},
            "from": offset,
            "size": limit,
            # ties (e.g. a filter-only query) newest first, as on SQLite
            "sort": ["_score", {"published_at": {"order": "desc", "missing": "_last"}},
                     {"fetched_at": "desc"}],
            "track_scores": True,
        }
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
        return hits


def _pick_highlight(highlight: dict[str, list[str]], lang: str) -> str:
    """The highlighted fragment of the article's own language first, then any."""
    preferred = [f"text.{lang}", "text", "text.ru", "text.uk", "text.en", "text_en"]
    for name in preferred:
        if highlight.get(name):
            return highlight[name][0]
    return ""


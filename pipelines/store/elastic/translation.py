"""The translation queue: pending articles by id, translations written back."""

from __future__ import annotations

from pipelines.article import Article
from pipelines.query import scope_fields
from pipelines.store.base import TRANSLATION_FIELDS, check_statuses
from pipelines.store.elastic.core import ElasticCore


class ElasticTranslation(ElasticCore):
    """The TranslationQueue role."""

    def pending_translation(self, limit: int = 100, after_id: str = "") -> list[Article]:
        extra = {"search_after": [after_id]} if after_id else {}
        with self._contact("list pending translations"):
            response = self.client.search(
                index=self.names.articles,
                query={"bool": {"filter": [{"term": {"translation_status": "pending"}}]}},
                sort=[{"id": "asc"}], size=limit, **extra,
            )
        return [Article.from_dict(h["_source"]) for h in response["hits"]["hits"]]

    def mark_translation(self, articles: list[Article]) -> None:
        check_statuses(articles)
        if not articles:
            return
        by_id = {a.id: a for a in articles}
        self._update_located(
            "record translations", [a.id for a in articles],
            # the English title and text join what title: and text: search
            lambda i: {name: getattr(by_id[i], name) for name in TRANSLATION_FIELDS}
            | scope_fields(by_id[i]))

"""The alert inbox: articles marked unmatched in the document that stores them."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pipelines.matching import AlertMatcher
from pipelines.store.elastic.core import ALERT_STATE, UNMATCHED, ElasticCore
from pipelines.store.elastic.percolator import PercolatorMatcher

log = logging.getLogger("pipelines.store.elastic")


class ElasticAlertInbox(ElasticCore):
    """The AlertInbox role; rules are matched by the cluster's percolator."""

    def unmatched_ids(self) -> list[str]:
        """Articles awaiting the alert rules, in the order stored. None when this process
        already found the cluster unavailable: they keep their mark for the next run."""
        down = self.breaker.down()
        if down:
            log.warning("Elasticsearch at %s unavailable (%s): new stories are matched "
                        "against the alert rules by the next run", self.url, down)
            return []
        with self._contact("list the articles awaiting the alert rules"):
            return [h["_id"] for h in self._search_all(
                self.names.articles, {"term": {ALERT_STATE: UNMATCHED}},
                [{"stored_at": "asc"}, {"id": "asc"}], source=False)]

    def mark_matched(self, article_ids: Iterable[str]) -> None:
        ids = list(dict.fromkeys(article_ids))
        if not ids:
            return
        self._update_located("record articles as matched against the alert rules", ids,
                             lambda i: {ALERT_STATE: None},
                             refused="record articles as matched")

    def alert_matcher(self) -> AlertMatcher:
        return PercolatorMatcher(self)

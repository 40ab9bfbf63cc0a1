"""Source health records (the health index) and the timings of stored and delivered
articles (the articles alias and the delivery log)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from index_config import health_index
from index_config.install import ensure_index
from pipelines.health import DeliveryTiming, HealthRecord
from pipelines.store.base import StoreError
from pipelines.store.elastic.connection import item_error
from pipelines.store.elastic.core import ElasticCore

TIMING_FIELDS = ["source", "published_at", "first_seen_at", "fetched_at", "stored_at"]


def _date(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ElasticHealth(ElasticCore):
    """The SourceHealth role."""

    _health_ready = False

    def _health_index(self) -> str:
        # a cluster set up before source health has no such index yet
        if not self._health_ready:
            ensure_index(self.client, self.names.health, health_index())
            self._health_ready = True
        return self.names.health

    def health_records(self) -> list[HealthRecord]:
        with self._contact("read source health"):
            index = self._health_index()
            return [HealthRecord.from_dict(hit["_source"]) for hit in self._search_all(
                index, {"match_all": {}}, [{"source": "asc"}, {"url": "asc"}])]

    def put_health(self, records: Iterable[HealthRecord]) -> None:
        with self._contact("record source health"):
            index = self._health_index()
            errors = self._bulk_errors(
                {"_op_type": "index", "_index": index,
                 "_id": hashlib.sha1(f"{r.source} {r.url}".encode()).hexdigest(),
                 "_source": r.to_dict()} for r in records)
        if errors:
            raise StoreError(f"cannot record source health on {self.url}: "
                             f"{item_error(errors[0])}")

    def delivery_timings(self, since: datetime) -> list[DeliveryTiming]:
        with self._contact("read delivery timings"):
            articles = {}
            # newest first, read until the first one stored before `since`
            for hit in self._search_all(self.names.articles, {"match_all": {}},
                                        [{"stored_at": "desc"}], source=TIMING_FIELDS):
                if _date(hit["_source"]["stored_at"]) < since:
                    break
                articles[hit["_id"]] = hit["_source"]
            sent: dict[str, list[tuple[str, str]]] = {}
            for hit in self._search_all(self.names.deliveries, {"term": {"status": "sent"}},
                                        [{"created_at": "asc"}],
                                        source=["rule", "article_id", "sent_at"]):
                d = hit["_source"]
                if d["article_id"] in articles and d.get("sent_at"):
                    sent.setdefault(d["article_id"], []).append((d["rule"], d["sent_at"]))
        out = []
        for article_id, a in articles.items():
            base = (a["source"], _date(a.get("published_at")),
                    _date(a.get("first_seen_at") or a["fetched_at"]),
                    _date(a["stored_at"]))
            for rule, at in sent.get(article_id, [(None, None)]):
                out.append(DeliveryTiming(*base, rule, _date(at)))
        return out

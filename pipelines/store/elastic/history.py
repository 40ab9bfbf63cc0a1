"""Revisits, versions and events of articles: the History role on Elasticsearch.

Three side indices (index_config/elasticsearch/{revisits,versions,events}.json): the
revisit schedule per article, one document per version, one per event. The kinds of an
article's events also travel in its own document (`events`), which `event:` searches.
A change is one bulk request: the versions, the events and the article's new current
state, rewritten in the index that holds it with its alert mark.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from index_config import history_indices
from index_config.install import ensure_index
from pipelines.article import Article, utcnow
from pipelines.query import scope_fields
from pipelines.store.base import StoreError
from pipelines.store.elastic.connection import item_error
from pipelines.store.elastic.core import ALERT_STATE, PAGE, UNMATCHED
from pipelines.store.elastic.dates import parse_date
from pipelines.store.elastic.deliveries import ElasticDeliveryLog
from pipelines.store.history import Event, RevisitTarget, Version

# what a revisit target needs of its article's document
_TARGET_FIELDS = ["id", "url", "canonical_url", "source", "fetched_at", "channel", "post_id"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _version(doc: dict[str, Any]) -> Version:
    return Version(doc["article_id"], doc["version"], parse_date(doc["fetched_at"]),
                   doc["title"], doc["text"], parse_date(doc.get("published_at")),
                   doc.get("warc_file"), doc.get("warc_record_id"), doc.get("changed") or [])


def _event(doc: dict[str, Any]) -> Event:
    return Event(doc["article_id"], doc["kind"], parse_date(doc["at"]), doc.get("version"),
                 doc.get("detail") or {}, doc["n"])


class ElasticHistory(ElasticDeliveryLog):
    """The History role (on the delivery log: an event queues deliveries). Event
    numbers count each article's events from 1 (its `n`); `queue_event` names an event
    by article and number."""

    _history_ready = False

    def _history(self) -> None:
        # a cluster set up before revisits has none of these indices yet
        if not self._history_ready:
            for name, body in history_indices(self.names).items():
                ensure_index(self.client, name, body)
            self._history_ready = True

    def _refused(self, action: str, errors: list[dict[str, Any]]) -> None:
        if errors:
            raise StoreError(f"cannot {action} on {self.url}: {item_error(errors[0])} "
                             f"({len(errors)} document(s))")

    # --- the schedule --------------------------------------------------------------------

    def revisit_targets(self, now: datetime, delays: Sequence[int], source: str | None = None,
                        everything: bool = False) -> list[RevisitTarget]:
        """Articles due (or, `everything`, every stored article, its schedule done or
        not), the never-revisited ones due `delays[0]` after their first fetch. The
        delays grow, so no article fetched less than `delays[0]` ago is due."""
        if not everything and not delays:
            return []
        filters: list[dict[str, Any]] = []
        if source is not None:
            filters.append({"term": {"source": source}})
        if not everything:
            filters.append({"range": {"fetched_at": {
                "lte": (now - timedelta(seconds=delays[0])).isoformat()}}})
        query = {"bool": {"filter": filters}} if filters else {"match_all": {}}
        out = []
        with self._contact("read the revisit schedule"):
            self._history()
            for hits in _pages(self._search_all(self.names.articles, query,
                                                [{"fetched_at": "asc"}, {"id": "asc"}],
                                                source=_TARGET_FIELDS)):
                docs = self.client.mget(index=self.names.revisits,
                                        ids=[h["_id"] for h in hits])["docs"]
                for hit, revisit in zip(hits, docs, strict=True):
                    state = revisit.get("_source") if revisit.get("found") else None
                    if not everything and state is not None and not (
                            state.get("due_at") and parse_date(state["due_at"]) <= now):
                        continue
                    doc = hit["_source"]
                    state = state or {}
                    out.append(RevisitTarget(
                        article_id=hit["_id"], url=doc.get("url") or doc["canonical_url"],
                        source=doc["source"], first_seen=parse_date(doc["fetched_at"]),
                        step=state.get("step", 0), etag=state.get("etag") or "",
                        last_modified=state.get("last_modified") or "",
                        channel=doc.get("channel"), post_id=doc.get("post_id")))
        return out

    def record_revisit(self, article_id: str, step: int, due_at: datetime | None, etag: str,
                       last_modified: str, checked_at: datetime) -> None:
        doc = {"article_id": article_id, "step": step, "due_at": _iso(due_at), "etag": etag,
               "last_modified": last_modified, "checked_at": checked_at.isoformat()}
        with self._contact("record a revisit"):
            self._history()
            if not self._locate([article_id]):
                return  # deleted meanwhile: no schedule for it
            errors = self._bulk_errors([{"_op_type": "index", "_index": self.names.revisits,
                                         "_id": article_id, "_source": doc}])
        self._refused("record a revisit", errors)

    # --- versions and events -------------------------------------------------------------

    def record_change(self, article: Article, versions: list[Version],
                      events: list[Event]) -> None:
        """The article's new current state, its new versions and events, in one bulk
        request; every event awaits the alert rules."""
        with self._contact("record an article's change"):
            self._history()
            located = self._locate([article.id]).get(article.id)
            if located is None:
                raise StoreError(f"cannot record a change of article {article.id}: "
                                 "it is not stored")
            actions: list[dict[str, Any]] = [
                {"_op_type": "index", "_index": self.names.versions,
                 "_id": f"{v.article_id}:{v.version}",
                 "_source": {"article_id": v.article_id, "version": v.version,
                             "fetched_at": v.fetched_at.isoformat(), "title": v.title,
                             "text": v.text, "published_at": _iso(v.published_at),
                             "warc_file": v.warc_file, "warc_record_id": v.warc_record_id,
                             "changed": v.changed}}
                for v in versions]
            for n, e in enumerate(events, start=self._last_event(article.id) + 1):
                # create: a number taken by another writer is refused, never overwritten
                actions.append({"_op_type": "create", "_index": self.names.events,
                                "_id": f"{e.article_id}:{n}",
                                "_source": {"article_id": e.article_id, "n": n, "kind": e.kind,
                                            "at": e.at.isoformat(), "version": e.version,
                                            "detail": e.detail, ALERT_STATE: UNMATCHED}})
            doc = article.to_dict() | scope_fields(article)
            doc[ALERT_STATE] = located.alert_state
            actions.append({"_op_type": "index", "_index": located.index, "_id": article.id,
                            "_source": doc})
            errors = self._bulk_errors(actions)
        self._refused("record an article's change", errors)

    def _last_event(self, article_id: str) -> int:
        response = self.client.search(index=self.names.events,
                                      query={"term": {"article_id": article_id}},
                                      sort=[{"n": "desc"}], size=1, source=["n"])
        hits = response["hits"]["hits"]
        return hits[0]["_source"]["n"] if hits else 0

    def versions(self, article_id: str) -> list[Version]:
        with self._contact("read an article's versions"):
            self._history()
            return [_version(h["_source"]) for h in self._search_all(
                self.names.versions, {"term": {"article_id": article_id}},
                [{"version": "asc"}])]

    def events(self, article_id: str) -> list[Event]:
        with self._contact("read an article's events"):
            self._history()
            return [_event(h["_source"]) for h in self._search_all(
                self.names.events, {"term": {"article_id": article_id}}, [{"n": "asc"}])]

    # --- the events' alerts ------------------------------------------------------------

    def unmatched_events(self) -> list[Event]:
        with self._contact("read the events awaiting the alert rules"):
            self._history()
            return [_event(h["_source"]) for h in self._search_all(
                self.names.events, {"term": {ALERT_STATE: UNMATCHED}},
                [{"at": "asc"}, {"article_id": "asc"}, {"n": "asc"}])]

    def queue_event(self, event_n: int, article_id: str, rules: Iterable[str]) -> list[str]:
        """Queue the event's article to each rule that matched the event, then clear the
        event's mark: the rules whose delivery it queued. A delivery the rule already
        sent (or folded into another story) is pending again, since an event is news of
        its own; one still pending carries this event too. Should the process die
        between the two steps, the event is matched again and finds its deliveries
        pending: nothing is queued twice."""
        rules = list(dict.fromkeys(rules))
        now = utcnow().isoformat()
        pending = {"status": "pending", "attempts": 0, "last_error": None, "message_id": None,
                   "sent_at": None, "folded_into": None, "created_at": now, "stage": "",
                   "possible_repeat": False}
        queued = []
        with self._contact("queue an event's alerts"):
            self._history()
            ids = [self._delivery_id(rule, article_id) for rule in rules]
            found = self.client.mget(index=self.names.deliveries, ids=ids)["docs"] if ids \
                else []
            actions = []
            for rule, doc_id, doc in zip(rules, ids, found, strict=True):
                if not doc.get("found"):
                    actions.append({"_op_type": "create", "_index": self.names.deliveries,
                                    "_id": doc_id, "_source": {
                                        "rule": rule, "article_id": article_id, **pending}})
                elif doc["_source"].get("status") in ("sent", "folded"):
                    # compare-and-swap: a sender that changed it meanwhile wins
                    actions.append({"_op_type": "update", "_index": self.names.deliveries,
                                    "_id": doc_id, "doc": pending,
                                    "if_seq_no": doc["_seq_no"],
                                    "if_primary_term": doc["_primary_term"]})
                else:
                    continue
                queued.append(rule)
            errors = [info for ok, item in self._bulk(actions) if not ok
                      for info in item.values()]
            lost = {info.get("_id") for info in errors if info.get("status") == 409}
            self._refused("queue an event's alerts",
                          [e for e in errors if e.get("status") != 409])
            errors = self._bulk_errors([{"_op_type": "update", "_index": self.names.events,
                                         "_id": f"{article_id}:{event_n}",
                                         "doc": {ALERT_STATE: None}}])
        self._refused("clear an event's mark", errors)
        return [rule for rule, doc_id in zip(rules, ids, strict=True)
                if rule in queued and doc_id not in lost]



def _pages(hits: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """The hits in lists of PAGE, for one mget each."""
    while page := list(islice(hits, PAGE)):
        yield page

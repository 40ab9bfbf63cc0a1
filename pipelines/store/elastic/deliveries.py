"""The alert delivery log: one document per (rule, article) in a side index."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

from pipelines.article import utcnow
from pipelines.store.base import (
    OPEN_DELIVERY,
    STAGES,
    Delivery,
    DeliveryLogBusy,
    OneRuleDeliveries,
    StoreError,
    chunks,
)
from pipelines.store.elastic.connection import item_error
from pipelines.store.elastic.core import PAGE, ElasticCore
from pipelines.store.elastic.dates import parse_date

log = logging.getLogger("pipelines.store.elastic")


# The delivery log's lock is a document of its own in the deliveries index (no rule or
# article id looks like it: article ids are hex digests)
LOCK_ID = "dozor:delivery-lock"


class ElasticDeliveryLog(OneRuleDeliveries, ElasticCore):
    """The DeliveryLog and DeliveryLock roles."""

    @contextmanager
    def delivery_lock(self, owner: str, ttl: float) -> Iterator[DeliveryLease]:
        """Created with op_type=create, so of two senders exactly one gets it; taken over
        (compare-and-swap on its seq_no) once its expiry has passed, e.g. after its holder
        was killed; deleted at the end, unless someone has taken it over since."""
        lease = DeliveryLease(self, owner, ttl)
        with self._contact("lock the delivery log"):
            lease.acquire()
        try:
            yield lease
        finally:
            with suppress(StoreError), self._contact("release the delivery log's lock"):
                lease.release()

    def _lock_write(self, op: str, doc: dict[str, Any] | None,
                    version: tuple[int, int] | None = None) -> tuple[int, int] | None:
        """One write of the lock document: its new (seq_no, primary_term), or None when
        another writer got there first (409)."""
        action: dict[str, Any] = {"_op_type": op, "_index": self.names.deliveries,
                                  "_id": LOCK_ID}
        if doc is not None:
            action["_source"] = doc
        if version is not None:
            action.update(if_seq_no=version[0], if_primary_term=version[1])
        [(ok, item)] = list(self._bulk([action]))
        info = next(iter(item.values()))
        if ok:
            return (info.get("_seq_no", -1), info.get("_primary_term", -1))
        if info.get("status") == 409:
            return None
        raise StoreError(f"cannot lock the delivery log on {self.url}: {item_error(info)}")

    def _lock_held(self) -> dict[str, Any] | None:
        [doc] = self.client.mget(index=self.names.deliveries, ids=[LOCK_ID])["docs"]
        return doc if doc.get("found") else None

    def _delivery_id(self, rule: str, article: str) -> str:
        return f"{rule}:{article}"

    def add_many_deliveries(self, article_ids: Mapping[str, Sequence[str]],
                            folded_into: Mapping[str, Mapping[str, str]] | None = None,
                            ) -> dict[str, list[str]]:
        batch = {rule: list(dict.fromkeys(ids)) for rule, ids in article_ids.items()}
        folded = folded_into or {}
        now = utcnow().isoformat()

        def source(rule: str, article: str) -> dict[str, Any]:
            doc = {"rule": rule, "article_id": article, "status": "pending", "attempts": 0,
                   "last_error": None, "message_id": None, "created_at": now,
                   "sent_at": None, "stage": "", "possible_repeat": False}
            lead = folded.get(rule, {}).get(article)
            if lead:
                doc.update(status="folded", folded_into=lead)
            return doc

        # one bulk stream for every rule of the batch
        actions = (
            {"_op_type": "create", "_index": self.names.deliveries,
             "_id": self._delivery_id(rule, i), "_source": source(rule, i)}
            for rule, ids in batch.items() for i in ids
        )
        what = (f"rule {next(iter(batch))!r}" if len(batch) == 1 else f"{len(batch)} rules")
        added: set[str] = set()
        errors = []
        with self._contact(f"record deliveries for {what}"):
            for ok, item in self._bulk(actions):
                info = next(iter(item.values()))
                if ok:
                    added.add(info["_id"])
                elif info.get("status") != 409:  # 409: already recorded, never twice
                    errors.append(info)
        if errors:
            raise StoreError(f"cannot record deliveries for {what}: {item_error(errors[0])}")
        return {rule: [i for i in ids if self._delivery_id(rule, i) in added]
                for rule, ids in batch.items()}

    def many_cluster_deliveries(self, cluster_ids: Mapping[str, Iterable[str]],
                                ) -> dict[str, dict[str, str]]:
        """The delivery log holds no cluster ids: the clusters' articles are looked up
        once for every rule, then their deliveries to each rule by id."""
        wanted = {rule: [c for c in dict.fromkeys(clusters) if c]
                  for rule, clusters in cluster_ids.items()}
        members: dict[str, list[str]] = {}  # cluster id -> its article ids
        # (rule, cluster id) -> (created_at, article id)
        earliest: dict[tuple[str, str], tuple[str, str]] = {}
        every = list(dict.fromkeys(c for clusters in wanted.values() for c in clusters))
        what = (f"rule {next(iter(wanted))!r}" if len(wanted) == 1
                else f"{len(wanted)} rules")
        with self._contact(f"look up the stories of {what}"):
            for chunk in chunks(every, PAGE):
                for hit in self._search_all(self.names.articles,
                                            {"terms": {"cluster_id": list(chunk)}},
                                            [{"id": "asc"}], source=["cluster_id"]):
                    members.setdefault(hit["_source"]["cluster_id"], []).append(hit["_id"])
            keys = [(rule, c, i) for rule, clusters in wanted.items() for c in clusters
                    for i in members.get(c, [])]
            for chunk in chunks(keys, PAGE):
                ids = [self._delivery_id(rule, i) for rule, _, i in chunk]
                docs = self.client.mget(index=self.names.deliveries, ids=ids)["docs"]
                for (rule, cluster, _), doc in zip(chunk, docs, strict=True):
                    found = doc.get("_source") if doc.get("found") else None
                    if found is None or found["status"] == "folded":
                        continue
                    key = (found["created_at"], found["article_id"])
                    if (rule, cluster) not in earliest or key < earliest[rule, cluster]:
                        earliest[rule, cluster] = key
        out: dict[str, dict[str, str]] = {rule: {} for rule in cluster_ids}
        for (rule, cluster), key in earliest.items():
            out[rule][cluster] = key[1]
        return out

    def folded_deliveries(self, rule: str, article_ids: Iterable[str]) -> list[Delivery]:
        ids = list(dict.fromkeys(article_ids))
        found: list[dict[str, Any]] = []
        with self._contact(f"list the folded deliveries of rule {rule!r}"):
            for chunk in chunks(ids, PAGE):
                query = {"bool": {"filter": [{"term": {"rule": rule}},
                                             {"terms": {"folded_into": list(chunk)}}]}}
                found += [h["_source"] for h in self._search_all(
                    self.names.deliveries, query, [{"created_at": "asc"}, {"article_id": "asc"}])]
        found.sort(key=lambda doc: (doc["created_at"], doc["article_id"]))
        return [delivery_from(doc) for doc in found]

    def sent_deliveries(self, rule: str, article_ids: Iterable[str]) -> list[Delivery]:
        ids = list(dict.fromkeys(article_ids))
        found: list[dict[str, Any]] = []
        with self._contact(f"list the sent deliveries of rule {rule!r}"):
            for chunk in chunks(ids, PAGE):
                query = {"bool": {"filter": [{"term": {"rule": rule}},
                                             {"term": {"status": "sent"}},
                                             {"terms": {"article_id": list(chunk)}}]}}
                found += [h["_source"] for h in self._search_all(
                    self.names.deliveries, query, [{"created_at": "asc"}, {"article_id": "asc"}])]
        found.sort(key=lambda doc: (doc.get("sent_at") or "", doc["article_id"]))
        return [delivery_from(doc) for doc in found]

    def pending_deliveries(self, rule: str | None = None) -> list[Delivery]:
        """Open deliveries, oldest first. When this process already found the cluster
        unavailable (a run whose batches were spooled), none, with a warning: they stay
        in the log and go out with the next run. A first contact that fails raises."""
        down = self.breaker.down()
        if down:
            log.warning("Elasticsearch at %s unavailable (%s): pending alerts wait for the "
                        "next run", self.url, down)
            return []
        filters: list[dict[str, Any]] = [{"terms": {"status": list(OPEN_DELIVERY)}}]
        if rule is not None:
            filters.append({"term": {"rule": rule}})
        sort = [{"created_at": "asc"}, {"rule": "asc"}, {"article_id": "asc"}]
        with self._contact("list pending deliveries"):
            hits = list(self._search_all(self.names.deliveries,
                                         {"bool": {"filter": filters}}, sort))
        return [delivery_from(h["_source"]) for h in hits]

    def last_sent(self, rule: str) -> datetime | None:
        query = {"bool": {"filter": [{"term": {"rule": rule}}, {"term": {"status": "sent"}}]}}
        with self._contact(f"read when rule {rule!r} last sent"):
            hits = self.client.search(index=self.names.deliveries, query=query, size=1,
                                      sort=[{"sent_at": "desc"}])["hits"]["hits"]
        return parse_date(hits[0]["_source"].get("sent_at")) if hits else None

    def mark_sending(self, rule: str, article_ids: Iterable[str], message_id: str) -> None:
        self._update_deliveries(rule, article_ids, "record a digest being sent",
                                lambda d: {"status": "sending", "message_id": message_id,
                                           "stage": "connecting"})

    def mark_stage(self, rule: str, article_ids: Iterable[str], stage: str) -> None:
        if stage not in STAGES:
            raise StoreError(f"unknown delivery stage {stage!r}")
        self._update_deliveries(rule, article_ids,
                                f"record a digest's hand-over reaching {stage}",
                                lambda d: {"stage": stage}, statuses=("sending",))

    def mark_delivered(self, rule: str, article_ids: Iterable[str]) -> None:
        now = utcnow().isoformat()
        self._update_deliveries(rule, article_ids, "record deliveries as sent",
                                lambda d: {"status": "sent", "sent_at": now,
                                           "last_error": None, "stage": "acknowledged"})

    def mark_delivery_failed(self, rule: str, article_ids: Iterable[str], error: str,
                             outcome_unknown: bool = False) -> None:
        self._update_deliveries(
            rule, article_ids, "record a failed delivery",
            lambda d: {"status": "pending", "attempts": int(d.get("attempts") or 0) + 1,
                       "last_error": error,
                       "possible_repeat": bool(d.get("possible_repeat")) or outcome_unknown},
        )

    def _update_deliveries(self, rule: str, article_ids: Iterable[str], action: str,
                           change: Callable[[dict[str, Any]], dict[str, Any]],
                           statuses: Sequence[str] = OPEN_DELIVERY) -> None:
        """Read-modify-write with optimistic concurrency (if_seq_no): a delivery that was
        sent stays sent, which is the at-most-once guarantee, and a folded one is never
        sent on its own."""
        ids = [self._delivery_id(rule, i) for i in dict.fromkeys(article_ids)]
        with self._contact(f"{action} for rule {rule!r}"):
            for _attempt in range(3):
                if not ids:
                    return
                docs = self.client.mget(index=self.names.deliveries, ids=ids)["docs"]
                actions = [
                    {"_op_type": "update", "_index": self.names.deliveries, "_id": d["_id"],
                     "if_seq_no": d["_seq_no"], "if_primary_term": d["_primary_term"],
                     "doc": change(d["_source"])}
                    for d in docs
                    if d.get("found") and d["_source"].get("status") in statuses
                ]
                conflicts, errors = [], []
                for ok, item in self._bulk(actions):
                    info = next(iter(item.values()))
                    if not ok:
                        (conflicts if info.get("status") == 409 else errors).append(info)
                if errors:
                    raise StoreError(f"cannot {action} for rule {rule!r}: "
                                     f"{item_error(errors[0])}")
                ids = [c["_id"] for c in conflicts]
        if ids:
            raise StoreError(f"cannot {action} for rule {rule!r}: the deliveries kept "
                             "changing under a concurrent writer")


def delivery_from(doc: dict[str, Any]) -> Delivery:
    return Delivery(
        rule=doc["rule"], article_id=doc["article_id"], status=doc["status"],
        attempts=int(doc.get("attempts") or 0), last_error=doc.get("last_error"),
        created_at=parse_date(doc.get("created_at")), sent_at=parse_date(doc.get("sent_at")),
        message_id=doc.get("message_id"), folded_into=doc.get("folded_into"),
        stage=doc.get("stage") or "", possible_repeat=bool(doc.get("possible_repeat")),
    )



class DeliveryLease:
    """The lock document this process holds, with its current version."""

    def __init__(self, log: ElasticDeliveryLog, owner: str, ttl: float) -> None:
        self.log, self.owner, self.ttl = log, owner, ttl
        self.version: tuple[int, int] | None = None

    def _doc(self) -> dict[str, Any]:
        now = utcnow()
        return {"status": "lock", "owner": self.owner, "created_at": now.isoformat(),
                "expires_at": (now + timedelta(seconds=self.ttl)).isoformat()}

    def acquire(self) -> None:
        for _attempt in range(3):
            self.version = self.log._lock_write("create", self._doc())
            if self.version is not None:
                return
            held = self.log._lock_held()
            if held is None:  # released meanwhile: create it again
                continue
            expires = parse_date(held["_source"].get("expires_at"))
            if expires is not None and expires > utcnow():
                raise DeliveryLogBusy(
                    f"another Dozor process is sending the digests of {self.log.url} "
                    f"({held['_source'].get('owner', 'holder unknown')}, its lock expires "
                    f"{expires:%Y-%m-%d %H:%M:%S} UTC); not sending a second time")
            # its holder died (or hung) past the expiry: take it over, unless another
            # process just did
            self.version = self.log._lock_write(
                "index", self._doc(), (held["_seq_no"], held["_primary_term"]))
            if self.version is not None:
                log.warning("took over the delivery log's lock %s left by %s, expired %s",
                            LOCK_ID, held["_source"].get("owner"), expires)
                return
        raise DeliveryLogBusy(f"the delivery log's lock on {self.log.url} keeps changing "
                              "hands; not sending")

    def renew(self) -> None:
        """Push the expiry on; DeliveryLogBusy if it expired and another process took it."""
        with self.log._contact("renew the delivery log's lock"):
            version = self.log._lock_write("index", self._doc(), self.version)
        if version is None:
            raise DeliveryLogBusy(f"the delivery log's lock on {self.log.url} expired and "
                                  "was taken over by another process; not sending more")
        self.version = version

    def release(self) -> None:
        if self.version is not None:
            self.log._lock_write("delete", None, self.version)
            self.version = None

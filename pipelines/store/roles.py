"""The store's roles, each a small protocol, and `Store`, their union.

Every consumer is typed by the role it uses: the stages write articles, consult the
frontier and the duplicate candidates; the translation backfill works the translation
queue; the alerts read their inbox and keep the delivery log; the UI and the search
command read articles. Both backends (`pipelines.store.sqlite`, `pipelines.store.elastic`)
implement every role; `pipelines.store.open_store` is the only place naming them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol, runtime_checkable

from pipelines.article import Article
from pipelines.health import DeliveryTiming, HealthRecord
from pipelines.matching import AlertMatcher
from pipelines.query import Query
from pipelines.store.base import (
    Delivery,
    DupCandidate,
    SearchHit,
    SearchSummary,
    StoreStats,
    WriteResult,
)
from pipelines.store.history import Event, RevisitTarget, Version


@runtime_checkable
class Closeable(Protocol):
    def close(self) -> None: ...


@runtime_checkable
class ArticlesReader(Protocol):
    def get(self, article_id: str) -> Article | None: ...
    def iter_articles(self, ids: Iterable[str] | None = None) -> Iterator[Article]: ...
    # `offset` hits of the ranking are skipped, so page n is offset=(n-1)*limit
    # the query's language (Query.in_language) is the store's own filter
    # sort: relevance (best first), newest or oldest (by publication date, undated last)
    # collapse: one hit per story (cluster), its other matching articles as its copies,
    # and limit/offset count stories (base.as_stories)
    def search(self, query: Query, limit: int = 20, offset: int = 0,
               sort: str = "relevance", collapse: bool = False) -> list[SearchHit]: ...
    # the total of a query's matches, their stories, and their counts per facet
    # (base.FACETS)
    def summarise(self, query: Query) -> SearchSummary: ...
    def count(self) -> int: ...
    def stats(self) -> StoreStats: ...
    # the articles of one near-duplicate cluster (`Article.cluster_id`): those with a
    # publication date first, oldest first, then the others by fetch time
    def cluster_members(self, cluster_id: str, limit: int = 50) -> list[Article]: ...


@runtime_checkable
class ArticlesWriter(Protocol):
    # upserts by id in one batch: a stored article keeps the stored_at of its first
    # write; the result says which ids were new and which were updated
    def write(self, articles: list[Article]) -> WriteResult: ...


@runtime_checkable
class Frontier(Protocol):
    # an URL whose article is stored is never fetched again. `seen` answers from stored
    # articles and from URLs marked seen (fetched, not stored).
    def seen(self, canonical_urls: Iterable[str]) -> set[str]: ...
    def mark_seen(self, canonical_urls: Iterable[str]) -> None: ...
    # article URLs that answered 404/410 (URL -> status): `seen` counts each until its
    # retry time, which doubles with every such answer (an hour, two, ... a week)
    def mark_gone(self, statuses: Mapping[str, int]) -> None: ...


@runtime_checkable
class DuplicateCandidates(Protocol):
    # stored articles with any of these content hashes or LSH band keys
    def dup_candidates(
        self, content_hashes: Iterable[str], lsh_bands: Iterable[str]
    ) -> list[DupCandidate]: ...


@runtime_checkable
class TranslationQueue(Protocol):
    # status "pending", ordered by id, strictly after `after_id`, so a backfill can
    # resume where it stopped; mark_translation writes only the translation fields and
    # `terms`
    def pending_translation(self, limit: int = 100, after_id: str = "") -> list[Article]: ...
    def mark_translation(self, articles: list[Article]) -> None: ...
    # the queue is walked over every stored article too (re-queueing failed ones)
    def iter_articles(self, ids: Iterable[str] | None = None) -> Iterator[Article]: ...


@runtime_checkable
class AlertInbox(Protocol):
    # `write` marks every article it stores for the first time as awaiting the alert
    # rules, in the same transaction (SQLite) or document (ES), so a run that dies
    # before its alert step leaves its stories to the next one. unmatched_ids lists
    # them, oldest first; mark_matched clears the mark.
    def unmatched_ids(self) -> list[str]: ...
    def mark_matched(self, article_ids: Iterable[str]) -> None: ...
    # how this backend matches rules (SQLite: in Python; ES: its percolator)
    def alert_matcher(self) -> AlertMatcher: ...
    def iter_articles(self, ids: Iterable[str] | None = None) -> Iterator[Article]: ...


@runtime_checkable
class DeliveryLog(Protocol):
    # (rule, article) recorded at most once; add_deliveries returns only the ids it newly
    # recorded, so a story is never queued twice. They are recorded "pending", except the
    # keys of `folded_into`: syndicated copies recorded as "folded" into the article
    # carrying their story, never sent on their own.
    def add_deliveries(self, rule: str, article_ids: Iterable[str],
                       folded_into: Mapping[str, str] | None = None) -> list[str]: ...
    # per cluster id, the article whose delivery to `rule` carries the cluster's story
    # (pending, sending or sent; the earliest recorded), for the clusters that have one
    def cluster_deliveries(self, rule: str, cluster_ids: Iterable[str]) -> dict[str, str]: ...
    # the same for many rules at once, keyed by rule: one transaction (SQLite) or bulk
    # request stream (ES) for a whole batch of matches, not one per rule
    def add_many_deliveries(self, article_ids: Mapping[str, Sequence[str]],
                            folded_into: Mapping[str, Mapping[str, str]] | None = None,
                            ) -> dict[str, list[str]]: ...
    def many_cluster_deliveries(self, cluster_ids: Mapping[str, Iterable[str]],
                                ) -> dict[str, dict[str, str]]: ...
    # the deliveries of `rule` folded into any of `article_ids`, oldest first
    def folded_deliveries(self, rule: str, article_ids: Iterable[str]) -> list[Delivery]: ...
    # the deliveries of `rule` to any of `article_ids` already sent, by sent_at
    def sent_deliveries(self, rule: str, article_ids: Iterable[str]) -> list[Delivery]: ...
    # A digest's deliveries go pending -> sending (mark_sending, recorded before the
    # SMTP conversation, with the digest's Message-ID) -> sent (mark_delivered), or back
    # to pending with attempts+1 and last_error (mark_delivery_failed); a folded one never
    # changes. pending_deliveries returns "pending" AND "sending" ones, oldest first: a
    # "sending" one was left by a process that died handing its digest over.
    # mark_sending records stage "connecting", mark_stage each later step of the
    # hand-over (base.STAGES) before it is taken, mark_delivered "acknowledged";
    # mark_delivery_failed with `outcome_unknown` (the server may have the message) sets
    # possible_repeat, which stays set until the delivery is sent.
    def pending_deliveries(self, rule: str | None = None) -> list[Delivery]: ...
    # when `rule` last had a digest delivered (the latest sent_at), or None
    def last_sent(self, rule: str) -> datetime | None: ...
    def mark_sending(self, rule: str, article_ids: Iterable[str], message_id: str) -> None: ...
    def mark_stage(self, rule: str, article_ids: Iterable[str], stage: str) -> None: ...
    def mark_delivered(self, rule: str, article_ids: Iterable[str]) -> None: ...
    def mark_delivery_failed(self, rule: str, article_ids: Iterable[str], error: str,
                             outcome_unknown: bool = False) -> None: ...


@runtime_checkable
class DeliveryLock(Protocol):
    """A delivery log shared by processes no file lock can see (Elasticsearch): held
    while digests are sent, so two senders never both send one story. Raises
    DeliveryLogBusy while another owner holds it and its expiry has not passed; `renew`
    pushes the expiry on while the holder works."""

    def delivery_lock(self, owner: str, ttl: float) -> AbstractContextManager[DeliveryLease]: ...


class DeliveryLease(Protocol):
    def renew(self) -> None: ...


@runtime_checkable
class SourceHealth(Protocol):
    # one record per (source, URL) of a feed, sitemap, listing or channel; put_health
    # replaces the records it is given, whole
    def health_records(self) -> list[HealthRecord]: ...
    def put_health(self, records: Iterable[HealthRecord]) -> None: ...
    # per stored article (and per rule that delivered it, once sent) its publication,
    # first fetch, store and delivery times, for articles stored since `since`
    def delivery_timings(self, since: datetime) -> list[DeliveryTiming]: ...


@runtime_checkable
class Labels(Protocol):
    # the analysts' relevant / not relevant mark on an article: set_label(id, None)
    # clears it; labels answers for the labelled ones among `ids` (all when None)
    def set_label(self, article_id: str, relevant: bool | None) -> None: ...
    def labels(self, ids: Iterable[str] | None = None) -> dict[str, bool]: ...


@runtime_checkable
class History(Protocol):
    """Revisits (pipelines.revisit) and `dozor history`: when each article is due again,
    its versions and its events; each event awaits the alert rules once (`queue_event`
    clears its mark in the same transaction that queues its deliveries)."""

    def revisit_targets(self, now: datetime, delays: Sequence[int], source: str | None = None,
                        everything: bool = False) -> list[RevisitTarget]: ...
    def record_revisit(self, article_id: str, step: int, due_at: datetime | None,
                       etag: str, last_modified: str, checked_at: datetime) -> None: ...
    # the article's current state written with its new versions and events, at once
    def record_change(self, article: Article, versions: list[Version],
                      events: list[Event]) -> None: ...
    def versions(self, article_id: str) -> list[Version]: ...
    def events(self, article_id: str) -> list[Event]: ...
    def unmatched_events(self) -> list[Event]: ...
    def queue_event(self, event_n: int, article_id: str, rules: Iterable[str]) -> list[str]: ...


# what the consumers that need several roles take
@runtime_checkable
class Ingest(ArticlesWriter, Frontier, DuplicateCandidates, ArticlesReader, Protocol):
    """The stages: stored batches, the frontier, and duplicates among stored articles."""


@runtime_checkable
class AlertStore(AlertInbox, DeliveryLog, Protocol):
    """The alerts: what awaits the rules, and the delivery log of what they matched."""


@runtime_checkable
class Store(ArticlesReader, ArticlesWriter, Frontier, DuplicateCandidates, TranslationQueue,
            AlertInbox, DeliveryLog, SourceHealth, Labels, History, Closeable, Protocol):
    """Every role: what `open_store` returns."""


ROLES: tuple[type, ...] = (ArticlesReader, ArticlesWriter, Frontier, DuplicateCandidates,
                           TranslationQueue, AlertInbox, DeliveryLog, SourceHealth, Labels,
                           History)

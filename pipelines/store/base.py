"""The one small interface every index backend implements.

The rest of the code talks to a `Store` and never imports a backend module;
`pipelines.store.open_store` picks the backend from a `--db` path or an `--es` URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from pipelines.article import Article


class StoreError(RuntimeError):
    """A backend could not do what was asked; the message says what and why."""


@dataclass(slots=True)
class SearchHit:
    article: Article
    rank: float  # higher is better; only comparable within one result list
    snippet: str  # text with the matching words wrapped in [ ] (terminal) or <mark> (UI)
    matched_terms: list[str] = field(default_factory=list)  # normalised terms the query hit


@dataclass(slots=True)
class StoreStats:
    """Article counts for an overview (the analyst UI's front page)."""

    total: int = 0
    relevant: int = 0
    by_lang: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)
    by_translation: dict[str, int] = field(default_factory=dict)  # translation_status -> n


@dataclass(slots=True)
class WriteResult:
    new: list[str] = field(default_factory=list)  # ids stored for the first time
    updated: list[str] = field(default_factory=list)
    spooled: int = 0  # articles kept on disk for a later retry (backend unreachable)


@dataclass(slots=True)
class DupCandidate:
    """A stored article sharing a content hash or an LSH band key with a new one."""

    id: str
    cluster_id: str
    content_hash: str
    minhash: list[int]  # Article.minhash as stored; empty for short texts


@dataclass(slots=True)
class Delivery:
    rule: str
    article_id: str
    status: str  # pending | sending | sent | folded
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime | None = None
    sent_at: datetime | None = None
    message_id: str | None = None  # the digest that carries it, set by mark_sending
    folded_into: str | None = None  # status "folded": the article carrying the story


@runtime_checkable
class Store(Protocol):
    # articles. `write` upserts by id in one batch: a stored article keeps the stored_at
    # of its first write; the result says which ids were new and which were updated.
    def write(self, articles: list[Article]) -> WriteResult: ...
    def get(self, article_id: str) -> Article | None: ...
    def iter_articles(self, ids: Iterable[str] | None = None) -> Iterator[Article]: ...
    # `offset` hits of the ranking are skipped, so page n is offset=(n-1)*limit
    def search(
        self, query: str, lang: str | None = None, limit: int = 20, offset: int = 0
    ) -> list[SearchHit]: ...
    def count(self) -> int: ...
    def stats(self) -> StoreStats: ...
    # the articles of one near-duplicate cluster (`Article.cluster_id`): those with a
    # publication date first, oldest first, then the others by fetch time
    def cluster_members(self, cluster_id: str, limit: int = 50) -> list[Article]: ...

    # crawl frontier: an URL whose article is stored is never fetched again.
    # `seen` answers from stored articles and from URLs marked seen (fetched, not stored).
    def seen(self, canonical_urls: Iterable[str]) -> set[str]: ...
    def mark_seen(self, canonical_urls: Iterable[str]) -> None: ...

    # dedup: stored articles with any of these content hashes or LSH band keys
    def dup_candidates(
        self, content_hashes: Iterable[str], lsh_bands: Iterable[str]
    ) -> list[DupCandidate]: ...

    # translation: status "pending", ordered by id, strictly after `after_id`, so a
    # backfill can resume where it stopped; mark_translation writes only the
    # translation fields and `terms`
    def pending_translation(self, limit: int = 100, after_id: str = "") -> list[Article]: ...
    def mark_translation(self, articles: list[Article]) -> None: ...

    # alert matching: `write` marks every article it stores for the first time as
    # awaiting the alert rules, in the same transaction (SQLite) or document (ES), so a
    # run that dies before its alert step leaves its stories to the next one.
    # unmatched_ids lists them, oldest first; mark_matched clears the mark.
    def unmatched_ids(self) -> list[str]: ...
    def mark_matched(self, article_ids: Iterable[str]) -> None: ...

    # alert delivery log: (rule, article) recorded at most once; add_deliveries returns
    # only the ids it newly recorded, so a story is never queued twice. They are
    # recorded "pending", except the keys of `folded_into`: syndicated copies recorded
    # as "folded" into the article carrying their story, never sent on their own.
    def add_deliveries(self, rule: str, article_ids: Iterable[str],
                       folded_into: Mapping[str, str] | None = None) -> list[str]: ...
    # per cluster id, the article whose delivery to `rule` carries the cluster's story
    # (pending, sending or sent; the earliest recorded), for the clusters that have one
    def cluster_deliveries(self, rule: str, cluster_ids: Iterable[str]) -> dict[str, str]: ...
    # the deliveries of `rule` folded into any of `article_ids`, oldest first
    def folded_deliveries(self, rule: str, article_ids: Iterable[str]) -> list[Delivery]: ...
    # A digest's deliveries go pending -> sending (mark_sending, recorded before the
    # SMTP conversation, with the digest's Message-ID) -> sent (mark_delivered), or back
    # to pending with attempts+1 and last_error (mark_delivery_failed); a folded one never
    # changes. pending_deliveries returns "pending" AND "sending" ones, oldest first: a
    # "sending" one left by a crash may already be in a mailbox, so the next run settles
    # it instead of sending it again.
    def pending_deliveries(self, rule: str | None = None) -> list[Delivery]: ...
    def mark_sending(self, rule: str, article_ids: Iterable[str], message_id: str) -> None: ...
    def mark_delivered(self, rule: str, article_ids: Iterable[str]) -> None: ...
    def mark_delivery_failed(self, rule: str, article_ids: Iterable[str], error: str) -> None: ...

    def close(self) -> None: ...

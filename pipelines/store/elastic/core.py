"""What every role of `ElasticStore` stands on: the client, the index names, the spool,
the circuit breaker, first contact (bootstrap), and the one error mapping."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from index_config import DEFAULT_PREFIX, IndexNames
from pipelines.article import Article, article_id, utcnow
from pipelines.store.base import StoreError, WriteResult, chunks
from pipelines.store.elastic.bootstrap import prepare_indices
from pipelines.store.elastic.breaker import Breaker
from pipelines.store.elastic.connection import (
    ES_ERRORS,
    Credentials,
    connect,
    describe,
    item_error,
    safe_url,
    unreachable,
)
from pipelines.store.spool import Spool

log = logging.getLogger("pipelines.store.elastic")

PAGE = 500  # ids per lookup, hits per page
# Kept in an article's document beside the Article fields: "unmatched" from the request
# that creates it until the alert step has matched it against the rules (then null).
ALERT_STATE = "alert_state"
UNMATCHED = "unmatched"


@dataclass(frozen=True)
class BulkSettings:
    chunk_size: int = 500  # documents per _bulk request, at most
    max_chunk_bytes: int = 10 * 1024 * 1024  # and bytes per request, at most
    max_retries: int = 5  # per document rejected with 429
    initial_backoff: float = 2.0  # seconds; doubles on every retry
    max_backoff: float = 60.0


@dataclass(frozen=True)
class Located:
    index: str
    stored_at: str | None
    alert_state: str | None = None


class ElasticCore(ABC):
    """Dozor's indices in one cluster; see `pipelines.store.roles` for the contract."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        client: Elasticsearch | None = None,
        spool: Spool | None = None,
        spool_dir: Path | None = None,
        credentials: Credentials | None = None,
        bulk: BulkSettings | None = None,
    ) -> None:
        if spool is None:
            if spool_dir is None:
                raise StoreError("an Elasticsearch store needs a spool folder (spool_dir)")
            spool = Spool(spool_dir / "elasticsearch" / prefix)
        self.names = IndexNames(prefix)
        self.url = safe_url(url)
        self.client = client or connect(url, credentials=credentials)
        self.spool = spool
        self.bulk = bulk or BulkSettings()
        self.breaker = Breaker()
        self._ready = False

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ errors

    def _error(self, action: str, exc: BaseException) -> StoreError:
        return StoreError(f"cannot {action} on Elasticsearch at {self.url}: {describe(exc)}")

    @contextmanager
    def _contact(self, action: str,
                 unavailable: Callable[[str], None] | None = None) -> Iterator[None]:
        """Talk to the cluster (set up at first contact) to `action`; a failed request
        becomes StoreError("cannot <action> on Elasticsearch at <url>: <why>"). With
        `unavailable`, an unreachable cluster is no error: it is marked down and
        `unavailable(why)` says what happens instead."""
        try:
            self.ensure_indices()
            yield
        except ES_ERRORS as exc:
            if unavailable is None or not unreachable(exc):
                raise self._error(action, exc) from exc
            unavailable(self.breaker.went_down(exc))

    # --------------------------------------------------------------- bootstrap

    def ensure_indices(self) -> None:
        """On the first contact with the cluster: set the indices up if `dozor setup` was
        never run (nothing is ever written to an index created without the templates),
        then store what the spool holds from an earlier outage."""
        if self._ready:
            return
        prepare_indices(self.client, self.names, self.url)
        self._ready = True
        replayed = WriteResult()
        try:
            self._replay(replayed)
        except Unwritten as exc:
            log.warning("spooled articles not stored yet (%s): the next write tries again",
                        exc.cause if isinstance(exc.cause, str) else describe(exc.cause))
        finally:
            # whatever command opened the store, the articles it stored for the first
            # time reach the alerts through the next write's result, in this run or later
            self.spool.announce(replayed.new)

    @abstractmethod
    def _replay(self, result: WriteResult) -> None:
        """Store what the spool holds, oldest first (pipelines.store.elastic.writes)."""

    # ---------------------------------------------------------------- requests

    def _bulk(self, actions: Iterable[dict[str, Any]],
              **params: Any) -> Iterator[tuple[bool, dict[str, Any]]]:
        """`params` go to every _bulk request (e.g. require_alias)."""
        return streaming_bulk(
            self.client,
            actions,
            **params,
            chunk_size=self.bulk.chunk_size,
            max_chunk_bytes=self.bulk.max_chunk_bytes,
            max_retries=self.bulk.max_retries,
            initial_backoff=self.bulk.initial_backoff,
            max_backoff=self.bulk.max_backoff,
            raise_on_error=False,
            # the next lookup (dedup, locate, percolate) must see this write
            refresh="wait_for",
        )

    def _bulk_errors(self, actions: Iterable[dict[str, Any]],
                     tolerated: int | None = None) -> list[dict[str, Any]]:
        """The items the cluster refused (but `tolerated`, a status such as 409)."""
        return [info for ok, item in self._bulk(actions) if not ok
                for info in item.values()
                if tolerated is None or info.get("status") != tolerated]

    def _search_all(self, index: str, query: dict[str, Any], sort: list[dict[str, str]],
                    source: Any = True) -> Iterator[dict[str, Any]]:
        after = None
        while True:
            extra = {"search_after": after} if after is not None else {}
            hits = self.client.search(index=index, query=query, sort=sort, size=PAGE,
                                      source=source, **extra)["hits"]["hits"]
            yield from hits
            if len(hits) < PAGE:
                return
            after = hits[-1]["sort"]

    def _locate(self, ids: Sequence[str]) -> dict[str, Located]:
        """Where each stored id lives (its concrete index) and when it was first stored."""
        found: dict[str, Located] = {}
        for chunk in chunks(ids, PAGE):
            response = self.client.search(
                index=self.names.articles, query={"ids": {"values": list(chunk)}},
                source=["stored_at", ALERT_STATE], size=len(chunk),
            )
            for hit in response["hits"]["hits"]:
                source = hit["_source"] or {}
                found[hit["_id"]] = Located(hit["_index"], source.get("stored_at"),
                                            source.get(ALERT_STATE))
        return found

    def _update_located(self, action: str, ids: Sequence[str],
                        doc: Callable[[str], dict[str, Any]], refused: str = "") -> None:
        """Rewrite fields of stored articles in the index that holds each one; `refused`
        names the action when the cluster refuses some of them (default: `action`)."""
        with self._contact(action):
            located = self._locate(ids)
            errors = self._bulk_errors(
                {"_op_type": "update", "_index": located[i].index, "_id": i, "doc": doc(i)}
                for i in ids if i in located)
        if errors:
            raise StoreError(f"cannot {refused or action} on {self.url}: "
                             f"{item_error(errors[0])} ({len(errors)} article(s))")

    def _write_seen(self, urls: list[str]) -> None:
        now = utcnow().isoformat()
        actions = ({"_op_type": "create", "_index": self.names.seen, "_id": article_id(url),
                    "_source": {"url": url, "seen_at": now}} for url in urls)
        errors = self._bulk_errors(actions, tolerated=409)
        if errors:
            raise StoreError(f"cannot mark URLs seen: {item_error(errors[0])}")


class Unwritten(Exception):
    """Part of a batch did not reach the cluster; `articles` is that part."""

    def __init__(self, articles: list[Article], cause: BaseException | str) -> None:
        super().__init__(str(cause))
        self.articles = articles
        self.cause = cause

"""Bulk writes of articles, and the spool they go to when the cluster cannot take them.

An article that is already stored is rewritten *in the index that holds it*, found by
id before each bulk write, so that a translation arriving after a rollover never
leaves a second copy in the new write index. Writes go through
`elasticsearch.helpers.streaming_bulk`: chunked by count and size, documents rejected
with 429 retried with exponential backoff, whole requests retried by the transport on
429/5xx and connection errors; ids are `Article.id`, so repeating a write changes
nothing. When the cluster cannot be reached the batch goes to a disk spool
(pipelines.store.spool) and is replayed, before anything newer is written, at the next
contact with the cluster (any command opening the store) or the next write; the
articles a replay stored for the first time are reported new by the next write, so
they reach the alerts once. What a retry cannot fix (a mapping error) is kept aside in
the spool's `rejected/` folder with the reason.
"""

from __future__ import annotations

import itertools
import logging

from pipelines.article import Article, utcnow
from pipelines.query import scope_fields
from pipelines.store.base import StoreError, WriteResult, check_statuses
from pipelines.store.elastic.breaker import Breaker
from pipelines.store.elastic.connection import (
    ES_ERRORS,
    RETRY_STATUSES,
    describe,
    item_error,
    unreachable,
)
from pipelines.store.elastic.core import (
    ALERT_STATE,
    UNMATCHED,
    ElasticCore,
    Located,
    Unwritten,
)
from pipelines.store.elastic.dates import parse_date

log = logging.getLogger("pipelines.store.elastic")


class ElasticWrites(ElasticCore):
    """The ArticlesWriter role."""

    def write(self, articles: list[Article]) -> WriteResult:
        batch = list({a.id: a for a in articles}.values())
        check_statuses(batch)
        result = WriteResult()
        down = self.breaker.down()
        if down:
            self._defer(batch, down, result)
            return result
        try:
            # spooled batches first: an older version must never overwrite a newer one
            self.ensure_indices()
            self._replay(result)
        except Unwritten as exc:
            self._defer(batch, exc.cause, result)
            return result
        except ES_ERRORS as exc:
            self._defer(batch, exc, result)
            return result
        if batch:
            try:
                leftover = self._index(batch, result)
            except Unwritten as exc:
                leftover = []
                self._defer(exc.articles, exc.cause, result)
            self._defer(leftover, "rejected as overloaded after every retry", result)
        result.new = list(dict.fromkeys(self.spool.take_announced() + result.new))
        return result

    def replay_spool(self) -> tuple[WriteResult, int]:
        """The spool replayed now, whatever the breaker says (a long-running worker
        retries on its own backoff rather than at every write): what it stored (`new`:
        stored for the first time) and how many spooled batches are left."""
        result = WriteResult()
        if not self.spool.batches_waiting():
            return result, 0
        self.breaker = Breaker()
        try:
            self.ensure_indices()
            self._replay(result)
        except (Unwritten, *ES_ERRORS) as exc:
            cause = exc.cause if isinstance(exc, Unwritten) else exc
            why = self.breaker.went_down(cause)
            raise StoreError(f"cannot store the spool on Elasticsearch at {self.url}: {why}"
                             ) from None
        result.new = list(dict.fromkeys(self.spool.take_announced() + result.new))
        return result, self.spool.batches_waiting()

    def _defer(self, articles: list[Article], cause: BaseException | str,
               result: WriteResult) -> None:
        if not articles:
            return
        path = self.spool.put(articles, reason=str(cause))
        result.spooled += len(articles)
        if isinstance(cause, str) or unreachable(cause):
            why = self.breaker.went_down(cause)
            log.warning("Elasticsearch at %s unavailable (%s): %d article(s) kept in %s, "
                        "stored when it is back", self.url, why, len(articles), path)
            return
        raise StoreError(
            f"Elasticsearch at {self.url} refused the write ({describe(cause)}); "
            f"{len(articles)} article(s) kept in {path}, stored by the next write once "
            "this is fixed"
        )

    def _replay(self, result: WriteResult) -> None:
        for batch in self.spool.batches():
            leftover = self._index(batch.articles, result) if batch.articles else []
            if leftover:
                # the file is kept whole: writing by id makes a second replay harmless
                raise Unwritten([], "spooled articles still rejected as overloaded")
            if batch.seen:
                self._write_seen(batch.seen)
            self.spool.remove(batch)
            log.info("stored %d spooled article(s) from %s", len(batch.articles), batch.path)

    def _index(self, batch: list[Article], result: WriteResult,
               located: dict[str, Located] | None = None) -> list[Article]:
        """Bulk-write `batch`; returns what the cluster still rejected as overloaded.
        Raises Unwritten with what was not acknowledged when a request fails. `located`
        (where a writer that won a race stored them) skips the lookup by search."""
        pending = {a.id: a for a in batch}
        raced_again = located is not None
        try:
            self.ensure_indices()
            located = located if located is not None else self._locate(list(pending))
        except ES_ERRORS as exc:
            raise Unwritten(list(pending.values()), exc) from exc
        now = utcnow()
        in_place, created = [], []
        for article in batch:
            where = located.get(article.id)
            article.stored_at = parse_date(where.stored_at) if where else None
            article.stored_at = article.stored_at or now
            doc = article.to_dict() | scope_fields(article)
            if where:
                # in place, in the index that holds it (maybe not the write index), with
                # the alert mark it has (the whole document is replaced)
                doc[ALERT_STATE] = where.alert_state
                in_place.append({"_op_type": "index", "_index": where.index,
                                 "_id": article.id, "_source": doc})
            else:
                # the mark travels in the document that stores it: no story is stored
                # without it, whenever the process dies
                doc[ALERT_STATE] = UNMATCHED
                created.append({"_op_type": "create", "_index": self.names.articles,
                                "_id": article.id, "_source": doc})
        raced: dict[str, list[Article]] = {}  # by the index the other writer stored them in
        orphaned: list[Article] = []
        refused: list[tuple[Article, str]] = []
        # creates go through the alias only: were it gone, Elasticsearch would otherwise
        # auto-create an index of that name without Dozor's templates
        answers = itertools.chain(self._bulk(in_place),
                                  self._bulk(created, require_alias=True))
        try:
            for ok, item in answers:
                op, info = next(iter(item.items()))
                doc_id = info.get("_id")
                if ok:
                    pending.pop(doc_id)
                    (result.updated if doc_id in located else result.new).append(doc_id)
                elif op == "create" and info.get("status") == 409 and not raced_again:
                    # stored meanwhile by another writer, maybe not yet visible to search
                    raced.setdefault(info["_index"], []).append(pending.pop(doc_id))
                elif op == "create" and info.get("status") == 404:
                    orphaned.append(pending.pop(doc_id))
                elif info.get("status") not in RETRY_STATUSES:
                    refused.append((pending.pop(doc_id), item_error(info)))
        except ES_ERRORS as exc:
            self.spool.reject(refused)
            raise Unwritten(list(pending.values()) + orphaned + sum(raced.values(), []),
                            exc) from exc
        self.spool.reject(refused)
        if orphaned:
            raise Unwritten(orphaned + list(pending.values()) + sum(raced.values(), []),
                            StoreError(f"the write alias {self.names.articles} is missing; "
                                       "run `dozor setup` to restore it"))
        leftover = list(pending.values())
        if raced:
            try:
                found = self._get_now(raced)
            except ES_ERRORS as exc:
                raise Unwritten(leftover + sum(raced.values(), []), exc) from exc
            leftover += self._index(sum(raced.values(), []), result, found)
        return leftover

    def _get_now(self, raced: dict[str, list[Article]]) -> dict[str, Located]:
        """Where and when the winners of a create race stored these: a get by id is
        real-time, where a search would not see them before the next refresh."""
        found: dict[str, Located] = {}
        for index, articles in raced.items():
            docs = self.client.mget(index=index, ids=[a.id for a in articles],
                                    source=["stored_at", ALERT_STATE])["docs"]
            found.update({d["_id"]: Located(index, (d.get("_source") or {}).get("stored_at"),
                                            (d.get("_source") or {}).get(ALERT_STATE))
                          for d in docs if d.get("found")})
        return found

"""The scale-out backend: an Elasticsearch cluster, through the official client.

Layout (index_config/): articles live in dated indices behind one alias; new articles
are created through the alias (its write index), while an article that is already
stored is rewritten *in the index that holds it*, found by id before each bulk
write, so that a translation arriving after a rollover never leaves a second copy in
the new write index. Alert rules live in a percolator index, the delivery log and the
crawl frontier in two small side indices.

Writes go through `elasticsearch.helpers.streaming_bulk`: chunked by count and size,
documents rejected with 429 retried with exponential backoff, whole requests retried
by the transport on 429/5xx and connection errors; ids are `Article.id`, so repeating
a write changes nothing. When the cluster cannot be reached the batch goes to a disk
spool (pipelines.store.spool) and is replayed, before anything newer is written, at the
next contact with the cluster (any command opening the store) or the next write; the
articles a replay stored for the first time are reported new by the next write, so
they reach the alerts once. What a retry cannot fix (a mapping error) is kept aside in
the spool's `rejected/` folder with the reason.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from elasticsearch import (
    ApiError,
    ConnectionError,
    ConnectionTimeout,
    Elasticsearch,
    SSLError,
    TransportError,
)
from elasticsearch.helpers import streaming_bulk

from index_config import DEFAULT_PREFIX, IndexNames
from pipelines.article import TRANSLATION_STATUSES, Article, article_id, utcnow
from pipelines.store.base import (
    Delivery,
    DupCandidate,
    SearchHit,
    StoreError,
    StoreStats,
    WriteResult,
)
from pipelines.store.spool import Spool

log = logging.getLogger(__name__)

# statuses that mean "busy or briefly unavailable": retried, then spooled
RETRY_STATUSES = (429, 502, 503, 504)
PAGE = 500  # ids per lookup, hits per page
TRANSLATION_FIELDS = (
    "title_en",
    "text_en",
    "translation_status",
    "translation_engine",
    "translation_model",
    "terms",
)
OPEN_DELIVERY = ("pending", "sending")
# Kept in an article's document beside the Article fields: "unmatched" from the request
# that creates it until the alert step has matched it against the rules (then null).
ALERT_STATE = "alert_state"
UNMATCHED = "unmatched"
# text fields searched (and highlighted) for ranking, with the title weighted up as the
# SQLite store does
RANK_FIELDS = (
    "title^4", "title.ru^4", "title.uk^4", "title.en^4", "title_en^4",
    "text", "text.ru", "text.uk", "text.en", "text_en",
)
SNIPPET_CHARS = 240
STATS_BUCKETS = 10_000  # distinct languages, sources, statuses counted (exact below it)
# After a failed contact the cluster is not asked again for this long: a crawl during an
# outage then goes straight to the spool instead of waiting out retries at every step.
RECHECK_SECONDS = 30.0


# ------------------------------------------------------------------- connection


@dataclass(frozen=True)
class Credentials:
    """From the environment only: ELASTIC_API_KEY, or ELASTIC_USERNAME (default
    "elastic") with ELASTIC_PASSWORD; ELASTIC_CA_CERTS for a private CA."""

    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    ca_certs: str | None = None

    @classmethod
    def from_env(cls) -> Credentials:
        env = os.environ
        return cls(
            api_key=env.get("ELASTIC_API_KEY") or None,
            username=env.get("ELASTIC_USERNAME") or None,
            password=env.get("ELASTIC_PASSWORD") or None,
            ca_certs=env.get("ELASTIC_CA_CERTS") or None,
        )

    def client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.api_key:
            options["api_key"] = self.api_key
        elif self.password:
            options["basic_auth"] = (self.username or "elastic", self.password)
        if self.ca_certs:
            options["ca_certs"] = self.ca_certs
        return options

    def http_headers(self) -> dict[str, str]:
        """The same credentials as an Authorization header (for Kibana's HTTP API)."""
        if self.api_key:
            return {"Authorization": f"ApiKey {self.api_key}"}
        if self.password:
            token = f"{self.username or 'elastic'}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(token).decode()}
        return {}


def safe_url(url: str) -> str:
    """The URL without any user:password in it, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def connect(
    url: str | None = None,
    *,
    request_timeout: float = 30.0,
    max_retries: int = 3,
    backoff_base: float = 0.5,
    backoff_cap: float = 10.0,
) -> Elasticsearch:
    """A client for `url` (default $ELASTICSEARCH_URL) with credentials from the
    environment; requests are retried on 429/5xx and connection errors with backoff."""
    url = url or os.environ.get("ELASTICSEARCH_URL")
    if not url:
        raise StoreError("no Elasticsearch URL: give --es URL or set ELASTICSEARCH_URL")
    # the client logs every retried request with a traceback; Dozor reports failures
    # itself, in one line (unless logging was configured for the client explicitly)
    transport_log = logging.getLogger("elastic_transport")
    if transport_log.level == logging.NOTSET:
        transport_log.setLevel(logging.ERROR)
    try:
        return Elasticsearch(
            url,
            request_timeout=request_timeout,
            max_retries=max_retries,
            retry_on_status=RETRY_STATUSES,
            retry_on_timeout=True,
            retry_backoff_base=backoff_base,
            retry_backoff_cap=backoff_cap,
            **Credentials.from_env().client_options(),
        )
    except ValueError as exc:
        raise StoreError(f"bad Elasticsearch URL {safe_url(url)!r}: {exc}") from None


def unreachable(exc: BaseException) -> bool:
    """Down, unreachable or overloaded: worth spooling and retrying later. A TLS error
    is a configuration problem, reported instead."""
    if isinstance(exc, SSLError):
        return False
    if isinstance(exc, ConnectionError | ConnectionTimeout):
        return True
    return isinstance(exc, ApiError) and exc.status_code in RETRY_STATUSES


def describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        info = exc.info if isinstance(exc.info, dict) else {}
        error = info.get("error")
        if isinstance(error, dict):
            root = (error.get("root_cause") or [error])[0]
            return f"{exc.status_code} {root.get('type')}: {root.get('reason')}"
        return f"{exc.status_code} {exc.message}"
    # the transport nests the socket error a few times over: name the innermost one
    errno = [found for text in (str(getattr(exc, "message", "")), str(exc))
             for found in re.findall(r"\[Errno -?\d+\] ([^)\]'\"]+)", text)]
    return f"{type(exc).__name__}: {errno[-1] if errno else exc}"


# ------------------------------------------------------------------------ store


@dataclass(frozen=True)
class BulkSettings:
    chunk_size: int = 500  # documents per _bulk request, at most
    max_chunk_bytes: int = 10 * 1024 * 1024  # and bytes per request, at most
    max_retries: int = 5  # per document rejected with 429
    initial_backoff: float = 2.0  # seconds; doubles on every retry
    max_backoff: float = 60.0


class _Unwritten(Exception):
    """Part of a batch did not reach the cluster; `articles` is that part."""

    def __init__(self, articles: list[Article], cause: BaseException | str) -> None:
        super().__init__(str(cause))
        self.articles = articles
        self.cause = cause


@dataclass(frozen=True)
class _Located:
    index: str
    stored_at: str | None
    alert_state: str | None = None


class ElasticStore:
    """Dozor's indices in one cluster; see `pipelines.store.base.Store` for the contract."""

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        client: Elasticsearch | None = None,
        spool: Spool | None = None,
        bulk: BulkSettings | None = None,
    ) -> None:
        from pipelines.config import paths

        self.names = IndexNames(prefix)
        self.url = safe_url(url or os.environ.get("ELASTICSEARCH_URL") or "")
        self.client = client or connect(url)
        self.spool = spool or Spool(paths.spool_dir() / "elasticsearch" / prefix)
        self.bulk = bulk or BulkSettings()
        self._ready = False
        self._down_at: float | None = None
        self._down_reason = ""

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ElasticStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _down(self) -> str | None:
        """Why the cluster counts as unavailable, when it failed less than
        RECHECK_SECONDS ago."""
        if self._down_at is not None and time.monotonic() - self._down_at < RECHECK_SECONDS:
            return self._down_reason
        return None

    def _went_down(self, cause: BaseException | str) -> str:
        self._down_at = time.monotonic()
        self._down_reason = cause if isinstance(cause, str) else describe(cause)
        return self._down_reason

    def _error(self, action: str, exc: BaseException) -> StoreError:
        return StoreError(f"cannot {action} on Elasticsearch at {self.url}: {describe(exc)}")

    def ensure_indices(self) -> None:
        """On the first contact with the cluster: set the indices up if `dozor setup` was
        never run (nothing is ever written to an index created without the templates),
        then store what the spool holds from an earlier outage."""
        if self._ready:
            return
        from index_config.install import SetupError, add_missing_fields, install_elasticsearch

        if not self.client.indices.exists_alias(name=self.names.articles):
            log.info("no %s alias on %s yet: setting the indices up", self.names.articles,
                     self.url)
            try:
                install_elasticsearch(self.client, self.names)
            except SetupError as exc:
                raise StoreError(f"{exc} (run `dozor setup` with an account that may "
                                 "manage templates and indices)") from exc
        else:
            # Indices set up by an older Dozor lack the fields added since (the alert
            # mark): with `dynamic: false` a value in an unmapped field is never indexed,
            # so a story could not be found again by its mark.
            try:
                changes = add_missing_fields(self.client, self.names)
            except ApiError as exc:
                if unreachable(exc):
                    raise
                raise StoreError(f"cannot add the fields this Dozor needs to the indices on "
                                 f"{self.url} ({describe(exc)}); run `dozor setup` with an "
                                 "account that may manage templates and indices") from exc
            for change in changes:
                log.warning("%s %s %s: %s", change.kind, change.name, change.action,
                            change.detail)
        self._ready = True
        replayed = WriteResult()
        try:
            self._replay(replayed)
        except _Unwritten as exc:
            log.warning("spooled articles not stored yet (%s): the next write tries again",
                        exc.cause if isinstance(exc.cause, str) else describe(exc.cause))
        finally:
            # whatever command opened the store, the articles it stored for the first
            # time reach the alerts through the next write's result, in this run or later
            self.spool.announce(replayed.new)

    def alert_matcher(self) -> Any:
        """Rules are matched by the cluster's percolator (pipelines.alert.matcher seam)."""
        from pipelines.alert.percolator import PercolatorMatcher

        return PercolatorMatcher(self)

    # ----------------------------------------------------------------- writing

    def write(self, articles: list[Article]) -> WriteResult:
        batch = list({a.id: a for a in articles}.values())
        _check_statuses(batch)
        result = WriteResult()
        down = self._down()
        if down:
            self._defer(batch, down, result)
            return result
        try:
            # spooled batches first: an older version must never overwrite a newer one
            self.ensure_indices()
            self._replay(result)
        except _Unwritten as exc:
            self._defer(batch, exc.cause, result)
            return result
        except (ApiError, TransportError) as exc:
            self._defer(batch, exc, result)
            return result
        if batch:
            try:
                leftover = self._index(batch, result)
            except _Unwritten as exc:
                leftover = []
                self._defer(exc.articles, exc.cause, result)
            self._defer(leftover, "rejected as overloaded after every retry", result)
        result.new = list(dict.fromkeys(self.spool.take_announced() + result.new))
        return result

    def _defer(self, articles: list[Article], cause: BaseException | str,
               result: WriteResult) -> None:
        if not articles:
            return
        path = self.spool.put(articles, reason=str(cause))
        result.spooled += len(articles)
        if isinstance(cause, str) or unreachable(cause):
            why = self._went_down(cause)
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
                raise _Unwritten([], "spooled articles still rejected as overloaded")
            if batch.seen:
                self._write_seen(batch.seen)
            self.spool.remove(batch)
            log.info("stored %d spooled article(s) from %s", len(batch.articles), batch.path)

    def _index(self, batch: list[Article], result: WriteResult) -> list[Article]:
        """Bulk-write `batch`; returns what the cluster still rejected as overloaded.
        Raises _Unwritten with what was not acknowledged when a request fails."""
        pending = {a.id: a for a in batch}
        try:
            self.ensure_indices()
            located = self._locate(list(pending))
        except (ApiError, TransportError) as exc:
            raise _Unwritten(list(pending.values()), exc) from exc
        now = utcnow()
        actions = []
        for article in batch:
            where = located.get(article.id)
            article.stored_at = _parse_date(where.stored_at) if where else None
            article.stored_at = article.stored_at or now
            doc = article.to_dict()
            if where:
                # in place, in the index that holds it (maybe not the write index), with
                # the alert mark it has (the whole document is replaced)
                doc[ALERT_STATE] = where.alert_state
                actions.append({"_op_type": "index", "_index": where.index,
                                "_id": article.id, "_source": doc})
            else:
                # the mark travels in the document that stores it: no story is stored
                # without it, whenever the process dies
                doc[ALERT_STATE] = UNMATCHED
                actions.append({"_op_type": "create", "_index": self.names.articles,
                                "_id": article.id, "_source": doc})
        raced: list[Article] = []
        refused: list[tuple[Article, str]] = []
        try:
            for ok, item in self._bulk(actions):
                op, info = next(iter(item.items()))
                doc_id = info.get("_id")
                if ok:
                    pending.pop(doc_id)
                    (result.updated if doc_id in located else result.new).append(doc_id)
                elif op == "create" and info.get("status") == 409:
                    raced.append(pending.pop(doc_id))  # stored meanwhile by another writer
                elif info.get("status") not in RETRY_STATUSES:
                    refused.append((pending.pop(doc_id), _item_error(info)))
        except (ApiError, TransportError) as exc:
            self.spool.reject(refused)
            raise _Unwritten(list(pending.values()) + raced, exc) from exc
        self.spool.reject(refused)
        leftover = list(pending.values())
        if raced:
            leftover += self._index(raced, result)
        return leftover

    def _bulk(self, actions: Iterable[dict[str, Any]]) -> Iterator[tuple[bool, dict[str, Any]]]:
        return streaming_bulk(
            self.client,
            actions,
            chunk_size=self.bulk.chunk_size,
            max_chunk_bytes=self.bulk.max_chunk_bytes,
            max_retries=self.bulk.max_retries,
            initial_backoff=self.bulk.initial_backoff,
            max_backoff=self.bulk.max_backoff,
            raise_on_error=False,
            # the next lookup (dedup, locate, percolate) must see this write
            refresh="wait_for",
        )

    def _locate(self, ids: Sequence[str]) -> dict[str, _Located]:
        """Where each stored id lives (its concrete index) and when it was first stored."""
        found: dict[str, _Located] = {}
        for chunk in _chunks(ids):
            response = self.client.search(
                index=self.names.articles, query={"ids": {"values": list(chunk)}},
                source=["stored_at", ALERT_STATE], size=len(chunk),
            )
            for hit in response["hits"]["hits"]:
                source = hit["_source"] or {}
                found[hit["_id"]] = _Located(hit["_index"], source.get("stored_at"),
                                             source.get(ALERT_STATE))
        return found

    # ----------------------------------------------------------------- reading

    def get(self, article_id: str) -> Article | None:
        return next(iter(self.iter_articles([article_id])), None)

    def iter_articles(self, ids: Iterable[str] | None = None) -> Iterator[Article]:
        """In the order of `ids`, or in the order stored (stored_at, then id), page by
        page with search_after."""
        try:
            self.ensure_indices()
            if ids is not None:
                for chunk in _chunks(list(dict.fromkeys(ids))):
                    response = self.client.search(
                        index=self.names.articles, query={"ids": {"values": list(chunk)}},
                        size=len(chunk),
                    )
                    found = {h["_id"]: h["_source"] for h in response["hits"]["hits"]}
                    yield from (Article.from_dict(found[i]) for i in chunk if i in found)
                return
            for hit in self._search_all(self.names.articles, {"match_all": {}},
                                        [{"stored_at": "asc"}, {"id": "asc"}]):
                yield Article.from_dict(hit["_source"])
        except (ApiError, TransportError) as exc:
            raise self._error("read articles", exc) from exc

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

    def count(self) -> int:
        try:
            self.ensure_indices()
            return self.client.count(index=self.names.articles)["count"]
        except (ApiError, TransportError) as exc:
            raise self._error("count articles", exc) from exc

    def stats(self) -> StoreStats:
        """Counts for an overview, from one aggregation request."""
        groups = {"by_lang": "lang", "by_source": "source",
                  "by_translation": "translation_status"}
        aggs: dict[str, Any] = {
            name: {"terms": {"field": field, "size": STATS_BUCKETS}}
            for name, field in groups.items()
        }
        aggs["relevant"] = {"filter": {"term": {"relevant": True}}}
        try:
            self.ensure_indices()
            response = self.client.search(index=self.names.articles, size=0, aggs=aggs,
                                          track_total_hits=True)
        except (ApiError, TransportError) as exc:
            raise self._error("count articles", exc) from exc
        found = response["aggregations"]
        return StoreStats(
            total=response["hits"]["total"]["value"],
            relevant=found["relevant"]["doc_count"],
            **{name: {b["key"]: b["doc_count"] for b in found[name]["buckets"]}
               for name in groups},
        )

    def cluster_members(self, cluster_id: str, limit: int = 50) -> list[Article]:
        try:
            self.ensure_indices()
            response = self.client.search(
                index=self.names.articles, query={"term": {"cluster_id": cluster_id}},
                sort=[{"published_at": {"order": "asc", "missing": "_last"}},
                      {"fetched_at": "asc"}, {"id": "asc"}],
                size=limit,
            )
        except (ApiError, TransportError) as exc:
            raise self._error("read a near-duplicate cluster", exc) from exc
        return [Article.from_dict(h["_source"]) for h in response["hits"]["hits"]]

    def search(self, query: str, lang: str | None = None, limit: int = 20,
               offset: int = 0) -> list[SearchHit]:
        """The query's own semantics (`Query.to_es()` on the normalised terms) decide what
        matches; BM25 over the title and text fields ranks; highlighting gives the
        snippet, with the lemma-aware snippet of pipelines.terms as the fallback."""
        from pipelines.query import parse_query
        from pipelines.terms.snippets import article_snippet

        if offset < 0:
            raise ValueError(f"search offset must be 0 or more, not {offset}")
        parsed = parse_query(query, name="search")
        words = " ".join(_positive_words(query))
        bool_query: dict[str, Any] = {"must": [parsed.to_es()]}
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
                "highlight_query": {"multi_match": {"query": words,
                                                    "fields": list(RANK_FIELDS)}},
                "fields": {name.split("^")[0]: {} for name in RANK_FIELDS
                           if name.startswith("text")},
            }
        try:
            self.ensure_indices()
            response = self.client.search(index=self.names.articles, body=body)
        except (ApiError, TransportError) as exc:
            raise self._error(f"search {query!r}", exc) from exc
        hits = []
        for hit in response["hits"]["hits"]:
            article = Article.from_dict(hit["_source"])
            terms = parsed.matched_terms(article)
            text = _pick_highlight(hit.get("highlight", {}), article.lang)
            if not text:
                text = article_snippet(article, terms)
            hits.append(SearchHit(article=article, rank=float(hit.get("_score") or 0.0),
                                  snippet=" ".join(text.split()), matched_terms=terms))
        return hits

    # ---------------------------------------------------------------- frontier

    def seen(self, canonical_urls: Iterable[str]) -> set[str]:
        by_id = {article_id(url): url for url in dict.fromkeys(canonical_urls)}
        spooled = set(by_id.values()) & self.spool.urls()
        if self._down():
            return spooled
        found: set[str] = set()
        try:
            self.ensure_indices()
            for chunk in _chunks(list(by_id)):
                response = self.client.search(
                    index=self.names.articles, query={"ids": {"values": list(chunk)}},
                    source=False, size=len(chunk),
                )
                found.update(h["_id"] for h in response["hits"]["hits"])
                docs = self.client.mget(index=self.names.seen, ids=list(chunk),
                                        source=False)["docs"]
                found.update(d["_id"] for d in docs if d.get("found"))
        except (ApiError, TransportError) as exc:
            if not unreachable(exc):
                raise self._error("look up seen URLs", exc) from exc
            # fetching again is safe: the write is by id and lands in the spool
            log.warning("Elasticsearch at %s unavailable (%s): only spooled URLs count as "
                        "seen", self.url, self._went_down(exc))
        return {by_id[i] for i in found} | spooled

    def mark_seen(self, canonical_urls: Iterable[str]) -> None:
        urls = list(dict.fromkeys(canonical_urls))
        if not urls:
            return
        down = self._down()
        if down:
            self.spool.put(seen=urls, reason=down)
            return
        try:
            self.ensure_indices()
            self._write_seen(urls)
        except (ApiError, TransportError) as exc:
            path = self.spool.put(seen=urls, reason=describe(exc))
            if not unreachable(exc):
                raise StoreError(f"cannot mark URLs seen on {self.url} ({describe(exc)}); "
                                 f"kept in {path}") from exc
            log.warning("Elasticsearch at %s unavailable (%s): %d seen URL(s) kept in %s",
                        self.url, self._went_down(exc), len(urls), path)

    def _write_seen(self, urls: list[str]) -> None:
        now = utcnow().isoformat()
        actions = ({"_op_type": "create", "_index": self.names.seen, "_id": article_id(url),
                    "_source": {"url": url, "seen_at": now}} for url in urls)
        errors = [info for ok, item in self._bulk(actions) if not ok
                  for info in item.values() if info.get("status") != 409]
        if errors:
            raise StoreError(f"cannot mark URLs seen: {_item_error(errors[0])}")

    # ------------------------------------------------------------------- dedup

    def dup_candidates(self, content_hashes: Iterable[str],
                       lsh_bands: Iterable[str]) -> list[DupCandidate]:
        hashes = [h for h in dict.fromkeys(content_hashes) if h]
        bands = [b for b in dict.fromkeys(lsh_bands) if b]
        should = []
        if hashes:
            should.append({"terms": {"content_hash": hashes}})
        if bands:
            should.append({"terms": {"lsh_bands": bands}})
        if not should or self._down():
            return []
        query = {"bool": {"should": should, "minimum_should_match": 1}}
        try:
            self.ensure_indices()
            return [
                DupCandidate(id=h["_id"], cluster_id=h["_source"].get("cluster_id") or "",
                             content_hash=h["_source"].get("content_hash") or "",
                             minhash=h["_source"].get("minhash") or [])
                for h in self._search_all(self.names.articles, query, [{"id": "asc"}],
                                          source=["cluster_id", "content_hash", "minhash"])
            ]
        except (ApiError, TransportError) as exc:
            if not unreachable(exc):
                raise self._error("look up near-duplicates", exc) from exc
            log.warning("Elasticsearch at %s unavailable (%s): near-duplicates of this batch "
                        "are only grouped among themselves", self.url, self._went_down(exc))
            return []

    # ------------------------------------------------------------- translation

    def pending_translation(self, limit: int = 100, after_id: str = "") -> list[Article]:
        extra = {"search_after": [after_id]} if after_id else {}
        try:
            self.ensure_indices()
            response = self.client.search(
                index=self.names.articles,
                query={"bool": {"filter": [{"term": {"translation_status": "pending"}}]}},
                sort=[{"id": "asc"}], size=limit, **extra,
            )
        except (ApiError, TransportError) as exc:
            raise self._error("list pending translations", exc) from exc
        return [Article.from_dict(h["_source"]) for h in response["hits"]["hits"]]

    def mark_translation(self, articles: list[Article]) -> None:
        _check_statuses(articles)
        if not articles:
            return
        try:
            self.ensure_indices()
            located = self._locate([a.id for a in articles])
            actions = [
                {"_op_type": "update", "_index": located[a.id].index, "_id": a.id,
                 "doc": {name: getattr(a, name) for name in TRANSLATION_FIELDS}}
                for a in articles if a.id in located
            ]
            errors = [info for ok, item in self._bulk(actions) if not ok
                      for info in item.values()]
        except (ApiError, TransportError) as exc:
            raise self._error("record translations", exc) from exc
        if errors:
            raise StoreError(f"cannot record translations on {self.url}: "
                             f"{_item_error(errors[0])} ({len(errors)} article(s))")

    # ------------------------------------------------------------ alert matching

    def unmatched_ids(self) -> list[str]:
        """Articles awaiting the alert rules, in the order stored. None when this process
        already found the cluster unavailable: they keep their mark for the next run."""
        down = self._down()
        if down:
            log.warning("Elasticsearch at %s unavailable (%s): new stories are matched "
                        "against the alert rules by the next run", self.url, down)
            return []
        try:
            self.ensure_indices()
            return [h["_id"] for h in self._search_all(
                self.names.articles, {"term": {ALERT_STATE: UNMATCHED}},
                [{"stored_at": "asc"}, {"id": "asc"}], source=False)]
        except (ApiError, TransportError) as exc:
            raise self._error("list the articles awaiting the alert rules", exc) from exc

    def mark_matched(self, article_ids: Iterable[str]) -> None:
        ids = list(dict.fromkeys(article_ids))
        if not ids:
            return
        try:
            self.ensure_indices()
            located = self._locate(ids)
            actions = [{"_op_type": "update", "_index": located[i].index, "_id": i,
                        "doc": {ALERT_STATE: None}} for i in ids if i in located]
            errors = [info for ok, item in self._bulk(actions) if not ok
                      for info in item.values()]
        except (ApiError, TransportError) as exc:
            raise self._error("record articles as matched against the alert rules",
                              exc) from exc
        if errors:
            raise StoreError(f"cannot record articles as matched on {self.url}: "
                             f"{_item_error(errors[0])} ({len(errors)} article(s))")

    # ------------------------------------------------------------ delivery log

    def _delivery_id(self, rule: str, article: str) -> str:
        return f"{rule}:{article}"

    def add_deliveries(self, rule: str, article_ids: Iterable[str],
                       folded_into: Mapping[str, str] | None = None) -> list[str]:
        ids = list(dict.fromkeys(article_ids))
        folded = folded_into or {}
        now = utcnow().isoformat()

        def source(article: str) -> dict[str, Any]:
            doc = {"rule": rule, "article_id": article, "status": "pending", "attempts": 0,
                   "last_error": None, "message_id": None, "created_at": now,
                   "sent_at": None}
            if article in folded:
                doc.update(status="folded", folded_into=folded[article])
            return doc

        actions = (
            {"_op_type": "create", "_index": self.names.deliveries,
             "_id": self._delivery_id(rule, i), "_source": source(i)}
            for i in ids
        )
        added: set[str] = set()
        errors = []
        try:
            self.ensure_indices()
            for ok, item in self._bulk(actions):
                info = next(iter(item.values()))
                if ok:
                    added.add(info["_id"])
                elif info.get("status") != 409:  # 409: already recorded, never twice
                    errors.append(info)
        except (ApiError, TransportError) as exc:
            raise self._error(f"record deliveries for rule {rule!r}", exc) from exc
        if errors:
            raise StoreError(f"cannot record deliveries for rule {rule!r}: "
                             f"{_item_error(errors[0])}")
        return [i for i in ids if self._delivery_id(rule, i) in added]

    def cluster_deliveries(self, rule: str, cluster_ids: Iterable[str]) -> dict[str, str]:
        """The delivery log holds no cluster ids: the clusters' articles are looked up, then
        their deliveries to `rule` by id."""
        clusters = [c for c in dict.fromkeys(cluster_ids) if c]
        members: dict[str, str] = {}  # article id -> cluster id
        earliest: dict[str, tuple[str, str]] = {}  # cluster id -> (created_at, article id)
        try:
            self.ensure_indices()
            for chunk in _chunks(clusters):
                for hit in self._search_all(self.names.articles,
                                            {"terms": {"cluster_id": list(chunk)}},
                                            [{"id": "asc"}], source=["cluster_id"]):
                    members[hit["_id"]] = hit["_source"]["cluster_id"]
            for chunk in _chunks(list(members)):
                ids = [self._delivery_id(rule, i) for i in chunk]
                for doc in self.client.mget(index=self.names.deliveries, ids=ids)["docs"]:
                    found = doc.get("_source") if doc.get("found") else None
                    if found is None or found["status"] == "folded":
                        continue
                    cluster = members[found["article_id"]]
                    key = (found["created_at"], found["article_id"])
                    if cluster not in earliest or key < earliest[cluster]:
                        earliest[cluster] = key
        except (ApiError, TransportError) as exc:
            raise self._error(f"look up the stories of rule {rule!r}", exc) from exc
        return {cluster: key[1] for cluster, key in earliest.items()}

    def folded_deliveries(self, rule: str, article_ids: Iterable[str]) -> list[Delivery]:
        ids = list(dict.fromkeys(article_ids))
        found: list[dict[str, Any]] = []
        try:
            self.ensure_indices()
            for chunk in _chunks(ids):
                query = {"bool": {"filter": [{"term": {"rule": rule}},
                                             {"terms": {"folded_into": list(chunk)}}]}}
                found += [h["_source"] for h in self._search_all(
                    self.names.deliveries, query, [{"created_at": "asc"}, {"article_id": "asc"}])]
        except (ApiError, TransportError) as exc:
            raise self._error(f"list the folded deliveries of rule {rule!r}", exc) from exc
        found.sort(key=lambda doc: (doc["created_at"], doc["article_id"]))
        return [_delivery(doc) for doc in found]

    def pending_deliveries(self, rule: str | None = None) -> list[Delivery]:
        """Open deliveries, oldest first. When this process already found the cluster
        unavailable (a run whose batches were spooled), none, with a warning: they stay
        in the log and go out with the next run. A first contact that fails raises."""
        down = self._down()
        if down:
            log.warning("Elasticsearch at %s unavailable (%s): pending alerts wait for the "
                        "next run", self.url, down)
            return []
        filters: list[dict[str, Any]] = [{"terms": {"status": list(OPEN_DELIVERY)}}]
        if rule is not None:
            filters.append({"term": {"rule": rule}})
        sort = [{"created_at": "asc"}, {"rule": "asc"}, {"article_id": "asc"}]
        try:
            self.ensure_indices()
            hits = list(self._search_all(self.names.deliveries,
                                         {"bool": {"filter": filters}}, sort))
        except (ApiError, TransportError) as exc:
            raise self._error("list pending deliveries", exc) from exc
        return [_delivery(h["_source"]) for h in hits]

    def mark_sending(self, rule: str, article_ids: Iterable[str], message_id: str) -> None:
        self._update_deliveries(rule, article_ids, "record a digest being sent",
                                lambda d: {"status": "sending", "message_id": message_id})

    def mark_delivered(self, rule: str, article_ids: Iterable[str]) -> None:
        now = utcnow().isoformat()
        self._update_deliveries(rule, article_ids, "record deliveries as sent",
                                lambda d: {"status": "sent", "sent_at": now,
                                           "last_error": None})

    def mark_delivery_failed(self, rule: str, article_ids: Iterable[str], error: str) -> None:
        self._update_deliveries(
            rule, article_ids, "record a failed delivery",
            lambda d: {"status": "pending", "attempts": int(d.get("attempts") or 0) + 1,
                       "last_error": error},
        )

    def _update_deliveries(self, rule: str, article_ids: Iterable[str], action: str,
                           change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Read-modify-write with optimistic concurrency (if_seq_no): a delivery that was
        sent stays sent, which is the at-most-once guarantee, and a folded one is never
        sent on its own."""
        ids = [self._delivery_id(rule, i) for i in dict.fromkeys(article_ids)]
        try:
            self.ensure_indices()
            for _attempt in range(3):
                if not ids:
                    return
                docs = self.client.mget(index=self.names.deliveries, ids=ids)["docs"]
                actions = [
                    {"_op_type": "update", "_index": self.names.deliveries, "_id": d["_id"],
                     "if_seq_no": d["_seq_no"], "if_primary_term": d["_primary_term"],
                     "doc": change(d["_source"])}
                    for d in docs
                    if d.get("found") and d["_source"].get("status") in OPEN_DELIVERY
                ]
                conflicts, errors = [], []
                for ok, item in self._bulk(actions):
                    info = next(iter(item.values()))
                    if not ok:
                        (conflicts if info.get("status") == 409 else errors).append(info)
                if errors:
                    raise StoreError(f"cannot {action} for rule {rule!r}: "
                                     f"{_item_error(errors[0])}")
                ids = [c["_id"] for c in conflicts]
        except (ApiError, TransportError) as exc:
            raise self._error(f"{action} for rule {rule!r}", exc) from exc
        if ids:
            raise StoreError(f"cannot {action} for rule {rule!r}: the deliveries kept "
                             "changing under a concurrent writer")


# ---------------------------------------------------------------------- helpers


def _chunks(items: Sequence[str], size: int = PAGE) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _check_statuses(articles: list[Article]) -> None:
    for article in articles:
        if article.translation_status not in TRANSLATION_STATUSES:
            raise StoreError(
                f"article {article.canonical_url}: translation_status "
                f"{article.translation_status!r} is not one of {TRANSLATION_STATUSES}"
            )


def _parse_date(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _item_error(info: dict[str, Any]) -> str:
    error = info.get("error") or {}
    if isinstance(error, dict):
        return f"{info.get('status')} {error.get('type')}: {error.get('reason')}"
    return f"{info.get('status')} {error}"


def _delivery(doc: dict[str, Any]) -> Delivery:
    return Delivery(
        rule=doc["rule"], article_id=doc["article_id"], status=doc["status"],
        attempts=int(doc.get("attempts") or 0), last_error=doc.get("last_error"),
        created_at=_parse_date(doc.get("created_at")), sent_at=_parse_date(doc.get("sent_at")),
        message_id=doc.get("message_id"), folded_into=doc.get("folded_into"),
    )


def _pick_highlight(highlight: dict[str, list[str]], lang: str) -> str:
    """The highlighted fragment of the article's own language first, then any."""
    preferred = [f"text.{lang}", "text", "text.ru", "text.uk", "text.en", "text_en"]
    for name in preferred:
        if highlight.get(name):
            return highlight[name][0]
    return ""


def _positive_words(query: str) -> list[str]:
    """Words of the query outside field filters and NOT, to rank and highlight by."""
    from luqum import tree
    from luqum.exceptions import ParseError
    from luqum.thread import parse

    from pipelines.terms.normalisation import QUERY_TOKEN_RE

    try:
        root = parse(query)
    except ParseError:
        # &&, || or ! forms luqum does not read: the words themselves still rank
        return [w for w in QUERY_TOKEN_RE.findall(query) if w not in ("AND", "OR", "NOT")]
    words: list[str] = []

    def walk(node: tree.Item, negated: bool) -> None:
        if isinstance(node, tree.SearchField) and node.name != "terms":
            return
        if isinstance(node, tree.Not | tree.Prohibit):
            negated = not negated
        if isinstance(node, tree.Word | tree.Phrase) and not negated:
            words.extend(QUERY_TOKEN_RE.findall(node.value.strip('"')))
            return
        for child in node.children:
            walk(child, negated)

    walk(root, False)
    return [w.replace("*", "").replace("?", "") for w in words if w.strip("*?")]

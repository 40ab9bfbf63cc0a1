"""The shared crawl frontier in Redis (`dozor worker`): scrapy-redis's scheduler, queue
and dupefilter, with what a frontier shared by processes that may be SIGKILLed needs.

scrapy-redis pops a request destructively, so a worker killed mid-crawl would lose what
it had taken. `ReliableQueue` moves a popped request into a lease set instead (score:
its deadline); the request's callback and errback acknowledge it, a live worker extends
its leases, and a lease past its deadline goes back into the queue on the next pop, by
any worker, marked as redelivered. A redelivered article the store already has is not
fetched again.

`GlobalPoliteness` holds the per-host concurrency and delay (and the Telegram slot's)
for every worker at once: the slots are counted in Redis, not per process, and taken by
`PoliteDownloadHandler` as the download starts.

A due source stays marked from the leader's enqueue until the health of its poll is
recorded: `queue_due` puts it on dozor:due with a marker set dozor:polling:<source> (a
placeholder member while it waits), the worker that takes it puts in the URLs of its
poll's documents (`start_poll`), and whichever worker records a document's health takes
its URL out (`finish_polls`): the set goes with its last member. The leader enqueues no
source whose marker is there; the marker expires after POLL_TTL, so a poll whose worker
died (and whose documents' leases lapse to another) or that ended with no outcome (a
request dropped before the download) holds the source back no longer than that.

Keys (spider name `frontier`): dozor:frontier:requests (queue), :leases, :scores,
:redelivered, :dupefilter; dozor:due (sources `dozor schedule --redis` found due) and
dozor:due:pending (the same names, each queued once while it waits);
dozor:polling:<source> (a due source's poll until its health is recorded);
dozor:revisits (the revisits it put on the queue, `<article id>:<step>` each, until the
store no longer has them due); dozor:polite:<slot>:*; dozor:workers:<id> (each worker's
figures).
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import redis
from scrapy import Request, Spider, signals
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy_redis.connection import get_redis_from_settings
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from twisted.internet.task import deferLater

from crawler.health import _document

log = logging.getLogger(__name__)

QUEUE_KEY = "dozor:%(spider)s:requests"
DUPEFILTER_KEY = "dozor:%(spider)s:dupefilter"
DUE_KEY = "dozor:due"  # source names, pushed by the leader scheduler
DUE_SET = "dozor:due:pending"  # the same names, so a source is queued once at a time
POLLING_KEY = "dozor:polling:"  # + source name: its poll's documents, not recorded yet
POLL_TTL = 600.0  # seconds a poll holds its source back at most (its worker dead)
WAITING = "-"  # the marker's member while the source waits on dozor:due
REVISITS_SET = "dozor:revisits"  # the revisits on the queue, so each is queued once
WORKERS_KEY = "dozor:workers"  # set of worker ids; each has a hash dozor:workers:<id>
TOKEN_LEASE = 10.0  # seconds a politeness slot's token lives unless renewed
LEASE_META = "dozor_lease"
REDELIVERED_META = "dozor_redelivered"
KEPT_META = "dozor_lease_kept"  # the callback handed the lease on (to AckOnStore)

# expired leases back into the queue (redelivered), then the best request into a lease
_POP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
for _, m in ipairs(expired) do
  redis.call('ZREM', KEYS[2], m)
  redis.call('ZADD', KEYS[1], redis.call('HGET', KEYS[3], m) or 0, m)
  redis.call('HSET', KEYS[4], m, 1)
end
local top = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #top == 0 then return false end
redis.call('ZREM', KEYS[1], top[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), top[1])
redis.call('HSET', KEYS[3], top[1], top[2])
return {top[1], redis.call('HDEL', KEYS[4], top[1])}
"""
_EXTEND = """
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[i]) end
return #ARGV - 1
"""
# a due source onto dozor:due, marked, unless its last poll is not recorded yet or it waits
_QUEUE_DUE = """
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return 0
end
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1
"""
# a slot's concurrency (live tokens) and delay (next start), on Redis's clock
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 20 end
local nxt = tonumber(redis.call('GET', KEYS[2]) or '0')
if nxt > now then return nxt - now end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[2], now + tonumber(ARGV[3]), 'PX', ARGV[3])
end
return 0
"""
# this worker's slot tokens still downloading: their deadlines (and their set's) on
_EXTEND_TOKENS = """
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return #ARGV - 1
"""


class ReliableQueue(PriorityQueue):
    """scrapy-redis's priority queue whose pop leases instead of removing."""

    def __init__(self, server: redis.Redis, spider: Spider, key: str,
                 serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        self.leases_key = f"{self.key}:leases"
        self.scores_key = f"{self.key}:scores"
        self.redelivered_key = f"{self.key}:redelivered"
        self.visibility_ms = int(1000 * spider.settings.getfloat("DOZOR_VISIBILITY_TIMEOUT"))
        self._pop = server.register_script(_POP)
        self._extend = server.register_script(_EXTEND)
        self.held: set[bytes] = set()  # this worker's leases
        # the leased feed, sitemap, listing and channel requests: (source, health URL)
        self.documents: dict[bytes, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        # requests another worker holds are pending too: the crawl is not over (this
        # worker's own are in flight or in its batch, which Scrapy's idle check covers)
        leased = int(self.server.zcard(self.leases_key))
        return int(self.server.zcard(self.key)) + max(0, leased - len(self.held))

    def depth(self) -> tuple[int, int]:
        """(queued, leased) over every worker."""
        return int(self.server.zcard(self.key)), int(self.server.zcard(self.leases_key))

    def pop(self, timeout: int = 0) -> Request | None:
        found = self._pop(keys=[self.key, self.leases_key, self.scores_key,
                                self.redelivered_key], args=[self.visibility_ms])
        if not found:
            return None
        data, again = found
        request = self._decode_request(data)
        poll = poll_key(request)
        with self._lock:
            self.held.add(data)
            if poll is not None:
                self.documents[data] = poll
        request.meta[LEASE_META] = data
        request.meta[REDELIVERED_META] = bool(again)
        request.callback = _acking(self, data, request.callback)
        request.errback = _acking(self, data, request.errback)
        return request

    def ack(self, data: bytes) -> None:
        with self._lock:
            self.held.discard(data)
            self.documents.pop(data, None)
        pipe = self.server.pipeline()
        pipe.zrem(self.leases_key, data).hdel(self.scores_key, data)
        pipe.execute()

    def release(self, data: bytes) -> None:
        """Stop extending a lease: its request goes back to the queue once it lapses."""
        with self._lock:
            self.held.discard(data)
            self.documents.pop(data, None)

    def polls(self) -> set[tuple[str, str]]:
        """(source, health URL) of the documents this worker has taken and not done with:
        their outcomes are not complete yet (the callback acknowledges after it ran)."""
        with self._lock:
            return set(self.documents.values())

    def extend(self) -> None:
        """Push this worker's lease deadlines on: it is alive and still fetching them."""
        with self._lock:
            held = list(self.held)
        if held:
            self._extend(keys=[self.leases_key], args=[self.visibility_ms, *held])


def poll_key(request: Request) -> tuple[str, str] | None:
    """(source, health URL) of a source's feed, sitemap, listing or channel request; the
    key of its health outcome (`crawler.health.HealthLog`)."""
    meta = _document(request)
    return None if meta is None else (meta["source"], meta.get("health_url", request.url))


def queue_due(server: redis.Redis, name: str) -> bool:
    """`name` onto dozor:due, marked as polling (False: its poll is not recorded yet, or
    it waits there already)."""
    script = server.register_script(_QUEUE_DUE)
    return bool(script(keys=[DUE_KEY, DUE_SET, POLLING_KEY + name],
                       args=[name, int(POLL_TTL * 1000), WAITING]))


def polling(server: redis.Redis, names: Iterable[str]) -> set[str]:
    """The sources among `names` whose poll is queued or not recorded yet."""
    names = list(names)
    pipe = server.pipeline(transaction=False)
    for name in names:
        pipe.exists(POLLING_KEY + name)
    return {n for n, there in zip(names, pipe.execute(), strict=True) if there}


def start_poll(server: redis.Redis, name: str, urls: Iterable[str]) -> None:
    """The source taken off dozor:due: its marker holds its documents' URLs now."""
    pipe = server.pipeline(transaction=True)
    pipe.delete(POLLING_KEY + name)
    if urls := list(urls):
        pipe.sadd(POLLING_KEY + name, *urls).pexpire(POLLING_KEY + name, int(POLL_TTL * 1000))
    pipe.execute()


def finish_polls(server: redis.Redis, polled: Iterable[tuple[str, str]]) -> None:
    """(source, URL) of the health records just written out of the sources' markers."""
    pipe = server.pipeline(transaction=False)
    for source, url in polled:
        pipe.srem(POLLING_KEY + source, url)
    pipe.execute()


def _acking(queue: ReliableQueue, data: bytes, callback: Callable[..., Any] | None
            ) -> Callable[..., Any] | None:
    """`callback` that acknowledges the lease once it has run (a generator: once drained,
    so what it yields is in the frontier before the lease goes)."""
    if callback is None:
        return None

    @functools.wraps(callback)
    def run(response: Any, *args: Any, **kwargs: Any) -> Any:
        result = callback(response, *args, **kwargs)
        if inspect.isgenerator(result) or isinstance(result, Iterator):
            return _then_ack(queue, data, result, response)
        _ack_unless_kept(queue, data, response)
        return result

    run.dozor_unwrapped = callback  # type: ignore[attr-defined]
    return run


def _then_ack(queue: ReliableQueue, data: bytes, results: Iterator[Any], response: Any
              ) -> Iterator[Any]:
    yield from results
    _ack_unless_kept(queue, data, response)


def _ack_unless_kept(queue: ReliableQueue, data: bytes, outcome: Any) -> None:
    request = getattr(outcome, "request", None)  # a Response's, or a Failure's
    if not (isinstance(request, Request) and request.meta.get(KEPT_META)):
        queue.ack(data)


class AckOnStore:
    """The spider's page processor, acknowledging each page's lease once its batch went
    through the stages into the store: a worker killed with pages still in its batch
    leaves them leased, and they are fetched again by another."""

    def __init__(self, inner: Any, queue: Callable[[], ReliableQueue]) -> None:
        self.inner = inner
        self.queue = queue
        self.leases: dict[str, bytes] = {}  # page URL -> its request's lease
        if hasattr(inner, "store_batch"):
            self.store_batch = self._acking(inner.store_batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def keep(self, url: str, lease: bytes) -> None:
        self.leases[url] = lease

    def process(self, pages: list[Any], *args: Any) -> Any:
        return self._acking(self.inner.process)(pages, *args)

    def _acking(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def run(pages: list[Any], *args: Any) -> Any:
            queue = self.queue()
            try:
                result = call(pages, *args)
            except Exception:
                # not stored (the store out of reach mid-batch): the pages are fetched
                # again, by any worker, once their leases lapse
                for page in pages:
                    lease = self.leases.pop(page.url, None)
                    if lease is not None:
                        queue.release(lease)
                raise
            for page in pages:
                lease = self.leases.pop(page.url, None)
                try:
                    if lease is not None:
                        queue.ack(lease)
                except redis.RedisError as exc:
                    # stored: the lease lapses and the redelivery finds it stored
                    log.error("Redis unreachable (%s): lease of %s left to lapse", exc, page.url)
            return result
        return run


def push_marked(server: redis.Redis, spider: Spider, requests: Iterable[Request],
                marks_key: str, marks: Iterable[str]) -> None:
    """`requests` into `spider`'s frontier queue from outside a crawl (the leader), as
    scrapy-redis's scheduler encodes them, with `marks` added to the set `marks_key` in
    the same transaction: a leader killed midway leaves both or neither."""
    queue = ReliableQueue(server, spider, QUEUE_KEY)
    pipe = server.pipeline(transaction=True)
    for request in requests:
        pipe.zadd(queue.key, {queue._encode_request(request): -request.priority})
    if marks := list(marks):
        pipe.sadd(marks_key, *marks)
    pipe.execute()


def _unwrap(callback: Any) -> Any:
    return getattr(callback, "dozor_unwrapped", callback)


class FrontierScheduler(Scheduler):
    """scrapy-redis's scheduler over `ReliableQueue`. Redis out of reach is one log line
    per attempt and a retry with backoff; requests scheduled meanwhile wait in memory."""

    def open(self, spider: Spider) -> None:
        super().open(spider)
        self.queue: ReliableQueue
        self.unsent: list[Request] = []
        self.retry_at = 0.0
        self.backoff = 1.0
        # a thread, not the reactor: stages running in the reactor's thread (a batch
        # stored without a stage pool) must not let this worker's leases lapse
        self.stopping = threading.Event()
        self.heartbeat = threading.Thread(target=self._beat, name="frontier-heartbeat",
                                          daemon=True)
        self.heartbeat.start()

    def _beat(self) -> None:
        while not self.stopping.wait(self.queue.visibility_ms / 3000):
            try:
                self.queue.extend()
            except redis.RedisError as exc:
                log.error("Redis unreachable (%s): leases not extended", exc)

    def close(self, reason: str) -> None:
        self.stopping.set()
        super().close(reason)

    def _guarded(self, call: Callable[[], Any]) -> Any:
        """`call()`, or None while Redis is out of reach (said once per retry)."""
        if time.monotonic() < self.retry_at:
            return None
        try:
            result = call()
        except redis.RedisError as exc:
            log.error("Redis unreachable (%s): retrying in %.0f s", exc, self.backoff)
            self.retry_at = time.monotonic() + self.backoff
            self.backoff = min(self.backoff * 2, 60.0)
            return None
        if self.backoff > 1.0:
            log.info("Redis reachable again")
        self.backoff = 1.0
        return result

    def enqueue_request(self, request: Request) -> bool:
        # a redirect or retry of a leased request: the follow-up replaces the lease
        lease = request.meta.pop(LEASE_META, None)
        request.meta.pop(REDELIVERED_META, None)
        request.callback = _unwrap(request.callback)
        request.errback = _unwrap(request.errback)
        self.unsent.append(request)
        self._guarded(self._flush)
        if lease is not None:
            self._guarded(lambda: self.queue.ack(lease))
        return True

    def _flush(self) -> None:
        while self.unsent:
            super().enqueue_request(self.unsent[0])
            self.unsent.pop(0)

    def next_request(self) -> Request | None:
        if self.unsent:
            self._guarded(self._flush)
        while True:
            request = self._guarded(self.queue.pop)
            if request is None:
                return None
            if request.meta.get(REDELIVERED_META) and self.spider.already_stored(request):
                self.queue.ack(request.meta[LEASE_META])
                self.stats.inc_value("dozor/redelivered_stored")
                continue
            self.stats.inc_value("scheduler/dequeued/redis")
            return request

    def has_pending_requests(self) -> bool:
        return bool(self.unsent) or bool(self._guarded(lambda: len(self.queue)))


class GlobalPoliteness:
    """Per-slot concurrency and delay over every worker.

    A slot is the request's download slot (Telegram's channel pages share one) or its
    host; the limits are this crawl's CONCURRENT_REQUESTS_PER_DOMAIN and DOWNLOAD_DELAY,
    or the DOWNLOAD_SLOTS entry of the slot."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.server = get_redis_from_settings(settings)
        self._acquire = self.server.register_script(_ACQUIRE)
        self._extend = self.server.register_script(_EXTEND_TOKENS)
        self.concurrency = settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN")
        self.delay = settings.getfloat("DOWNLOAD_DELAY")
        self.slots = settings.getdict("DOWNLOAD_SLOTS")
        # a token lives a few seconds and is renewed while its download runs: a SIGKILLed
        # worker's slots free within that time, not after a whole download timeout (every
        # other worker would wait for them meanwhile)
        self.lease_ms = int(1000 * min(TOKEN_LEASE, settings.getfloat(
            "DOZOR_VISIBILITY_TIMEOUT")))
        # no download outlives its timeout: a token held longer was never given back
        self.longest = settings.getfloat("DOWNLOAD_TIMEOUT") + 30
        self.held: dict[str, tuple[str, float]] = {}  # token -> (its slot's set, taken at)
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        threading.Thread(target=self._beat, name="politeness-heartbeat", daemon=True).start()
        crawler.signals.connect(self.stopping.set, signal=signals.engine_stopped)

    def _beat(self) -> None:
        # a thread, as the frontier's heartbeat: stages in the reactor thread block it
        while not self.stopping.wait(self.lease_ms / 3000):
            with self._lock:
                now = time.monotonic()
                for token in [t for t, (_, at) in self.held.items() if now - at > self.longest]:
                    del self.held[token]
                by_slot: dict[str, list[str]] = {}
                for token, (key, _) in self.held.items():
                    by_slot.setdefault(key, []).append(token)
            try:
                for key, tokens in by_slot.items():
                    self._extend(keys=[key], args=[self.lease_ms, *tokens])
            except redis.RedisError as exc:
                log.error("Redis unreachable (%s): politeness slots not extended", exc)

    def _limits(self, slot: str) -> tuple[int, float]:
        own = self.slots.get(slot) or {}
        return int(own.get("concurrency", self.concurrency)), float(own.get("delay", self.delay))

    async def acquire(self, request: Request) -> None:
        slot = request.meta.get("download_slot") or urlsplit(request.url).hostname or ""
        concurrency, delay = self._limits(slot)
        token = uuid.uuid4().hex
        keys = [f"dozor:polite:{slot}:active", f"dozor:polite:{slot}:next"]
        while True:
            try:
                wait = self._acquire(keys=keys, args=[token, max(1, concurrency),
                                                      int(delay * 1000), self.lease_ms])
            except redis.RedisError as exc:
                raise IgnoreRequest(f"Redis unreachable for the politeness slot: {exc}"
                                    ) from None
            if not wait:
                break
            # imported here: at module level it would install the default reactor
            # when Scrapy's spider loader imports crawler.spiders
            from twisted.internet import reactor

            await maybe_deferred_to_future(deferLater(reactor, wait / 1000))
        request.meta["dozor_polite"] = (keys[0], token)
        with self._lock:
            self.held[token] = (keys[0], time.monotonic())

    def release(self, request: Request) -> None:
        held = request.meta.pop("dozor_polite", None)
        if held is not None:
            with self._lock:
                self.held.pop(held[1], None)
            try:
                self.server.zrem(*held)
            except redis.RedisError:
                pass  # the token expires by itself


class PoliteDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP(S) handler, downloading once `GlobalPoliteness` gives the slot.

    Taken here, after the downloader's own per-process wait (AutoThrottle's delay, the
    jitter of DOWNLOAD_DELAY), not in a middleware before it: that wait would come
    between the slot's start in Redis and the request's, and another worker's next
    request could start sooner than the delay after it."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.politeness = GlobalPoliteness(crawler)

    async def download_request(self, request: Request) -> Response:
        await self.politeness.acquire(request)
        try:
            return await super().download_request(request)
        finally:
            self.politeness.release(request)

"""Fetches stored articles again (pipelines.revisit decides what changed).

A web article is asked with the validators of its last answer (If-None-Match,
If-Modified-Since), so an unchanged page answers 304 and costs no extraction; 404/410
and redirects come to the callback, which says whether the article is gone. A
Telegram post is read from its channel's preview page around it (`?before=` a few ids
above): a post the page no longer holds while it holds posts on both sides of it was
deleted. Requests go through the crawl's own middlewares, so the WARC archive holds
every answer and the politeness limits (per-domain concurrency, AutoThrottle, robots.txt,
the Telegram host's delay) hold for revisits too.

The requests and their callbacks are `Revisiting`'s: `RevisitSpider` (`dozor revisit`,
`dozor run`) crawls them by itself, and the frontier spider of `dozor worker` takes them
from the shared frontier, where the leader put them (the callbacks named there by their
method names, the same in both).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.middlewares import header_pairs
from crawler.spiders.telegram import channel_request, telegram_base
from pipelines.archive import page_from, page_headers
from pipelines.article import utcnow
from pipelines.revisit import Revisions
from pipelines.store.history import RevisitTarget
from pipelines.telegram import parse_channel_page, post_page

# ids above a post its channel page starts at: room for its newer neighbours
POST_WINDOW = 10
_ANSWERED = [304, 404, 410]


class Revisiting:
    """The revisit requests of a spider and their callbacks, which apply each answer
    through its `revisions` (needed by the callbacks only)."""

    crawler: Crawler
    revisions: Revisions
    logger: Any  # the spider's

    def revisit_requests(self, targets: Iterable[RevisitTarget]) -> Iterator[Request]:
        """One request per web article, one per channel for its posts."""
        channels: dict[str, list[RevisitTarget]] = {}
        for target in targets:
            if target.channel and target.post_id:
                channels.setdefault(target.channel, []).append(target)
            else:
                yield self._article_request(target)
        for channel, posts in channels.items():
            request = self._channel_request(channel, sorted(posts, key=lambda t: -t.post_id))
            if request is not None:
                yield request

    # --- web articles ----------------------------------------------------------------

    def _article_request(self, target: RevisitTarget) -> Request:
        headers = {}
        if target.etag:
            headers["If-None-Match"] = target.etag
        if target.last_modified:
            headers["If-Modified-Since"] = target.last_modified
        return Request(target.url, headers=headers, callback=self.revisit_article,
                       errback=self.revisit_failed, dont_filter=True,
                       meta={"dozor": {"kind": "revisit", "source": target.source,
                                       "url": target.url, "via": "revisit"},
                             "revisit": target, "handle_httpstatus_list": _ANSWERED})

    def revisit_article(self, response: Response) -> Iterator[Any]:
        target: RevisitTarget = response.meta["revisit"]
        archived = response.meta.get("dozor_warc")
        fetched_at: datetime = archived.date if archived else utcnow()
        if response.status == 304:
            self.revisions.not_modified(target, fetched_at)
            return
        headers = page_headers(header_pairs(response.headers))
        page = page_from(response.meta["dozor"], response.url, response.status, headers,
                         response.body, fetched_at, archived.file if archived else None,
                         archived.record_id if archived else None)
        self.revisions.answered(target, page, redirected=bool(response.meta.get("redirect_urls")),
                                etag=headers.get("etag", ""),
                                last_modified=headers.get("last-modified", ""))
        yield from ()

    def revisit_failed(self, failure: Failure) -> None:
        request: Request = failure.request  # type: ignore[attr-defined]
        target = request.meta.get("revisit")
        if isinstance(target, RevisitTarget):
            self.logger.warning("revisit of %s failed: %s", target.url, failure.value)
            self.revisions.failed(target, utcnow())
        for post in request.meta.get("revisit_posts", ()):
            self.revisions.failed(post, utcnow())

    # --- Telegram posts --------------------------------------------------------------

    def _channel_request(self, channel: str, posts: list[RevisitTarget]) -> Request | None:
        """The preview page holding the newest of `posts` (newest first) and its
        neighbours; the rest are asked for from the pages below it."""
        if not posts:
            return None
        assert posts[0].post_id is not None
        meta = {"kind": "telegram", "source": posts[0].source, "via": "revisit"}
        request = channel_request(telegram_base(self.crawler), channel, meta,
                                  self.revisit_channel, self.revisit_failed,
                                  before=posts[0].post_id + POST_WINDOW)
        request.meta["revisit_posts"] = posts
        request.dont_filter = True
        return request

    def revisit_channel(self, response: Response) -> Iterator[Request]:
        posts: list[RevisitTarget] = response.meta["revisit_posts"]
        channel = posts[0].channel or ""
        archived = response.meta.get("dozor_warc")
        fetched_at: datetime = archived.date if archived else utcnow()
        page = parse_channel_page(response.body, channel)
        on_page = {p.post_id: p for p in page.posts}
        if not on_page:
            for target in posts:
                self.revisions.failed(target, fetched_at)
            return
        low, high = min(on_page), max(on_page)
        rest = []
        for target in posts:
            assert target.post_id is not None
            post = on_page.get(target.post_id)
            if post is not None:
                raw = post_page(post, target.source, response.url, fetched_at, None,
                                archived.file if archived else None,
                                archived.record_id if archived else None)
                self.revisions.post_seen(target, raw, edited=post.edited)
            elif low < target.post_id < high:
                self.revisions.post_deleted(target, fetched_at,
                                            archived.file if archived else None,
                                            archived.record_id if archived else None)
            elif target.post_id < low:
                rest.append(target)
            else:
                # above every post the page holds: nothing around it to tell
                self.revisions.failed(target, fetched_at)
        request = self._channel_request(channel, rest)
        if request is not None and request.url != response.request.url:
            yield request
        else:  # a page that ignores `before` would be asked for forever
            for target in rest:
                self.revisions.failed(target, fetched_at)


class RevisitSpider(Revisiting, Spider):
    name = "dozor-revisit"

    def __init__(self, targets: list[RevisitTarget] | None = None,
                 revisions: Revisions | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.targets = list(targets or [])
        if revisions is None:
            raise ValueError("RevisitSpider needs the revisions to apply")
        self.revisions = revisions

    async def start(self) -> AsyncIterator[Request]:
        for request in self.revisit_requests(self.targets):
            yield request

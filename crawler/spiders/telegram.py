"""Telegram channels as a source kind: their web previews, paged back to the age limit.

`<DOZOR_TELEGRAM_URL>/s/<channel>` is the newest page; its "load older" link gives the
id to page back from (`?before=<id>`). Paging stops at the age limit, at the channel's
first post, or at the first post the store already has: a later run reads the newest
page and only goes further back when everything on it is new. Each new post becomes a
RawPage of its own (its widget, under `https://t.me/<channel>/<id>`), so it flows
through the same stages as a web article.

All of Telegram is one download slot with its own concurrency and delay, whatever base
it is reached through. A channel without a preview, or one that does not exist, is one
line in the run's notices and a count in the figures, never a failed run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.statscollectors import StatsCollector

from crawler.feeds import Entry
from crawler.settings import setting_or_env
from pipelines.archive import PageMeta
from pipelines.article import RawPage, utcnow
from pipelines.config.sources import Source
from pipelines.store import Store
from pipelines.telegram import (
    ChannelPage,
    channel_language,
    followed_articles,
    parse_channel_page,
    post_page,
    web_links,
)

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://t.me"
SLOT = "telegram"  # the download slot every Telegram request shares
# discovered_via of a web article fetched because a post links to it (`follow_links`)
LINKED_FROM_POST = "telegram-link"


def telegram_base(crawler: Crawler) -> str:
    return (setting_or_env(crawler.settings, "DOZOR_TELEGRAM_URL") or DEFAULT_BASE).rstrip("/")


def channel_request(base: str, channel: str, meta: PageMeta, callback: Callable[..., Any],
                    errback: Callable[..., Any], before: int | None = None) -> Request:
    """The request for one preview page of a channel (`before`: the page below that id)."""
    url = f"{base}/s/{channel}" + (f"?before={before}" if before else "")
    return Request(url, callback=callback, errback=errback, priority=10,
                   meta={"dozor": meta, "channel": channel, "download_slot": SLOT,
                         # the slot's delay is Telegram's own, not AutoThrottle's guess
                         "autothrottle_dont_adjust_delay": True,
                         # a missing channel is an answer to report, not an error
                         "handle_httpstatus_list": [404]})


class TelegramChannels:
    """Requests and callbacks for the `telegram:` channels of a crawl's sources."""

    def __init__(self, store: Callable[[], Store], crawler: Crawler,
                 max_age: timedelta, errback: Callable[..., Any],
                 follow: Callable[[Response, list[Entry]], Iterator[Request]],
                 notices: list[str] | None = None) -> None:
        self.base = telegram_base(crawler)
        self._store = store
        self.crawler = crawler
        self.max_age = max_age
        self.errback = errback
        self.follow = follow  # requests for the web articles of `follow_links` sources
        self.follow_sources: frozenset[str] = frozenset()
        self.notices = notices if notices is not None else []

    @property
    def stats(self) -> StatsCollector:
        return self.crawler.stats  # set once the crawl starts

    def requests(self, source: Source) -> Iterator[Request]:
        for channel in source.telegram:
            yield self._page_request(source, channel, before=None)

    def _page_request(self, source: Source | PageMeta, channel: str, before: int | None
                      ) -> Request:
        if isinstance(source, dict):
            meta: PageMeta = {**source}
        else:
            meta = {"kind": "telegram", "source": source.name, "via": "telegram",
                    "source_lang": source.lang}
        return channel_request(self.base, channel, meta, self.parse, self.errback, before)

    def parse(self, response: Response) -> Iterator[Request | RawPage]:
        meta: PageMeta = response.meta["dozor"]
        channel: str = response.meta["channel"]
        if response.status == 404:
            self._unavailable(meta, channel, "does not exist (HTTP 404)")
            return
        page = parse_channel_page(response.body, channel, base=response.url)
        for kind, count in page.skipped.items():
            self.stats.inc_value(f"dozor/telegram_skipped/{kind}", count)
            self.stats.inc_value("dozor/telegram_skipped", count)
        if page.problem in ("no_preview", "missing"):
            self._unavailable(meta, channel, page.describe().split(": ", 1)[1])
            return
        if page.problem == "no_posts" and not page.skipped:
            # a preview page without a single widget: Telegram changed its layout
            self.stats.inc_value("dozor/telegram_layout")
            line = page.describe()
            log.warning("%s: %s (%s)", meta["source"], line, response.url)
            self.notices.append(f"{meta['source']}: {line}")
            return
        yield from self._posts(response, meta, channel, page)

    def _posts(self, response: Response, meta: PageMeta, channel: str, page: ChannelPage
               ) -> Iterator[Request | RawPage]:
        cutoff = utcnow() - self.max_age
        store = self._store()
        seen = store.seen([p.url for p in page.posts]) if page.posts else set()
        # a later run stops at the newest post it has: everything below it was read before
        newest_stored = max((p.post_id for p in page.posts if p.url in seen), default=0)
        archived = response.meta.get("dozor_warc")
        fetched_at: datetime = archived.date if archived else utcnow()
        old = new = 0
        linked: dict[str, list[str]] = {}  # each web link, the posts linking to it
        usual = channel_language(page)  # every post on the page, stored ones too
        for post in page.posts:
            if post.post_id <= newest_stored:
                continue
            if post.published_at is not None and post.published_at < cutoff:
                old += 1
                continue
            new += 1
            if post.edited:
                self.stats.inc_value("dozor/telegram_edited")
            follows: tuple[str, ...] = ()
            if meta["source"] in self.follow_sources:
                follows = followed_articles(post.links)
                for url in web_links(post.links):
                    linked.setdefault(url, []).append(post.url)
            yield post_page(post, meta["source"], response.url, fetched_at,
                            meta.get("source_lang"),
                            archived.file if archived else None,
                            archived.record_id if archived else None, usual, follows)
        stats = self.stats
        stats.inc_value("dozor/telegram_pages")
        stats.inc_value("dozor/telegram_posts", new)
        stats.inc_value("dozor/pages", new)
        stats.inc_value("dozor/too_old", old)
        stats.inc_value("dozor/seen_skipped", len(seen))
        oldest = page.posts[0] if page.posts else None
        reached_old = oldest is not None and oldest.published_at is not None \
            and oldest.published_at < cutoff
        log.info("%s: telegram %s lists %d posts: %d new, %d already stored, %d older than "
                 "%d days, %s skipped", meta["source"], response.url, len(page.posts), new,
                 len(seen), old, self.max_age.days, sum(page.skipped.values()))
        if linked:
            dates = {p.url: p.published_at for p in page.posts}
            yield from self.follow(response, [Entry(url, dates[posts[0]],
                                                    linked_from=tuple(posts))
                                              for url, posts in linked.items()])
        if page.before and not newest_stored and not reached_old:
            yield self._page_request(meta, channel, page.before)

    def _unavailable(self, meta: PageMeta, channel: str, reason: str) -> None:
        self.stats.inc_value("dozor/telegram_unavailable")
        meta["unavailable"] = f"channel {reason}"  # the channel's health (crawler.health)
        line = f"{meta['source']}: telegram channel {channel} {reason}"
        log.warning("%s", line)
        self.notices.append(line)

"""What Dozor's spiders share: sources, settings, feed requests, listing links, failures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import courlan
from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.linkextractors import LinkExtractor
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.gz import gunzip

from crawler.feeds import Entry, NotAFeed
from crawler.settings import setting_or_env
from pipelines.archive import PageMeta
from pipelines.config import paths
from pipelines.config.sources import Source, load_sources
from pipelines.urls import BadURL, ascii_host, canonicalize, on_domains, site_domain


class SourceScope:
    """The domains a source's articles may live on: its feeds', sitemaps', listings' and
    the extra `allowed_domains`. A feed cannot send the crawler to arbitrary sites."""

    def __init__(self, source: Source) -> None:
        own = {site_domain(u) for u in [*source.feeds, *source.sitemaps, *source.listings]}
        # one form on both sides: links are canonicalised to punycode hosts
        extra = {ascii_host(d.lstrip(".")) for d in source.allowed_domains}
        self.domains = frozenset(d for d in own | extra if d)

    def allows(self, url: str) -> bool:
        return on_domains(url, self.domains)


# a list of sources, or the path of a sources.yaml (`-a sources=FILE`); None: DOZOR_SOURCES
SourcesArg = Sequence[Source] | str | Path | None


class DozorSpider(Spider):
    """Takes `sources` (a list, or a sources.yaml path from `-a sources=FILE`); Dozor's
    operational crawl settings come in through `crawler.settings.ConfigAddon`."""

    def __init__(self, sources: SourcesArg = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sources_arg = sources
        self.sources: list[Source] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        arg = spider._sources_arg
        if arg is None or isinstance(arg, str | Path):
            path = arg or setting_or_env(crawler.settings, "DOZOR_SOURCES")
            spider.sources = load_sources(path or paths.default_sources())
        else:
            spider.sources = list(arg)
        return spider

    def source_requests(self, source: Source, **callbacks: Any) -> list[Request]:
        """Requests for a source's feeds, sitemaps and listings (callbacks by kind)."""
        out = []
        domains = sorted(SourceScope(source).domains)
        for kind, urls in (("feed", source.feeds), ("sitemap", source.sitemaps),
                           ("listing", source.listings)):
            for url in urls:
                meta: PageMeta = {"kind": kind, "source": source.name, "via": kind,
                                  "source_lang": source.lang, "domains": domains}
                out.append(Request(url, callback=callbacks[kind], errback=callbacks["errback"],
                                   meta={"dozor": meta}, priority=10))
        return out


def listing_entries(response: Response, links: LinkExtractor) -> list[Entry]:
    """The links on a listing page that look like articles."""
    if not isinstance(response, TextResponse):
        raise NotAFeed("a listing page must be HTML")
    own = {canonicalize(response.url), canonicalize(response.request.url)}
    entries = []
    for link in links.extract_links(response):
        try:
            url = canonicalize(link.url)
        except BadURL:
            entries.append(Entry(link.url))  # counted and named with the listing's entries
            continue
        # home, section, tag and pagination pages are not articles (courlan's heuristics)
        if (url in own or not urlsplit(url).path.strip("/")
                or courlan.is_navigation_page(url) or courlan.is_not_crawlable(url)):
            continue
        entries.append(Entry(url, title=link.text.strip() or None))
    return entries


def sitemap_body(response: Response, max_size: int) -> bytes:
    """The XML of a sitemap, gunzipped (bounded) when it is a .xml.gz file."""
    body = response.body
    if body[:2] != b"\x1f\x8b":
        return body
    try:
        return gunzip(body, max_size=max_size)
    except (OSError, ValueError) as exc:  # corrupt, or larger than max_size once inflated
        raise NotAFeed(f"cannot decompress the sitemap: {exc}") from None


def is_robots_forbidden(exc: BaseException) -> bool:
    # RobotsTxtMiddleware raises a plain IgnoreRequest with this message
    return isinstance(exc, IgnoreRequest) and str(exc) == "Forbidden by robots.txt"


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, HttpError):
        return f"HTTP {exc.response.status}"
    if is_robots_forbidden(exc):
        return "forbidden by robots.txt"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

"""Downloader middlewares: the source's scope on redirects, the network guard, the WARC
archive."""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.dupefilters import RFPDupeFilter
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    NotConfigured,
    ResponseDataLossError,
)
from scrapy.http import Headers, Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import error as twisted_error
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from crawler.netguard import AddressPolicy, parse_networks
from crawler.settings import setting_or_env
from pipelines.archive import Exchange, WarcArchive, check_archive_dir
from pipelines.errors import DozorError
from pipelines.urls import on_domains

log = logging.getLogger(__name__)


DOWNLOAD_ERRORS = (CannotResolveHostError, DownloadCancelledError, DownloadConnectionRefusedError,
                   DownloadFailedError, DownloadTimeoutError, ResponseDataLossError,
                   twisted_error.ConnectError, twisted_error.TimeoutError)


class DownloadErrorLine(logging.Filter):
    """Scrapy's robots.txt middleware logs a robots.txt it could not download with the
    download error's traceback. The page behind it fails the same way and gets its own
    `failed:` line, so such a record keeps its one line; any other error keeps its
    traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], DOWNLOAD_ERRORS):
            record.exc_info = None
        return True


class RobotsErrorLines:
    """Extension: puts `DownloadErrorLine` on the robots.txt middleware's logger, once."""

    def __init__(self) -> None:
        robots = logging.getLogger("scrapy.downloadermiddlewares.robotstxt")
        if not any(isinstance(f, DownloadErrorLine) for f in robots.filters):
            robots.addFilter(DownloadErrorLine())


class RefusedRequest(DozorError, IgnoreRequest):
    """The network guard refused to contact the address behind a request."""


class OffsiteRedirect(DozorError, IgnoreRequest):
    """A redirect led outside the domains of the source the request was made for."""


class RedirectScopeMiddleware:
    """Holds every redirect hop to the domains the request was made for
    (`meta["dozor"]["domains"]`, the source's).

    A feed entry on the source's own site can redirect anywhere; without this the page
    at the end of the chain would be stored as the source's article.
    """

    def process_request(self, request: Request) -> None:
        meta = request.meta.get("dozor", {})
        domains = meta.get("domains")
        if not request.meta.get("redirect_urls") or not domains:
            return
        if not on_domains(request.url, domains):
            source = meta.get("source")
            raise OffsiteRedirect(
                f"redirected from {request.meta['redirect_urls'][0]} to {request.url}, "
                f"outside {source}'s domains")


def header_pairs(headers: Headers) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1"))
            for name, values in headers.items() for value in values]


class OverBudget(DozorError, IgnoreRequest):
    """The source's time budget for this run is spent."""


class SourceBudgetMiddleware:
    """Gives each source DOZOR_SOURCE_BUDGET seconds per run, from its first request.

    A few slow-drip pages cannot hold the cycle (and its lock): a request's download
    timeout is cut to what is left of its source's budget, and once the budget is spent
    the source's remaining requests and retries are dropped (and named). A retry spaced
    by `BackoffRetryMiddleware` waits here, outside the downloader's slots.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.budget = crawler.settings.getfloat("DOZOR_SOURCE_BUDGET")
        self.timeout = crawler.settings.getfloat("DOWNLOAD_TIMEOUT")
        self.deadlines: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SourceBudgetMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        source = request.meta.get("dozor", {}).get("source")
        if not source or self.budget <= 0:
            return
        now = time.monotonic()
        deadline = self.deadlines.setdefault(source, now + self.budget)
        wait = max(0.0, request.meta.get("dozor_not_before", now) - now)
        if now + wait >= deadline:
            raise OverBudget(f"{source}'s time budget of {self.budget:g} s for this run is "
                             "spent" + (f" (a retry was due in {wait:.0f} s)" if wait else ""))
        if wait:
            # imported here: importing it at module level would install the default reactor
            from twisted.internet import reactor

            await maybe_deferred_to_future(deferLater(reactor, wait))
        left = deadline - time.monotonic()
        request.meta["download_timeout"] = max(
            0.1, min(request.meta.get("download_timeout", self.timeout), left))


def retry_after(headers: Headers) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), or None."""
    value = (headers.get("Retry-After") or b"").decode("latin-1").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retries, spaced: a 429/503's Retry-After is honoured (up to
    RETRY_AFTER_MAX), other retries wait DOZOR_RETRY_BACKOFF × 2^(attempt-1) seconds.
    The wait itself happens in `SourceBudgetMiddleware`, within the source's budget."""

    RETRY_AFTER_MAX = 300.0

    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Request | Response:
        out = super().process_response(request, response)
        if isinstance(out, Request):
            wait = retry_after(response.headers) if response.status in (429, 503) else None
            self._space(out, wait)
        return out

    def process_exception(self, request: Request, exception: Exception,
                          spider: Spider | None = None) -> Request | Response | None:
        out = super().process_exception(request, exception)
        if isinstance(out, Request):
            self._space(out, None)
        return out

    def _space(self, retry: Request, wait: float | None) -> None:
        if wait is None:
            base = self.crawler.settings.getfloat("DOZOR_RETRY_BACKOFF")
            wait = base * 2 ** (retry.meta.get("retry_times", 1) - 1)
        retry.meta["dozor_not_before"] = time.monotonic() + min(wait, self.RETRY_AFTER_MAX)


class RedirectLoopFilter(RFPDupeFilter):
    """Scrapy's duplicate filter, which also ends a redirect loop shorter than
    REDIRECT_MAX_TIMES (its next hop was already requested): that one is named as a
    redirect loop (`drop` on the spider), not filtered in silence."""

    def log(self, request: Request, spider: Spider) -> None:
        super().log(request, spider)
        hops = request.meta.get("redirect_urls")
        drop = getattr(spider, "drop", None)
        if hops and drop is not None:
            drop(request.meta.get("dozor", {}).get("source", ""), "redirect_loops", hops[0],
                 f"redirect loop: {' -> '.join([*hops, request.url])}")


class NetworkGuardMiddleware:
    """Refuses requests to private, loopback, link-local, reserved and metadata addresses.

    The host is resolved before connecting and every address it resolves to is checked;
    redirects come back through `process_request`, so each hop is checked again; and
    the address the response actually came from is checked, which catches a DNS answer
    that changed between our lookup and the connection (DNS rebinding).
    """

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.policy = AddressPolicy(
            allow_private=settings.getbool("DOZOR_ALLOW_PRIVATE_NETWORK"),
            allowed=parse_networks(setting_or_env(settings, "DOZOR_ALLOWED_NETWORKS")),
        )
        self.stats = crawler.stats
        self._addresses: dict[tuple[str, int], list[str]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NetworkGuardMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            self._refuse(request, f"{parts.scheme}: URLs are not fetched")
        if not parts.hostname:
            self._refuse(request, "the URL has no host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        for address in await self._resolve(parts.hostname, port):
            reason = self.policy.refusal(address)
            if reason and address != parts.hostname:
                reason = f"{parts.hostname} resolves to {address}; {reason}"
            if reason:
                self._refuse(request, reason)

    def process_response(self, request: Request, response: Response) -> Response:
        # Through a proxy the peer is the proxy the operator configured, not the site.
        if response.ip_address is not None and "proxy" not in request.meta:
            reason = self.policy.refusal(str(response.ip_address))
            if reason:
                self._refuse(request, f"the response came from {reason}")
        return response

    async def _resolve(self, host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        key = (host, port)
        if key not in self._addresses:
            try:
                infos = await maybe_deferred_to_future(
                    deferToThread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM))
            except OSError:
                # unresolvable: the download fails with its own DNS error, counted there
                return []
            self._addresses[key] = sorted({info[4][0] for info in infos})
        return self._addresses[key]

    def _refuse(self, request: Request, reason: str) -> NoReturn:
        self.stats.inc_value("dozor/refused")
        log.warning("network guard refused %s: %s", request.url, reason)
        raise RefusedRequest(reason)


class WarcArchiveMiddleware:
    """Writes every response, as received, to the crawl's WARC file before anything uses it.

    The record's place is put in `request.meta["dozor_warc"]` so the page can name it.
    """

    def __init__(self, crawler: Crawler) -> None:
        if not crawler.settings.getbool("DOZOR_ARCHIVE", True):
            raise NotConfigured
        directory = Path(crawler.settings["DOZOR_WARC_DIR"])
        check_archive_dir(directory)
        self.archive = WarcArchive(directory)
        self.stats = crawler.stats
        crawler.signals.connect(self.archive.close, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcArchiveMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        archived = self.archive.write(Exchange(
            url=response.url,
            status=response.status,
            reason=reason,
            response_headers=header_pairs(response.headers),
            body=response.body,
            meta=request.meta.get("dozor", {}),
            method=request.method,
            request_headers=header_pairs(request.headers),
            ip_address=str(response.ip_address) if response.ip_address else None,
        ))
        request.meta["dozor_warc"] = archived
        self.stats.inc_value("dozor/archived")
        return response

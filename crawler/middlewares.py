"""Downloader middlewares: the network guard and the WARC archive."""

from __future__ import annotations

import ipaddress
import logging
import socket
from http import HTTPStatus
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Headers, Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from crawler.netguard import AddressPolicy, parse_networks
from crawler.settings import setting_or_env
from pipelines.archive import Exchange, WarcArchive
from pipelines.errors import DozorError

log = logging.getLogger(__name__)


class RefusedRequest(DozorError, IgnoreRequest):
    """The network guard refused to contact the address behind a request."""


def header_pairs(headers: Headers) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1"))
            for name, values in headers.items() for value in values]


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
        self.archive = WarcArchive(Path(crawler.settings["DOZOR_WARC_DIR"]))
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

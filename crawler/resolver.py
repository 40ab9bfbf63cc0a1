"""The resolver Twisted connects with, held to the network guard's address policy.

The guard middleware resolves a host before a request is sent, but the connection
resolves it again: a name that answers a public address to the guard and 127.0.0.1 to
the connection (DNS rebinding) would reach loopback. Checking here, on the answer the
connection is about to use, closes that gap whatever the name answered before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Self
from urllib.parse import urlsplit
from urllib.request import getproxies

from scrapy.resolver import CachingThreadedResolver
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError

from crawler.netguard import AddressPolicy, parse_networks
from crawler.settings import setting_or_env

log = logging.getLogger(__name__)


class RefusedAddress(DNSLookupError):
    """The name resolved to an address the network guard refuses."""


class GuardedResolver(CachingThreadedResolver):
    def __init__(self, reactor: Any, cache_size: int, timeout: float,
                 policy: AddressPolicy | None = None) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.policy = policy or AddressPolicy()
        # the proxies the operator configured (HttpProxyMiddleware reads the same variables)
        self.proxies = frozenset(
            filter(None, (urlsplit(u).hostname for u in getproxies().values())))

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> Self:
        settings = crawler.settings
        resolver = super().from_crawler(crawler, reactor)
        resolver.policy = AddressPolicy(
            allow_private=settings.getbool("DOZOR_ALLOW_PRIVATE_NETWORK"),
            allowed=parse_networks(setting_or_env(settings, "DOZOR_ALLOWED_NETWORKS")))
        return resolver

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        return super().getHostByName(name, timeout).addCallback(self._check, name)

    def _check(self, address: str, name: str) -> str:
        reason = None if name in self.proxies else self.policy.refusal(address)
        if reason:
            log.warning("network guard refused to connect to %s: it now resolves to %s; %s",
                        name, address, reason)
            raise RefusedAddress(f"{name} resolves to {address}; {reason}")
        return address

"""Which network addresses the crawler may connect to.

A feed or a redirect can point anywhere, including at the machine running Dozor, its
private network or a cloud metadata service. Only globally routable addresses are
fetched unless the operator allows more: `--allow-private-network` lifts the rule,
DOZOR_ALLOWED_NETWORKS (comma-separated CIDRs) allows just those networks. Cloud
metadata endpoints stay refused whatever is allowed: they hand out credentials.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pipelines.errors import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server
        "192.0.0.192",  # Oracle Cloud
    )
)
# NAT64 prefixes (RFC 6052 well-known, RFC 8215 local-use): 64:ff9b::a9fe:a9fe is
# 169.254.169.254 through the operator's NAT64 gateway
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches: IPv4-mapped (::ffff:a.b.c.d),
    IPv4-compatible (::a.b.c.d) or NAT64 (64:ff9b::a.b.c.d)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if any(ip in net for net in NAT64) or (int(ip) >> 32 == 0 and int(ip) > 0xFFFF):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None

ALLOW_HINT = "use --allow-private-network or DOZOR_ALLOWED_NETWORKS to allow it"


def parse_networks(text: str | None) -> tuple[IPNetwork, ...]:
    """'127.0.0.1/32, 10.1.0.0/16' -> networks; a bad entry is a ConfigError naming it."""
    networks = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigError(f"DOZOR_ALLOWED_NETWORKS: {item!r} is not a network: {exc}") from None
    return tuple(networks)


def _kind(ip: IPAddress) -> str | None:
    """What makes an address off limits by default, or None for a public address."""
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False
    allowed: tuple[IPNetwork, ...] = ()

    def refusal(self, ip: IPAddress | str) -> str | None:
        """Why `ip` must not be contacted, or None when it may be."""
        ip = ipaddress.ip_address(ip)
        # ::ffff:10.0.0.1 and 64:ff9b::a00:1 reach 10.0.0.1: judge the IPv4 address
        ip = embedded_ipv4(ip) or ip
        if ip in METADATA_ADDRESSES:
            return f"{ip} is a cloud metadata address (always refused)"
        kind = _kind(ip)
        if kind is None or self.allow_private:
            return None
        if any(ip.version == net.version and ip in net for net in self.allowed):
            return None
        return f"{ip} is a {kind} address ({ALLOW_HINT})"

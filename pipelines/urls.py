"""Canonical URLs: one spelling per article, whatever link led to it; and whose domain a
URL is on, compared in one form (ASCII, punycode for internationalised names)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

import courlan
from courlan import normalize_url
from w3lib.url import canonicalize_url

from pipelines.errors import DozorError

# Browsers and Scrapy (URLLENGTH_LIMIT) give up on longer URLs
MAX_URL_LENGTH = 2083


class BadURL(DozorError, ValueError):
    """A link that is not a usable URL (bad port, broken IPv6 host, no host, too long)."""


class URLTooLong(BadURL):
    """Longer than MAX_URL_LENGTH: Scrapy would drop its request without a word."""


def check_url(url: str) -> None:
    """Raise BadURL when `url` cannot be fetched as written."""
    if len(url) > MAX_URL_LENGTH:
        raise URLTooLong(f"longer than {MAX_URL_LENGTH} characters ({len(url)})")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check: ':99999', ':-1', 'h:1:2'
    except ValueError as exc:
        raise BadURL(str(exc)) from None
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise BadURL("no host")


def canonicalize(url: str, base: str | None = None) -> str:
    """Absolute, lower-case host, tracking parameters and fragment dropped, query sorted.

    courlan knows the tracking parameters (utm_*, fbclid, gclid, yclid, …); w3lib gives
    the stable spelling (sorted query, percent-encoding, punycode host, no fragment).
    Raises BadURL for a link that is not a usable URL.
    """
    try:
        absolute = urljoin(base, url.strip()) if base else url.strip()
    except ValueError as exc:
        raise BadURL(str(exc)) from None
    check_url(absolute)
    try:
        cleaned = normalize_url(absolute)
    except ValueError:
        cleaned = absolute
    try:
        out = canonicalize_url(cleaned, keep_fragments=False)
    except ValueError as exc:
        raise BadURL(str(exc)) from None
    check_url(out)
    return out


def ascii_host(host: str) -> str:
    """'Пример.РФ' -> 'xn--e1afmkfd.xn--p1ai': the form canonical URLs carry."""
    host = host.strip().lower().strip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def host_of(url: str) -> str:
    try:
        return ascii_host(urlsplit(url).hostname or "")
    except ValueError:
        return ""


def site_domain(url: str) -> str:
    """The registered domain (bbc.co.uk, meduza.io, xn--e1afmkfd.xn--p1ai), or the host
    itself for IPs/localhost."""
    host = host_of(url)
    return ascii_host(courlan.extract_domain(f"http://{host}/") or host) if host else ""


def on_domains(url: str, domains: Iterable[str]) -> bool:
    """Whether `url`'s host is one of `domains` (ASCII form) or below one."""
    host = host_of(url)
    return bool(host) and any(host == d or host.endswith("." + d) for d in domains if d)

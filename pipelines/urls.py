"""Canonical URLs: one spelling per article, whatever link led to it."""

from __future__ import annotations

from urllib.parse import urljoin

from courlan import normalize_url
from w3lib.url import canonicalize_url


def canonicalize(url: str, base: str | None = None) -> str:
    """Absolute, lower-case host, tracking parameters and fragment dropped, query sorted.

    courlan knows the tracking parameters (utm_*, fbclid, gclid, yclid, …); w3lib gives
    the stable spelling (sorted query, percent-encoding, no fragment).
    """
    absolute = urljoin(base, url.strip()) if base else url.strip()
    try:
        cleaned = normalize_url(absolute)
    except ValueError:
        cleaned = absolute
    return canonicalize_url(cleaned, keep_fragments=False)

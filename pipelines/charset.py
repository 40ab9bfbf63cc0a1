"""Decoding fetched HTML to text, whatever the page says (or fails to say) about its charset.

Order, as a browser does it: byte-order mark, HTTP header, <meta charset> / http-equiv,
then detection. Unlike a browser, a declaration is checked against the bytes before it is
trusted: Russian sites still serve windows-1251 or KOI8-R under a `utf-8` header, and a
wrong guess silently turns every word into mojibake that no later stage can repair.
"""

from __future__ import annotations

import codecs
import logging
from dataclasses import dataclass

import charset_normalizer
from w3lib.encoding import (
    html_body_declared_encoding,
    http_content_type_encoding,
    read_bom,
    to_unicode,
)

log = logging.getLogger(__name__)

# Tried first when nothing is declared: the single-byte charsets a ru/uk/en news crawler
# meets. Short pages give a general detector too little to go on (a KOI8-R paragraph can
# look like Shift-JIS), while among these few the letter statistics are decisive.
LIKELY_SINGLE_BYTE = ("cp1251", "koi8_r", "koi8_u", "cp1252")

# Above this share of undecodable non-ASCII bytes a "UTF-8" page is not UTF-8. A real
# UTF-8 page may carry a stray byte or a truncated character; a cp1251 page fails on
# nearly every letter.
UTF8_MAX_INVALID_SHARE = 0.05


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    encoding: str
    # bom | header | meta | detected; "detected" also when a declaration was overruled
    source: str
    declared: str | None = None


def decode_html(body: bytes, content_type: str | None = None) -> Decoded:
    """Text of an HTML body; `content_type` is the raw Content-Type header, if any."""
    bom_encoding, bom = read_bom(body)
    if bom_encoding is not None and bom is not None:
        return Decoded(to_unicode(body[len(bom):], bom_encoding), bom_encoding, "bom")

    declared, source = http_content_type_encoding(content_type), "header"
    if declared is None:
        declared, source = html_body_declared_encoding(body), "meta"
    if declared is not None:
        if fits(body, declared):
            return Decoded(to_unicode(body, declared), declared, source, declared)
        detected = detect_encoding(body)
        if detected is not None:
            log.info("charset: %s declares %s but the bytes are %s", source, declared, detected)
            return Decoded(to_unicode(body, detected), detected, "detected", declared)
        return Decoded(to_unicode(body, declared), declared, source, declared)

    detected = detect_encoding(body) or "utf-8"
    return Decoded(to_unicode(body, detected), detected, "detected")


def fits(body: bytes, encoding: str) -> bool:
    """Whether `body` plausibly is text in `encoding`."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    if body.isascii():
        return True
    if name == "utf-8":
        return _utf8_invalid_share(body) <= UTF8_MAX_INVALID_SHARE
    if _utf8_invalid_share(body) == 0:
        # multi-byte UTF-8 sequences do not happen by accident in single-byte text
        return False
    return charset_normalizer.from_bytes(body, cp_isolation=[name]).best() is not None


def detect_encoding(body: bytes) -> str | None:
    if body.isascii() or _utf8_invalid_share(body) == 0:
        return "utf-8"
    best = charset_normalizer.from_bytes(body, cp_isolation=list(LIKELY_SINGLE_BYTE)).best()
    if best is None:
        best = charset_normalizer.from_bytes(body).best()
    return best.encoding if best is not None else None


_ASCII = bytes(range(0x80))


def _utf8_invalid_share(body: bytes) -> float:
    try:
        body.decode("utf-8")
        return 0.0
    except UnicodeDecodeError:
        pass
    non_ascii = len(body.translate(None, _ASCII))
    replaced = body.decode("utf-8", errors="replace").count("\ufffd")
    invalid = replaced - body.count(b"\xef\xbf\xbd")  # U+FFFD written by the page itself
    return invalid / non_ascii

"""Feeds and sitemaps: the entries they list, read from bytes the crawler fetched.

XML from the network is parsed defensively. A document that declares entities
(billion laughs, external entities pointing at local files or internal hosts) is
refused before any parser sees it; feedparser (RSS 0.9x/1.0/2.0, Atom) then reads the
bytes with external entities disabled, and sitemaps go through lxml with entity
resolution and network access off.
"""

from __future__ import annotations

import xml.sax
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO

import feedparser
import lxml.etree
from defusedxml import DefusedXmlException
from defusedxml.expatreader import create_parser

from pipelines.errors import DozorError


class UnsafeXML(DozorError, ValueError):
    """The document declares entities or a DTD feature Dozor refuses to parse."""


class NotAFeed(DozorError, ValueError):
    """The bytes are not an RSS/Atom feed or a sitemap."""


@dataclass(frozen=True)
class Entry:
    url: str  # as written in the feed/sitemap (may be relative)
    published: datetime | None = None
    title: str | None = None
    lang: str | None = None
    linked_from: tuple[str, ...] = ()  # the Telegram posts linking to it (`follow_links`)


@dataclass
class EntryList:
    kind: str  # feedparser's version (rss20, rss10, atom10, ...) | urlset | sitemapindex
    entries: list[Entry] = field(default_factory=list)  # articles
    sitemaps: list[Entry] = field(default_factory=list)  # children of a sitemap index
    lang: str | None = None  # the feed's declared language

    @property
    def newest(self) -> datetime | None:
        dates = [e.published for e in self.entries + self.sitemaps if e.published]
        return max(dates) if dates else None


class _StopAtRoot(xml.sax.ContentHandler):
    """Entity and DTD declarations all come before the root element: stop there."""

    class Reached(Exception):
        pass

    def startElement(self, name: str, attrs: object) -> None:
        raise self.Reached


def check_safe_xml(body: bytes) -> None:
    """Raise UnsafeXML if the document's prolog declares entities or external references.

    Malformed XML is not judged here: the lenient parsers that follow never expand
    entities either, so a broken prolog cannot smuggle one through.
    """
    # Any <!ENTITY> (general or parameter, internal or SYSTEM) is refused. A bare DOCTYPE
    # naming an external DTD (old RSS 0.91 feeds) is let through: no parser used here
    # loads external DTDs, and the tests hold them to that.
    parser = create_parser(forbid_dtd=False, forbid_entities=True, forbid_external=False)
    parser.setContentHandler(_StopAtRoot())
    try:
        parser.parse(BytesIO(body))
    except _StopAtRoot.Reached:
        return
    except DefusedXmlException as exc:
        raise UnsafeXML(f"refused to parse: {type(exc).__name__}: {exc}") from None
    except xml.sax.SAXException:
        return


def language(tag: str | None) -> str | None:
    """'ru-RU', 'uk_UA', 'EN' -> 'ru', 'uk', 'en'."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary or None


def parse_date(text: str | None) -> datetime | None:
    """A W3C datetime (sitemaps, news:publication_date) as an aware UTC datetime."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_feed(body: bytes, url: str, content_type: str = "") -> EntryList:
    check_safe_xml(body)
    parsed = feedparser.parse(
        # a stream, never bytes: feedparser treats a bytes/str argument that looks like
        # a path or URL as something to open or fetch
        BytesIO(body),
        response_headers={"content-location": url, "content-type": content_type or "text/xml"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not parsed.get("version") and not parsed.entries:
        reason = parsed.get("bozo_exception") or "no RSS or Atom root element"
        raise NotAFeed(f"not an RSS/Atom feed: {reason}")
    feed_lang = language(parsed.feed.get("language"))
    out = EntryList(kind=parsed.get("version") or "feed", lang=feed_lang)
    for item in parsed.entries:
        link = item.get("link") or ""
        if not link and str(item.get("id", "")).startswith(("http://", "https://")):
            link = item["id"]
        if not link:
            continue
        stamp = item.get("published_parsed") or item.get("updated_parsed")
        published = datetime(*stamp[:6], tzinfo=UTC) if stamp else None
        out.entries.append(Entry(link.strip(), published, item.get("title") or None,
                                 language(item.get("language")) or feed_lang))
    return out


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _fields(elem: lxml.etree._Element) -> dict[str, str]:
    """Child texts by local name, with the Google News block (<news:news>) flattened in."""
    out: dict[str, str] = {}
    for child in elem:
        name = _local(child.tag)
        nested = child.iterdescendants() if name == "news" else ()
        for node in (child, *nested):
            text = (node.text or "").strip()
            if text:
                out.setdefault(_local(node.tag), text)
    return out


def _elements(body: bytes) -> Iterator[tuple[str, lxml.etree._Element]]:
    events = lxml.etree.iterparse(
        BytesIO(body), events=("start", "end"), resolve_entities=False, no_network=True,
        huge_tree=False, recover=True, remove_comments=True, remove_pis=True,
    )
    depth = 0
    try:
        for event, elem in events:
            if event == "start":
                if depth == 0:
                    yield "root", elem
                depth += 1
                continue
            depth -= 1
            if depth == 1:  # a <url> or <sitemap> under the root
                yield _local(elem.tag), elem
                elem.clear()
                while elem.getprevious() is not None:
                    del elem.getparent()[0]
    except lxml.etree.XMLSyntaxError as exc:
        raise NotAFeed(f"not a sitemap: {exc}") from None


def parse_sitemap(body: bytes) -> EntryList:
    """A urlset (plain or Google News) or a sitemap index."""
    check_safe_xml(body)
    out: EntryList | None = None
    for name, elem in _elements(body):
        if name == "root":
            kind = _local(elem.tag)
            if kind not in ("urlset", "sitemapindex"):
                raise NotAFeed(f"not a sitemap: root element is <{kind or '?'}>")
            out = EntryList(kind=kind)
            continue
        fields = _fields(elem)
        loc = fields.get("loc")
        if out is None or not loc:
            continue
        published = parse_date(fields.get("publication_date")) or parse_date(fields.get("lastmod"))
        entry = Entry(loc, published, fields.get("title"), language(fields.get("language")))
        (out.sitemaps if name == "sitemap" else out.entries).append(entry)
    if out is None:
        raise NotAFeed("not a sitemap: empty document")
    return out

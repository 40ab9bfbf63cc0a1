"""From fetched pages to articles: decode, keep the main text, read the metadata.

trafilatura does the extraction (main text without navigation, footers, "read also"
blocks and comments; title, authors, date via htmldate, description, site name). This
module adds what a news crawler needs around it: only HTML responses, decoding that
survives undeclared or wrongly declared Cyrillic charsets, the page's declared
language, its canonical URL, the feed's date and title when the page has none, and a
date the page states in its text when neither its metadata nor the feed gives one.
A page that cannot be turned into an article is logged and skipped; it never costs
the rest of the batch.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import trafilatura
from courlan import extract_domain
from htmldate import find_date
from lxml import etree
from lxml.html import HtmlElement
from trafilatura import metadata as trafilatura_metadata
from trafilatura.settings import Document
from trafilatura.utils import load_html

from pipelines import telegram
from pipelines.article import Article, RawPage
from pipelines.charset import decode_html
from pipelines.dates import labelled_dates
from pipelines.language import normalise_code
from pipelines.urls import BadURL, canonicalize, on_domains, site_domain

log = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# trafilatura's own ceiling (MAX_FILE_SIZE); a page this big is not an article
MAX_BODY_BYTES = 20_000_000

# htmldate keeps the time and offset when the page gives them
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# Metadata only (meta tags, JSON-LD, <time>, URL). htmldate's extensive search is not
# used: on pages without metadata it settles for copyright years, dates of cited court
# rulings and dates inside image or link URLs; pipelines.dates reads labelled dates instead.
_METADATA_DATES = {"extensive_search": False, "original_date": True, "outputformat": _DATE_FORMAT}
# a date label sits by the headline or at the article's end; past this much visible text
# a "published" is someone else's (a cited report's, a comment's)
_TEXT_DATE_CHARS = 20_000
# a page date this far past the fetch is a parsing accident, not a publication date
_FUTURE_SLACK = timedelta(days=1)

# " | ", " — ", " - ", " :: ", " « "...: what CMSs put between headline and site name
_TITLE_SEPARATOR = re.compile(r"(\s+[|–—\-·•»«:]{1,2}\s+)")

# shorter "descriptions" are taglines or site names, not an article's lead
_MIN_LEAD_CHARS = 40

_HIDDEN = ("script", "style", "noscript", "template")
# plain strings: a "smart" string result builds a Python proxy of its parent element
_VISIBLE_TEXT = etree.XPath(
    "//body//text()[not(" + " or ".join(f"ancestor::{tag}" for tag in _HIDDEN) + ")]",
    smart_strings=False,
)

# What trafilatura's author searches (AUTHOR_XPATHS) look for: an <author> element, a
# <rel> child (their rel='me'), or one of these words in one of these attributes. A page
# without any has no author for them to find, and they are the dearest part of its
# metadata (run on a pruned copy of the page); tests/test_extract.py checks the words
# against the searches.
AUTHOR_WORDS = ("author", "Author", "byl", "Byline", "BBL", "username", "writer",
                "screenname", "channel-name", "submitted-by", "posted-by", "journalist-name",
                "zuozhe", "bianji", "xiaobian")
AUTHOR_ATTRIBUTES = ("class", "id", "itemprop", "rel", "data-testid", "data-component")
_HOLDS_AUTHOR_WORD = " or ".join(f"contains(., '{word}')" for word in AUTHOR_WORDS)
_MAY_NAME_AUTHOR = etree.XPath(
    "boolean(//author | //rel | "
    + " | ".join(f"//@{name}[{_HOLDS_AUTHOR_WORD}]" for name in AUTHOR_ATTRIBUTES) + ")"
)

# WHATWG MIME sniffing: the tags that make an unlabelled body HTML
_HTML_START = re.compile(
    rb"\s*<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body"
    rb"|br|p|!--)[\s>]",
    re.IGNORECASE,
)


def extract(pages: list[RawPage]) -> list[Article]:
    """One article per page that holds one; every other page is logged with the reason."""
    articles = []
    for page in pages:
        try:
            article = extract_page(page)
        except Exception:  # a bad page is logged and skipped, never loses the batch
            log.exception("extract: %s failed", page.url)
            continue
        if article is not None:
            articles.append(article)
    return articles


def extract_page(page: RawPage) -> Article | None:
    headers = {k.lower(): v for k, v in page.headers.items()}
    reason = skip_reason(page, headers.get("content-type", ""))
    if reason:
        log.info("extract: skipping %s: %s", page.url, reason)
        return None
    if page.discovered_via == telegram.DISCOVERED_VIA:
        # a post's text is already known to the character: nothing to extract
        return telegram.post_article(page)
    decoded = decode_html(page.body, headers.get("content-type"))
    tree = load_html(decoded.text)
    if tree is None:
        log.info("extract: skipping %s: not parseable as HTML", page.url)
        return None
    final_url = page.final_url or page.url

    doc = page_metadata(tree, final_url)
    body = trafilatura.bare_extraction(tree, url=final_url, include_comments=False)
    if body is None:
        # too little main text for trafilatura; the metadata may still make a news item
        log.info("extract: %s has no main text", page.url)
    site_name = (doc.sitename or "").strip()
    title = clean_title((doc.title or "").strip(), site_name, final_url)
    title = title or (page.feed_title or "").strip()
    description = (doc.description or "").strip()
    text = with_lead((body.text if body is not None else "").strip(), description, tree)
    if not title and not text:
        log.info("extract: skipping %s: neither title nor text", page.url)
        return None

    html_lang = declared_language(tree, headers.get("content-language"))
    published_at, published_from = published(tree, doc.date, page, html_lang)
    return Article(
        url=page.url,
        canonical_url=(canonical_url(tree, final_url, page.source_domains or
                                     (site_domain(final_url), site_domain(page.url)))
                       or canonicalize(page.url)),
        source=page.source,
        fetched_at=page.fetched_at,
        first_seen_at=page.first_seen_at or page.fetched_at,
        final_url=final_url,
        discovered_via=page.discovered_via,
        status=page.status,
        title=title,
        text=text,
        authors=[a.strip() for a in (doc.author or "").split(";") if a.strip()],
        description=description,
        site_name=site_name,
        html_lang=html_lang,
        lang_hint=normalise_code(page.source_lang or page.feed_lang),
        published_at=published_at,
        published_from=published_from,
        warc_file=page.warc_file,
        warc_record_id=page.warc_record_id,
    )


def page_metadata(tree: HtmlElement, url: str) -> Document:
    """trafilatura's metadata of the page (`trafilatura.metadata.extract_metadata`, step
    by step) without the categories, tags and licence it also looks for: no article
    keeps them, and their link searches cost a third of its metadata time."""
    m = trafilatura_metadata
    doc = m.examine_meta(tree)
    if doc.author and " " not in doc.author:
        doc.author = None  # a single word is a handle or a role, as trafilatura judges
    try:
        doc = m.extract_meta_json(tree, doc)
    except Exception as exc:  # trafilatura guards its JSON-LD reader the same way
        log.info("extract: %s: JSON-LD metadata unreadable: %s", url, exc)
    doc.title = doc.title or m.extract_title(tree)
    if not doc.author:
        doc.author = m.extract_author(tree) if _MAY_NAME_AUTHOR(tree) else None
    doc.url = doc.url or m.extract_url(tree, url)
    doc.date = find_date(tree, url=doc.url, **_METADATA_DATES)
    doc.sitename = doc.sitename or m.extract_sitename(tree)
    if doc.sitename:
        doc.sitename = doc.sitename.lstrip("@")  # a Twitter handle
        if doc.sitename and "." not in doc.sitename and not doc.sitename[0].isupper():
            doc.sitename = doc.sitename.title()
    elif doc.url and (host := m.META_URL.match(doc.url)):
        doc.sitename = host[1]
    doc.clean_and_trim()
    return doc


def skip_reason(page: RawPage, content_type_header: str) -> str | None:
    if page.status != 200:
        return f"status {page.status}"
    if not page.body or not page.body.strip():
        return "empty body"
    if len(page.body) > MAX_BODY_BYTES:
        return f"body of {len(page.body)} bytes exceeds {MAX_BODY_BYTES}"
    content_type = content_type_header.split(";")[0].strip().lower()
    if content_type:
        return None if content_type in HTML_TYPES else f"content type {content_type}"
    return None if looks_like_html(page.body) else "no content type and the body is not HTML"


def looks_like_html(body: bytes) -> bool:
    head = body[:1024]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16-le" if head.startswith(b"\xff\xfe") else "utf-16-be"
        head = head[2:].decode(encoding, errors="ignore").encode("ascii", errors="ignore")
    return _HTML_START.match(head.removeprefix(b"\xef\xbb\xbf")) is not None


def clean_title(title: str, site_name: str, url: str) -> str:
    """The title without the site's name in front or behind ("Headline | Meduza").

    trafilatura already trims the <title> element, but og:title and JSON-LD headlines
    come through as written, and it only knows the site's name when the page states it.
    """
    parts = _TITLE_SEPARATOR.split(title)  # text, separator, text, ...
    domain = extract_domain(url) or ""
    names = {_key(site_name), _key(domain.split(".")[0])} - {""}

    def is_site(segment: str) -> bool:
        key = _key(segment)
        return bool(key) and (key in names or key.removeprefix("the") in names)

    while len(parts) > 2 and is_site(parts[-1]):
        del parts[-2:]
    while len(parts) > 2 and is_site(parts[0]):
        del parts[:2]
    return "".join(parts).strip()


def _key(text: str) -> str:
    return re.sub(r"\W+", "", text.casefold())


def with_lead(text: str, description: str, tree: HtmlElement) -> str:
    """The text with the article's standfirst in front, when trafilatura left it out.

    News templates set the lead in the header block beside the headline, outside the
    element trafilatura keeps as the body; the same sentence is usually the page's meta
    description. It is added only when readers see it on the page (not an SEO-only
    blurb) and the text does not already hold it.
    """
    lead = _squash(description)
    if len(lead) < _MIN_LEAD_CHARS or lead in _squash(text):
        return text
    if lead not in _squash(visible_text(tree)):
        return text
    return f"{description}\n{text}" if text else description


def visible_text(tree: HtmlElement) -> str:
    """The text a reader sees in the page's body: `_VISIBLE_TEXT`'s pieces joined, read
    as the text of a copy of the body without the hidden elements (their tails stay),
    in half the time of the XPath's ancestor tests on every text node."""
    parts = []
    for body in tree.iter("body"):
        if next(body.iterancestors("body"), None) is not None:
            continue  # within a body already read
        shown = copy.deepcopy(body)
        etree.strip_elements(shown, *_HIDDEN, with_tail=False)
        parts.append(etree.tostring(shown, method="text", encoding="unicode", with_tail=False))
    return "".join(parts)


def _squash(text: str) -> str:
    # compared without any whitespace: inline tags and line breaks space text unpredictably
    return "".join(text.split())


def canonical_url(tree: HtmlElement, final_url: str,
                  domains: Iterable[str]) -> str | None:
    """rel=canonical, else og:url, resolved against the page's base URL, when it is on
    one of `domains` (the source's).

    Read here rather than through trafilatura's URL metadata, which also accepts an
    hreflang x-default alternate — often the page in another language. A canonical on
    another outlet's domain is the page's claim, not a fact: trusting it would let any
    page take over that outlet's record.
    """
    base = final_url
    for href in tree.xpath("//base/@href")[:1]:
        try:
            base = canonicalize(href, base=final_url)
        except BadURL:
            pass
    candidates = [
        link.get("href", "")
        for link in tree.xpath("//link[@href]")
        if "canonical" in (link.get("rel") or "").lower().split()
    ]
    candidates += tree.xpath("//meta[@property='og:url' or @name='og:url']/@content")
    for href in candidates:
        if not href.strip():
            continue
        try:
            url = canonicalize(href, base=base)
        except BadURL:
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            continue
        if not on_domains(url, domains):
            log.info("extract: ignoring canonical %s of %s: outside the source's domains",
                     url, final_url)
            continue
        home = parts.path in ("", "/") and not parts.query
        if home and urlsplit(final_url).path not in ("", "/"):
            # some CMSs point every article's canonical at the home page; honouring that
            # would file all of a site's stories under one record
            log.info("extract: ignoring canonical %s of %s", url, final_url)
            continue
        return url
    return None


def declared_language(tree: HtmlElement, content_language: str | None) -> str | None:
    """What the page says its language is: <html lang>, meta tags, og:locale, HTTP header."""
    claims = [
        tree.get("lang"),
        tree.get("{http://www.w3.org/XML/1998/namespace}lang"),
        *tree.xpath("//meta[translate(@http-equiv, 'CONTENT-LANGUAGE', 'content-language')"
                    "='content-language']/@content"),
        *tree.xpath("//meta[@property='og:locale']/@content"),
        *tree.xpath("//meta[@name='language']/@content"),
        content_language,
    ]
    for claim in claims:
        code = normalise_code(claim)
        if code:
            return code
    return None


def published(
    tree: HtmlElement, page_date: str | None, page: RawPage, html_lang: str | None
) -> tuple[datetime | None, str | None]:
    """Publication time in UTC and where it came from: the page's metadata, else the feed
    (or news sitemap), else a date the page's text gives after a publication label."""
    from_feed = "sitemap" if page.discovered_via == "sitemap" else "feed"
    feed = _as_utc(page.feed_published) if page.feed_published else None
    own = _parse_page_date(page_date, page)
    if own is not None:
        if feed is not None and _is_day_only(page_date) and feed.date() == own.date():
            return feed, from_feed  # same day, and the feed knows the hour
        return own, "page"
    if feed is not None:
        return feed, from_feed
    stated = _text_date(tree, page, html_lang)
    return (stated, "text") if stated is not None else (None, None)


def _text_date(tree: HtmlElement, page: RawPage, html_lang: str | None) -> datetime | None:
    text = _visible_head(tree, _TEXT_DATE_CHARS)
    # the page's own language first: it decides an ambiguous 06/01/2026
    languages = sorted(("ru", "uk", "en"), key=lambda code: code != html_lang)
    for when in labelled_dates(text, languages):
        when = _as_utc(when)
        if not _is_future(when, page):
            return when
    return None


def _visible_head(tree: HtmlElement, limit: int) -> str:
    """The first `limit` characters of the page's visible text, whitespace collapsed."""
    pieces, size = [], 0
    for piece in _VISIBLE_TEXT(tree):
        pieces.append(piece)
        size += len(piece)
        if size >= limit:
            break
    return " ".join(" ".join(pieces).split())[:limit]


def _parse_page_date(value: str | None, page: RawPage) -> datetime | None:
    if not value:
        return None
    try:
        when = _as_utc(datetime.fromisoformat(value))
    except ValueError:
        log.info("extract: %s: unparsable date %r", page.url, value)
        return None
    return None if _is_future(when, page) else when


def _is_future(when: datetime, page: RawPage) -> bool:
    if when > _as_utc(page.fetched_at) + _FUTURE_SLACK:
        log.info("extract: %s: date %s is after the fetch, ignored", page.url, when)
        return True
    return False


def _is_day_only(value: str | None) -> bool:
    # htmldate writes midnight without an offset when the page gave only a day
    return bool(value) and value.endswith("T00:00:00")


def _as_utc(when: datetime) -> datetime:
    # a time without an offset is taken as UTC: the only assumption that is never
    # silently shifted again by the machine's own time zone
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)

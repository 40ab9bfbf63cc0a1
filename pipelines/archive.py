"""The WARC archive: every fetched response, written before it is processed.

One gzip-compressed WARC file per crawl under `Config.paths.warc`. Each exchange is
a `request` record plus a `response` record holding the response as it came off the
wire (status, headers, body still content-encoded). Dozor's own headers on the response
record (`WARC-Dozor-*`) say which source and which feed/sitemap/listing led to the page,
with the feed's hints, so that `read_pages` rebuilds exactly the `RawPage`s the crawl
handed to the stages, without the network.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import BinaryIO, TypedDict
from urllib.parse import urlsplit

from scrapy.http import Headers, HtmlResponse
from scrapy.responsetypes import responsetypes
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import iso_date_to_datetime
from warcio.warcwriter import WARCWriter

from pipelines import telegram
from pipelines.article import RawPage
from pipelines.errors import DozorError

log = logging.getLogger(__name__)

# Framing the crawler has already undone: the page's body is de-chunked and decoded.
_FRAMING_HEADERS = frozenset({"transfer-encoding", "content-encoding", "content-length"})
_HINTS = ("source_lang", "feed_lang", "feed_title", "feed_published", "first_seen", "domains",
          "linked_from")


class PageMeta(TypedDict, total=False):
    """What the crawler knows about a request besides its URL (Request.meta["dozor"])."""

    kind: str  # article | feed | sitemap | listing
    source: str
    via: str  # feed | sitemap | listing: how an article was discovered
    url: str  # canonical URL that was requested (before redirects)
    source_lang: str | None
    feed_lang: str | None
    feed_title: str | None
    feed_published: str | None  # ISO 8601
    first_seen: str  # ISO 8601: when a feed/sitemap/listing listed it, before the fetch
    domains: list[str]  # the source's domains (ASCII): where the page and its canonical may be
    depth: int  # a sitemap's nesting below the source's own sitemap
    linked_from: list[str]  # a followed link (`follow_links`): the posts linking to it
    # source health (crawler.health): the listed URL a document counts for, the
    # validators of its answer until the callback has read it, why a channel is unavailable
    health_url: str
    validators: tuple[str, str]
    unavailable: str


@dataclass
class Exchange:
    """One request and the response to it, as fetched."""

    url: str  # where the response came from (after redirects)
    status: int
    reason: str
    response_headers: list[tuple[str, str]]
    body: bytes  # as received: de-chunked, still content-encoded
    meta: PageMeta
    method: str = "GET"
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    ip_address: str | None = None


@dataclass(frozen=True)
class ArchivedAt:
    file: str
    record_id: str
    date: datetime


def is_html(headers: dict[str, str], url: str, body: bytes) -> bool:
    """Only HTML becomes a page: Scrapy's own content-type/extension/body sniffing decides."""
    cls = responsetypes.from_args(headers=Headers(headers), url=url, body=body)
    return issubclass(cls, HtmlResponse)


def page_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header names lower-cased, repeated headers joined, framing headers dropped."""
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key in _FRAMING_HEADERS:
            continue
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def page_from(meta: PageMeta, final_url: str, status: int, headers: dict[str, str], body: bytes,
              fetched_at: datetime, warc_file: str | None = None,
              warc_record_id: str | None = None) -> RawPage:
    """The RawPage for a decoded article response; crawl and reprocess both build it here."""
    published, seen = meta.get("feed_published"), meta.get("first_seen")
    return RawPage(
        url=meta.get("url") or final_url,
        final_url=final_url,
        status=status,
        headers=headers,
        body=body,
        source=meta.get("source", ""),
        discovered_via=meta.get("via", "feed"),
        fetched_at=fetched_at,
        first_seen_at=datetime.fromisoformat(seen) if seen else None,
        source_lang=meta.get("source_lang"),
        feed_lang=meta.get("feed_lang"),
        feed_title=meta.get("feed_title"),
        feed_published=datetime.fromisoformat(published) if published else None,
        source_domains=tuple(meta.get("domains") or ()),
        warc_file=warc_file,
        warc_record_id=warc_record_id,
        linked_from=tuple(meta.get("linked_from") or ()),
    )


class ArchiveError(DozorError):
    """The WARC directory cannot be written: nothing fetched could be kept."""


def check_archive_dir(directory: Path) -> None:
    """Raise ArchiveError unless a WARC file can be created in `directory` (made if
    missing): a crawl that cannot archive must not start, as every response would fail."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".dozor-probe-"):
            pass
    except OSError as exc:
        raise ArchiveError(f"the WARC archive directory {directory} is not usable: "
                           f"{exc.strerror or exc} (set DOZOR_WARC_DIR or DOZOR_DATA_DIR)"
                           ) from None


# warcio's own gzip wrapper always deflates at level 9: on news HTML that costs about 5 ms
# of the crawl's CPU a page against 3 ms at zlib's default 6, for files only 1% smaller
_LEVEL = 6


class _GzipMembers:
    """What warcio writes (gzip=False), compressed as one gzip member per record, the
    layout warcio itself writes and every WARC reader takes: warcio flushes at the end of
    each record."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self._member = zlib.compressobj(_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS + 16)

    def write(self, data: bytes) -> None:
        self.out.write(self._member.compress(data))

    def flush(self) -> None:
        self.out.write(self._member.flush())
        self._member = zlib.compressobj(_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS + 16)


class WarcArchive:
    """Appends exchanges to one WARC file, created on the first write."""

    def __init__(self, directory: Path) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.path = directory / f"dozor-{stamp}-{os.getpid()}.warc.gz"
        self._file: BinaryIO | None = None
        self._writer: WARCWriter | None = None

    def _open(self) -> WARCWriter:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # kept open for the whole crawl
            self._writer = WARCWriter(_GzipMembers(self._file), gzip=False,
                                      warc_version="1.1")
            info = self._writer.create_warcinfo_record(
                self.path.name, {"software": "Dozor", "format": "WARC File Format 1.1"})
            self._writer.write_record(info)
        return self._writer

    def write(self, ex: Exchange) -> ArchivedAt:
        writer = self._open()
        status_line = f"{ex.status} {ex.reason}".strip()
        # the body is stored de-chunked, so a chunked header would make readers re-chunk it
        resp_headers = [(k, v) for k, v in ex.response_headers
                        if k.lower() != "transfer-encoding"]
        warc_headers = {
            "WARC-Dozor-Kind": ex.meta.get("kind", "other"),
            "WARC-Dozor-Source": ex.meta.get("source", ""),
            "WARC-Dozor-Via": ex.meta.get("via", ""),
            "WARC-Dozor-URL": ex.meta.get("url", ""),
            "WARC-Dozor-Hints": json.dumps({k: ex.meta.get(k) for k in _HINTS}),
        }
        if ex.ip_address:
            warc_headers["WARC-IP-Address"] = ex.ip_address
        response = writer.create_warc_record(
            ex.url, "response", payload=BytesIO(ex.body),
            http_headers=StatusAndHeaders(status_line, resp_headers, protocol="HTTP/1.1"),
            warc_headers_dict={k: v for k, v in warc_headers.items() if v},
        )
        record_id = response.rec_headers.get_header("WARC-Record-ID")
        parts = urlsplit(ex.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = writer.create_warc_record(
            ex.url, "request", payload=BytesIO(b""), length=0,
            http_headers=StatusAndHeaders(f"{ex.method} {target} HTTP/1.1", ex.request_headers,
                                          is_http_request=True),
            warc_headers_dict={"WARC-Concurrent-To": record_id},
        )
        writer.write_record(response)
        writer.write_record(request)
        # each record is its own gzip member: flushing keeps every record written so far
        # readable after a crash
        assert self._file is not None
        self._file.flush()
        date = iso_date_to_datetime(response.rec_headers.get_header("WARC-Date"), tz_aware=True)
        return ArchivedAt(str(self.path), record_id, date)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._writer = None


def warc_files(path: Path) -> list[Path]:
    """A WARC file, or every WARC file below a directory, oldest name first."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.name.endswith((".warc.gz", ".warc")))
    if path.exists():
        return [path]
    raise FileNotFoundError(f"{path}: no such WARC file or directory")


def read_pages(path: Path, max_size: int, max_age_days: int | None = None
               ) -> Iterator[RawPage]:
    """The RawPages the crawl made from the archived responses in one WARC file.

    Article responses with a 2xx status and an HTML body, decoded (bounded by `max_size`,
    as DOWNLOAD_MAXSIZE bounds the crawl), and one page per post of an archived Telegram
    channel page. A file cut short by a crash yields what it has. With `max_age_days` (the
    crawl's age limit) a channel page gives only the posts the crawl took from it: none
    older than that when the page was fetched, as no older web article was fetched.
    """
    with open(path, "rb") as fh:
        records = iter(ArchiveIterator(fh))
        while True:
            try:
                record = next(records)
                pages = _pages(record, str(path), max_size, max_age_days)
            except StopIteration:
                return
            # warcio reports a truncated or corrupt record with assorted exceptions
            # (ArchiveLoadFailed, AttributeError on cut headers, zlib/EOF errors on a cut
            # body); whatever came before it is intact
            except (ArchiveLoadFailed, AttributeError, EOFError, OSError, ValueError,
                    zlib.error) as exc:
                log.warning("%s: stopped reading at a damaged record: %s", path, exc)
                return
            yield from pages


def _pages(record: ArcWarcRecord, warc_file: str, max_size: int,
           max_age_days: int | None = None) -> list[RawPage]:
    """The article page a record holds, or the post pages of an archived channel page."""
    head = record.rec_headers
    kind = head.get_header("WARC-Dozor-Kind")
    if record.rec_type != "response" or kind not in ("article", telegram.DISCOVERED_VIA):
        return []
    status = int(record.http_headers.get_statuscode() or 0)
    if not 200 <= status < 300:
        return []
    url = head.get_header("WARC-Target-URI")
    body = record.content_stream().read(max_size + 1)
    if len(body) > max_size:
        log.warning("%s: %s decodes to more than %d bytes; skipped", warc_file, url, max_size)
        return []
    headers = page_headers(record.http_headers.headers)
    if not is_html(headers, url, body):
        return []
    date = iso_date_to_datetime(head.get_header("WARC-Date"), tz_aware=True)
    record_id = head.get_header("WARC-Record-ID")
    if kind == telegram.DISCOVERED_VIA:
        source = head.get_header("WARC-Dozor-Source") or ""
        hints = json.loads(head.get_header("WARC-Dozor-Hints") or "{}")
        channel = telegram.parse_channel_page(body, "", base=url)
        usual = telegram.channel_language(channel)
        return [telegram.post_page(post, source, url, date, hints.get("source_lang"),
                                   warc_file, record_id, usual) for post in channel.posts
                if max_age_days is None or post.published_at is None
                or post.published_at >= date - timedelta(days=max_age_days)]
    meta: PageMeta = {
        "kind": "article",
        "source": head.get_header("WARC-Dozor-Source") or "",
        "via": head.get_header("WARC-Dozor-Via") or "feed",
        "url": head.get_header("WARC-Dozor-URL") or url,
        **json.loads(head.get_header("WARC-Dozor-Hints") or "{}"),
    }
    return [page_from(meta, url, status, headers, body, date, warc_file, record_id)]

"""An article's archived copies, read back from the WARC archive for the UI.

The UI serves only records the store names for that article (its current record, its
versions', its events'), only from WARC files inside the configured archive directory,
and never as part of its own origin: the archived answer goes out sandboxed (no script
runs, nothing loads), the record itself as a `.warc` download.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from pipelines.article import Article
from pipelines.store.history import Event, Version

MAX_BODY = 32 * 1024 * 1024  # bytes of a decoded archived body served, at most
# what an archived answer may be shown as, in the sandbox; anything else is a download
SHOWN_TYPES = ("text/html", "text/plain", "application/xhtml+xml", "application/json",
               "application/xml", "text/xml", "application/rss+xml", "application/atom+xml")


class ArchiveUnavailable(Exception):
    """The record cannot be served; the message says why, for the analyst."""


@dataclass(frozen=True)
class ArchivedRecord:
    content_type: str
    body: bytes  # the payload, de-chunked and decoded
    raw: bytes  # the WARC record itself, uncompressed


def article_records(article: Article, versions: list[Version],
                    events: list[Event]) -> dict[str, str]:
    """The WARC records the store names for the article: record id -> WARC file."""
    found = {v.warc_record_id: v.warc_file for v in versions
             if v.warc_record_id and v.warc_file}
    found.update({e.detail["warc_record_id"]: e.detail["warc_file"] for e in events
                  if e.detail.get("warc_record_id") and e.detail.get("warc_file")})
    if article.warc_record_id and article.warc_file:
        found[article.warc_record_id] = article.warc_file
    return found


def inside(warc_file: str, directory: Path) -> Path:
    """The WARC file's path, refused unless it lies inside `directory`."""
    path = Path(warc_file).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise ArchiveUnavailable(f"{warc_file} is outside the WARC archive directory "
                                 f"{directory}")
    if not path.is_file():
        raise ArchiveUnavailable(f"the WARC file {warc_file} is no longer in the archive")
    return path


def read_record(path: Path, record_id: str) -> ArchivedRecord:
    """The response record `record_id` of the WARC file (each record its own gzip
    member, so its bytes are cut out of the file by offset and length)."""
    try:
        with path.open("rb") as fh:
            records = ArchiveIterator(fh)
            for record in records:
                head = record.rec_headers
                if head.get_header("WARC-Record-ID") != record_id:
                    continue
                if record.rec_type != "response" or record.http_headers is None:
                    raise ArchiveUnavailable(f"the record {record_id} holds no response")
                body = record.content_stream().read(MAX_BODY + 1)
                if len(body) > MAX_BODY:
                    raise ArchiveUnavailable(f"the archived answer is larger than "
                                             f"{MAX_BODY} bytes: download the record")
                records.read_to_end(record)
                fh.seek(records.get_record_offset())
                member = fh.read(records.get_record_length())
                raw = (zlib.decompress(member, 16 + zlib.MAX_WBITS)
                       if member[:2] == b"\x1f\x8b" else member)
                return ArchivedRecord(record.http_headers.get_header("Content-Type") or "",
                                      body, raw)
    # warcio reports a damaged record with assorted exceptions (pipelines.archive)
    except (ArchiveLoadFailed, AttributeError, EOFError, OSError, ValueError,
            zlib.error) as exc:
        raise ArchiveUnavailable(f"the WARC file {path.name} cannot be read: {exc}") from None
    raise ArchiveUnavailable(f"the WARC file {path.name} holds no record {record_id}")


def shown_type(content_type: str) -> str | None:
    """The archived answer's content type when it may be shown (in the sandbox)."""
    kind = content_type.split(";")[0].strip().lower()
    return content_type if kind in SHOWN_TYPES else None

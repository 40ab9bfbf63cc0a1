"""The records that flow through the stages.

A `RawPage` is what the crawler fetched; an `Article` is what every later stage
reads and fills in. The article's fields are the index's fields: the SQLite store
and the Elasticsearch mapping both store exactly these.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TRANSLATION_STATUSES = ("done", "pending", "failed", "skipped")
# what a revisit can find (pipelines.revisit); `event:` in the query language
EVENT_KINDS = ("edited", "title_changed", "date_changed", "removed", "restored")

# The fields `dozor export --json` writes, in this order (a stable interface: README.md
# lists them, docs/ARCHITECTURE.md says what each stage fills).
EXPORT_FIELDS = (
    "url",
    "canonical_url",
    "source",
    "lang",
    "title",
    "text",
    "title_en",
    "text_en",
    "published_at",
    "fetched_at",
    "relevant",
    "score",
    "matched_terms",
    "translation_status",
    "cluster_id",
)
# what `dozor export --json` adds for a Telegram post (an article with a `channel`)
POST_EXPORT_FIELDS = ("channel", "post_id", "views", "forwarded_from", "links",
                      "relevant_via")
# what every export row carries besides: the record's id first, its WARC record last
EXPORT_ID = "id"
EXPORT_WARC_FIELDS = ("warc_file", "warc_record_id")


def utcnow() -> datetime:
    return datetime.now(UTC)


def article_id(canonical_url: str) -> str:
    """Stable document id: the same canonical URL is the same record on every backend."""
    return hashlib.sha1(canonical_url.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class RawPage:
    """One fetched response, before any processing.

    `url` is the canonical form of the URL that was requested; `final_url` is where
    redirects ended. Hints come from the feed or sitemap entry that led here and are
    only used when the page itself says nothing better.
    """

    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    body: bytes
    source: str
    discovered_via: str = "feed"
    fetched_at: datetime = field(default_factory=utcnow)
    first_seen_at: datetime | None = None  # listed by a feed/sitemap/listing (time to alert)
    source_lang: str | None = None
    feed_lang: str | None = None
    feed_title: str | None = None
    feed_published: datetime | None = None
    # the source's domains: a canonical URL elsewhere is not trusted (empty: the page's own)
    source_domains: tuple[str, ...] = ()
    warc_file: str | None = None
    warc_record_id: str | None = None
    # `follow_links`: a post's links being fetched as articles (canonical URLs), and the
    # posts (canonical URLs) a followed article was fetched for
    follows: tuple[str, ...] = ()
    linked_from: tuple[str, ...] = ()

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(slots=True)
class Article:
    url: str
    canonical_url: str
    source: str
    fetched_at: datetime
    final_url: str = ""
    discovered_via: str = "feed"
    status: int = 200
    id: str = ""
    # when the URL was first listed (a feed/sitemap/listing entry), before the fetch
    first_seen_at: datetime | None = None

    # extract
    title: str = ""
    text: str = ""
    authors: list[str] = field(default_factory=list)
    description: str = ""
    site_name: str = ""
    html_lang: str | None = None
    lang_hint: str | None = None
    published_at: datetime | None = None
    published_from: str | None = None  # page | feed | sitemap | text (a labelled date)

    # language
    lang: str = "other"
    lang_confidence: float = 0.0

    # normalised terms (lemmas/stems) of every text field; both backends index it verbatim
    terms: str = ""

    # relevance
    relevant: bool = False
    # below the topic's threshold but at its possible_threshold: shown for an analyst
    possible: bool = False
    score: float = 0.0
    matched_terms: list[str] = field(default_factory=list)

    # translation
    title_en: str | None = None
    text_en: str | None = None
    translation_status: str = "skipped"
    translation_engine: str | None = None
    translation_model: str | None = None

    # dedup
    content_hash: str = ""
    cluster_id: str = ""
    lsh_bands: list[str] = field(default_factory=list)

    # provenance
    warc_file: str | None = None
    warc_record_id: str | None = None
    stored_at: datetime | None = None
    # the version of the code that made `terms` and the dedup signature
    # (pipelines.process.DERIVED_VERSION); another value is stale: `dozor reprocess --stale`
    derived_version: str = ""

    # dedup: MinHash signature of the text's word shingles (empty for short texts), kept
    # so later batches can verify LSH candidates against it
    minhash: list[int] = field(default_factory=list)

    # a Telegram post (discovered_via "telegram"): its channel username and id, views as
    # a number, the canonical URL of the post it forwards, the URLs it links to
    channel: str | None = None
    post_id: int | None = None
    views: int | None = None
    forwarded_from: str | None = None
    links: list[str] = field(default_factory=list)
    # a post relevant via the article it links to (`follow_links`): that article's
    # canonical URL, the reason the post is relevant
    relevant_via: str | None = None

    # revisits (pipelines.revisit): taken down (404/410, sent home, "article removed", a
    # deleted post; its last text kept), the kinds of the events it has had (what
    # `event:` queries), and the latest change for the digest and the UI
    removed: bool = False
    events: list[str] = field(default_factory=list)
    change: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.id:
            self.id = article_id(self.canonical_url)
        if not self.final_url:
            self.final_url = self.url

    @property
    def source_label(self) -> str:
        """The source as analysts see it: a Telegram post names its channel too."""
        return f"{self.source} · @{self.channel}" if self.channel else self.source

    def to_dict(self) -> dict[str, Any]:
        """All fields, dates as ISO 8601 strings: the document both backends store."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    def export(self) -> dict[str, Any]:
        doc = self.to_dict()
        names = EXPORT_FIELDS + POST_EXPORT_FIELDS if self.channel else EXPORT_FIELDS
        return {name: doc[name] for name in (EXPORT_ID, *names, *EXPORT_WARC_FIELDS)}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Article:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in doc.items() if k in names}
        for key in ("fetched_at", "first_seen_at", "published_at", "stored_at"):
            value = kwargs.get(key)
            if isinstance(value, str):
                kwargs[key] = datetime.fromisoformat(value)
        return cls(**kwargs)

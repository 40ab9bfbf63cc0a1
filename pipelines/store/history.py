"""What revisits keep per article, shared by both backends: when it is due again
(`RevisitTarget`), its versions (`Version`) and its events (`Event`); pipelines.revisit
makes them, the `History` role (pipelines.store.roles) stores them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipelines.article import EVENT_KINDS, Article

__all__ = ["EVENT_KINDS", "Event", "RevisitTarget", "Version"]


@dataclass
class RevisitTarget:
    """A stored article due for a revisit, with the validators of its last answer."""

    article_id: str
    url: str
    source: str
    first_seen: datetime
    step: int = 0  # revisits done so far
    etag: str = ""
    last_modified: str = ""
    channel: str | None = None
    post_id: int | None = None


@dataclass
class Version:
    article_id: str
    version: int
    fetched_at: datetime
    title: str
    text: str
    published_at: datetime | None
    warc_file: str | None = None
    warc_record_id: str | None = None
    changed: list[str] = field(default_factory=list)  # title, text, published_at

    @classmethod
    def of(cls, article: Article, number: int, changed: list[str] | None = None) -> Version:
        return cls(article.id, number, article.fetched_at, article.title, article.text,
                   article.published_at, article.warc_file, article.warc_record_id,
                   changed or [])


@dataclass
class Event:
    article_id: str
    kind: str
    at: datetime
    version: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    n: int = 0  # assigned by the store

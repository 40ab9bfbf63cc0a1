"""sources.yaml: the outlets Dozor watches, validated with errors that say where."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from pipelines.config.yamlfile import Lang, StrictModel, load_yaml, require_unique_names
from pipelines.urls import BadURL, check_url

# a Telegram username: what t.me/<name> and t.me/s/<name> take
USERNAME = re.compile(r"[A-Za-z0-9_]{5,32}")


def normalise_username(value: str) -> str:
    """'https://t.me/Name', 't.me/s/Name', '@Name', 'Name' -> 'name' (Telegram ignores case)."""
    raw = value.strip()
    if "t.me/" in raw or "telegram.me/" in raw:
        parts = [p for p in urlsplit(raw if "://" in raw else f"https://{raw}").path.split("/")
                 if p]
        raw = (parts[1:] if parts[:1] == ["s"] else parts)[:1][0] if parts else ""
    raw = raw.removeprefix("@")
    if not USERNAME.fullmatch(raw):
        raise ValueError(f"not a Telegram channel username: {value!r} (5-32 letters, digits "
                         "or _; a pasted https://t.me/name or @name also works)")
    return raw.lower()


class Source(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    lang: Lang | None = None  # a hint, never trusted over the text
    feeds: list[str] = []
    sitemaps: list[str] = []
    listings: list[str] = []  # section pages whose article links are followed one level
    telegram: list[str] = []  # public channels by username, read from their web preview
    follow_links: bool = False  # fetch the web articles a channel's posts link to
    keep: Literal["all", "relevant"] = "all"
    allowed_domains: list[str] = []  # extra domains articles may live on (CDN, mirrors)
    notes: str = ""

    @field_validator("feeds", "sitemaps", "listings")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"not an http(s) URL: {url!r}")
            try:
                check_url(url)
            except BadURL as exc:
                raise ValueError(f"not a usable URL: {url!r}: {exc}") from None
        return urls

    @field_validator("telegram")
    @classmethod
    def _usernames(cls, names: list[str]) -> list[str]:
        return list(dict.fromkeys(normalise_username(name) for name in names))


class SourcesFile(StrictModel):
    sources: list[Source]

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[Source]) -> list[Source]:
        require_unique_names(sources, "source")
        for src in sources:
            if not (src.feeds or src.sitemaps or src.listings or src.telegram):
                raise ValueError(f"source {src.name!r} has no feeds, sitemaps or listings "
                                 "(nor telegram channels)")
        return sources


def load_sources(path: Path | str) -> list[Source]:
    return load_yaml(path, SourcesFile).sources

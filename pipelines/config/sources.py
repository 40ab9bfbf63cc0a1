"""sources.yaml: the outlets Dozor watches, validated with errors that say where."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from pipelines.config.yamlfile import Lang, StrictModel, load_yaml, require_unique_names


class Source(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    lang: Lang | None = None  # a hint, never trusted over the text
    feeds: list[str] = []
    sitemaps: list[str] = []
    listings: list[str] = []  # section pages whose article links are followed one level
    keep: Literal["all", "relevant"] = "all"
    allowed_domains: list[str] = []  # extra domains articles may live on (CDN, mirrors)
    notes: str = ""

    @field_validator("feeds", "sitemaps", "listings")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"not an http(s) URL: {url!r}")
        return urls


class SourcesFile(StrictModel):
    sources: list[Source]

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[Source]) -> list[Source]:
        require_unique_names(sources, "source")
        for src in sources:
            if not (src.feeds or src.sitemaps or src.listings):
                raise ValueError(f"source {src.name!r} has no feeds, sitemaps or listings")
        return sources


def load_sources(path: Path | str) -> list[Source]:
    return load_yaml(path, SourcesFile).sources

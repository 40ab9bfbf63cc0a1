"""Render a bundled news site (jinja2 templates + `site.yaml`) into servable responses.

A site folder holds one `site.yaml` (outlets, stories, redirects) and templates laid
out like the URLs they answer: `kurier/news/123-slug.html` is served at
`/kurier/news/123-slug.html`. Files whose name starts with `_` are layouts and are
not served. Dates are relative (`hours_ago`), resolved against one `now` per render,
so feeds never age past the crawler's `max_age_days` however old the checkout is.

The demo server and the end-to-end tests both serve what `render_site` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from pipelines.config.yamlfile import StrictModel, load_yaml

SITE_FILE = "site.yaml"

MONTHS = {
    "ru": ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
           "сентября", "октября", "ноября", "декабря"),
    "uk": ("січня", "лютого", "березня", "квітня", "травня", "червня", "липня", "серпня",
           "вересня", "жовтня", "листопада", "грудня"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}


class Outlet(StrictModel):
    name: str
    lang: str  # what the outlet's CMS puts in <html lang>
    home: str  # path of the outlet's front page
    feeds: list[str] = []  # paths of its RSS/Atom feeds
    sitemaps: list[str] = []  # paths of its (news) sitemaps


class Story(StrictModel):
    path: str
    outlet: str
    title: str
    summary: str = ""
    author: str = ""
    section: str = ""
    hours_ago: float
    html_lang: str | None = None  # a CMS that mislabels this page (default: the outlet's)
    encoding: str = "utf-8"
    charset_declared: bool = True  # False: neither the header nor the markup names it
    date_in_markup: bool = True  # False: only a human-readable date on the page
    feed_path: str = ""  # where feeds still point after the story moved (a redirect)
    feed_query: str = ""  # query string the outlet's feed appends (tracking parameters)


class SiteFile(StrictModel):
    outlets: dict[str, Outlet]
    stories: list[Story]
    redirects: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class SitePage:
    body: bytes
    content_type: str


@dataclass(slots=True)
class RenderedSite:
    base: str
    now: datetime
    outlets: dict[str, Outlet]
    pages: dict[str, SitePage] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)  # path -> absolute URL

    def sources(self) -> dict[str, list[dict[str, object]]]:
        """A sources.yaml document (`SourcesFile`) crawling every outlet here."""
        return {"sources": [
            {"name": key, "lang": o.lang,
             "feeds": [self.base + p for p in o.feeds],
             "sitemaps": [self.base + p for p in o.sitemaps]}
            for key, o in self.outlets.items()]}


@dataclass(frozen=True, slots=True)
class StoryView:
    """A story with its date resolved, as templates see it."""

    meta: Story
    outlet: Outlet
    published: datetime

    def __getattr__(self, name: str) -> object:
        return getattr(self.meta, name)

    @property
    def lang(self) -> str:
        return self.meta.html_lang or self.outlet.lang

    @property
    def link(self) -> str:
        """The path feeds give for this story: its old address and tracking query included."""
        query = f"?{self.meta.feed_query}" if self.meta.feed_query else ""
        return (self.meta.feed_path or self.meta.path) + query


def human_date(value: datetime, lang: str) -> str:
    """The date line a reader sees, in the page's language."""
    month = MONTHS.get(lang, MONTHS["en"])[value.month - 1]
    if lang == "en":
        return f"{month} {value.day}, {value.year}, {value:%H:%M}"
    return f"{value.day} {month} {value.year}, {value:%H:%M}"


def _xml_content_type(body: str) -> str:
    head = body[:400]
    if "<rss" in head:
        return "application/rss+xml"
    if "<feed" in head:
        return "application/atom+xml"
    return "application/xml"


def render_site(root: Path, base: str, now: datetime | None = None) -> RenderedSite:
    """Every servable file of the site at `root`, as it would be served from `base`."""
    spec = load_yaml(root / SITE_FILE, SiteFile)
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    base = base.rstrip("/")

    views = [StoryView(s, spec.outlets[s.outlet], now - timedelta(hours=s.hours_ago))
             for s in spec.stories]
    by_path = {v.meta.path: v for v in views}

    def stories_of(outlet: str) -> list[StoryView]:
        return sorted((v for v in views if v.meta.outlet == outlet),
                      key=lambda v: v.published, reverse=True)

    env = Environment(
        loader=FileSystemLoader(root),
        autoescape=select_autoescape(enabled_extensions=("html", "xml")),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["rfc822"] = format_datetime
    env.filters["iso"] = lambda d: d.isoformat(timespec="seconds")
    env.filters["human"] = human_date
    env.globals.update(base=base, now=now, outlets=spec.outlets, stories_of=stories_of)

    site = RenderedSite(base=base, now=now, outlets=spec.outlets)
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root).as_posix()
        if not file.is_file() or file.name == SITE_FILE or any(
                part.startswith("_") for part in rel.split("/")):
            continue
        path = "/" + rel
        view = by_path.get(path)
        context = {"page": view, "outlet": view.outlet if view else None}
        text = env.get_template(rel).render(context)
        if file.suffix == ".html":
            encoding = view.meta.encoding if view else "utf-8"
            declared = view.meta.charset_declared if view else True
            ctype = f"text/html; charset={encoding}" if declared else "text/html"
            site.pages[path] = SitePage(text.encode(encoding), ctype)
        elif file.suffix == ".xml":
            site.pages[path] = SitePage(text.encode("utf-8"), _xml_content_type(text))
        else:
            site.pages[path] = SitePage(text.encode("utf-8"), "text/plain; charset=utf-8")

    missing = sorted(set(by_path) - set(site.pages))
    if missing:
        raise FileNotFoundError(f"{root}: stories without a page template: {', '.join(missing)}")
    site.redirects = {old: base + new for old, new in spec.redirects.items()}
    return site

"""The analyst UI as a WSGI application: front page, search, article pages.

It reads the store (`stats`, `search`, `get`, `cluster_members`); its one write is an
analyst's label (POST /article/<id>/label, same origin only). Everything it
shows is escaped by jinja2's autoescaping; the one piece of markup built here is the
search snippet, escaped by `pipelines.terms.snippets.snippet` before its `<mark>`s are added.
Article texts are shown as text, never as HTML, and only http(s) URLs become links.
"""

from __future__ import annotations

import html
import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit
from wsgiref.types import StartResponse, WSGIEnvironment

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from dozor.export import Format, label_value, write_export
from dozor.ui import archived
from pipelines.alert.rules import load_rules
from pipelines.article import Article
from pipelines.errors import ConfigError, DozorError
from pipelines.health import LATENCY_SPANS, latency_report, worst_first
from pipelines.query import Query, QueryError, parse_query
from pipelines.revisit import share_changed, word_diff
from pipelines.store import (
    SORTS,
    ArticlesReader,
    History,
    Labels,
    SearchHit,
    SearchSummary,
    SourceHealth,
    StoreError,
)
from pipelines.store.base import story_key
from pipelines.terms.snippets import article_snippet

log = logging.getLogger(__name__)

PER_PAGE = 20
LATEST_RELEVANT = 12
# the current search's matches, as `dozor export` writes them
EXPORTS = {"/export.csv": Format.csv, "/export.jsonl": Format.jsonl}
LATEST = Query.where(("relevant", [True]))  # the front page's latest relevant stories
# and what the topic's rules nearly missed (its "possible" tier)
LATEST_POSSIBLE = Query.where(("possible", [True]))
CLUSTER_LIMIT = 50
MAX_QUERY_CHARS = 2000
STYLESHEET = "/static/style.css"
LANG_NAMES = {"ru": "Russian", "uk": "Ukrainian", "en": "English", "other": "other"}
DATE_SOURCES = {
    "page": "the page's own metadata",
    "feed": "the feed entry",
    "sitemap": "the sitemap entry",
}
_ARTICLE_ID = re.compile(r"[0-9a-f]{40}")
_MARK = ("<mark>", "</mark>")

# Nothing but this server's stylesheet loads, no script runs, forms submit only here,
# no other site may frame the UI, and the sources never learn what was searched.
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; "
     "base-uri 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
]


# An archived page, in a sandbox of its own (a unique origin, no script runs, no form
# submits) from which nothing loads: the source never learns the copy was looked at.
ARCHIVED_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


class BadRequest(DozorError, ValueError):
    """A parameter the UI cannot use; the message is shown to the analyst."""


@dataclass(slots=True)
class Page:
    status: HTTPStatus
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class SearchForm:
    q: str = ""
    lang: str = ""
    relevant: bool = False
    source: str = ""
    page: int = 1
    possible: bool = False  # only the possibly relevant tier
    since: str = ""  # publication days (or times, now-7d), both included
    until: str = ""
    sort: str = "relevance"

    def asks(self) -> bool:
        return bool(self.q.strip() or self.relevant or self.possible or self.source
                    or self.lang or self.since or self.until)

    def query(self) -> Query:
        """The store query: the analyst's query AND the filters the form sets, in the
        form's language. Raises QueryError, positioned in the analyst's text."""
        filters = (("relevant", [True] if self.relevant else []),
                   ("possible", [True] if self.possible else []),
                   ("source", [self.source] if self.source else []))
        if self.q.strip():
            query = parse_query(self.q, name="query").restrict(*filters)
        elif self.relevant or self.possible or self.source:
            query = Query.where(*filters)
        elif self.lang:
            query = Query.where(("lang", [self.lang]))
        else:
            query = Query.every()
        return query.in_language(self.lang or None).between(
            "published", self.since or None, self.until or None)

    def url(self, **changes: Any) -> str:
        values = {"q": self.q, "lang": self.lang, "relevant": "1" if self.relevant else "",
                  "possible": "1" if self.possible else "", "source": self.source,
                  "since": self.since, "until": self.until,
                  "sort": "" if self.sort == "relevance" else self.sort, "page": self.page}
        path = changes.pop("path", "/search")
        values.update(changes)
        if values["page"] == 1:
            values["page"] = ""
        return path + "?" + urlencode({k: v for k, v in values.items() if v not in ("", None)})


@dataclass(slots=True)
class HitView:
    number: int
    article: Article  # the story's lead (pipelines.store.base.as_stories)
    snippet: Markup
    matched_terms: list[str]
    copies: list[Article]  # the other articles of its cluster the search matches
    cluster: str  # its cluster id: the /cluster/<id> page


@dataclass(slots=True)
class QueryProblem:
    message: str
    # the analyst's query split around the error position (None: not in their text)
    before: str | None = None
    at: str | None = None
    after: str | None = None


def lang_name(code: str) -> str:
    return LANG_NAMES.get(code, code)


def link_url(url: str | None) -> str | None:
    """`url` if it may be a link: only http(s), so a stored javascript: or data: URL is
    shown as text and never followed."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is not None:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.strftime("%Y-%m-%d %H:%M")


def rfc3339(value: datetime) -> str:
    """Atom's date form; a naive time is taken as UTC, as the store writes them."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def paragraphs(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split("\n") if p.strip()]


def html_snippet(article: Article, terms: Iterable[str]) -> Markup:
    # snippet() escapes the text and adds the marks: the result is safe markup
    return Markup(article_snippet(article, terms, mark=_MARK, escape=html.escape))


def hit_views(hits: Sequence[SearchHit], first: int) -> list[HitView]:
    """Views of one page of stories (collapsed hits), numbered from first + 1."""
    return [HitView(number=number, article=hit.article,
                    snippet=html_snippet(hit.article, hit.matched_terms),
                    matched_terms=hit.matched_terms, copies=hit.copies,
                    cluster=story_key(hit.article))
            for number, hit in enumerate(hits, first + 1)]


def member_json(article: Article) -> dict[str, Any]:
    """A copy or cluster member as the JSON endpoints list it."""
    return {"id": article.id, "title": article.title, "url": article.url,
            "source": article.source, "lang": article.lang,
            "published_at": article.published_at.isoformat() if article.published_at else None,
            "fetched_at": article.fetched_at.isoformat(),
            "stored_at": article.stored_at.isoformat() if article.stored_at else None,
            "page": f"/article/{article.id}"}


def _param(params: dict[str, list[str]], name: str) -> str:
    values = params.get(name)
    return values[-1] if values else ""


class UIStore(ArticlesReader, SourceHealth, Labels, Protocol):
    """What the UI reads: articles, their labels, and the sources' health and timings."""


# the store opened for writing, only while a label is recorded (the UI reads the rest
# through a read-only one)
Labeller = Callable[[], AbstractContextManager[Labels]]
LABEL_VALUES = {"relevant": True, "not_relevant": False, "clear": None}


LATENCY_DAYS = 7
FEED_ENTRIES = 50  # newest stories of a rule's or a search's Atom feed
CLUSTER_PAGE = 1000  # members a cluster page lists


class AnalystUI:
    """WSGI application over `store`; `languages` are the configured ones."""

    def __init__(self, store: UIStore, languages: Sequence[str],
                 alerts: Path | None = None, labeller: Labeller | None = None,
                 warc_dir: Path | None = None) -> None:
        self.store = store
        self.warc_dir = warc_dir  # the WARC archive the archived copies are read from
        self.labeller = labeller
        self.alerts = alerts  # the rules file whose rules have Atom feeds
        self.languages = list(dict.fromkeys([*languages, "other"]))
        self.env = Environment(
            loader=PackageLoader("dozor.ui", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(when=when, lang_name=lang_name, link_url=link_url,
                                paragraphs=paragraphs, rfc3339=rfc3339)
        self.env.globals.update(stylesheet=STYLESHEET, date_sources=DATE_SOURCES)
        self.stylesheet = files("dozor.ui").joinpath("static", "style.css").read_bytes()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        page = self.respond(environ)
        own = {name.lower() for name, _ in page.headers}  # a page may set its own policy
        headers = [("Content-Type", page.content_type), ("Content-Length", str(len(page.body))),
                   *(h for h in SECURITY_HEADERS if h[0].lower() not in own), *page.headers]
        start_response(f"{page.status.value} {page.status.phrase}", headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [page.body]

    # ------------------------------------------------------------------ routing

    def respond(self, environ: WSGIEnvironment) -> Page:
        # PEP 3333 hands the path over as latin-1 text of the raw bytes
        path = (environ.get("PATH_INFO") or "/").encode("latin-1").decode("utf-8", "replace")
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "POST" and path.startswith("/article/") and path.endswith("/label"):
            try:
                return self.label(environ, path.removeprefix("/article/")
                                  .removesuffix("/label"))
            except StoreError as exc:
                return self.error(HTTPStatus.SERVICE_UNAVAILABLE,
                                  f"The label cannot be recorded: {exc}")
        if method not in ("GET", "HEAD"):
            page = self.error(HTTPStatus.METHOD_NOT_ALLOWED,
                              "This UI only reads (but an article's label): use GET.")
            page.headers.append(("Allow", "GET, HEAD"))
            return page
        params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        try:
            if path == "/":
                return self.front()
            if path == "/sources":
                return self.sources()
            if path == "/search":
                return self.search(params)
            if path == "/search.json":
                return self.search_json(params)
            if path == "/search.atom":
                return self.search_feed(params)
            if path.startswith("/cluster/"):
                return self.cluster(path.removeprefix("/cluster/"))
            if path in EXPORTS:
                return self.export(params, EXPORTS[path])
            if path.startswith("/article/") and path.endswith(("/archive", "/archive.warc")):
                return self.archived(path.removeprefix("/article/"), params)
            if path.startswith("/article/") and path.endswith(".json"):
                return self.article_json(path.removeprefix("/article/").removesuffix(".json"))
            if path.startswith("/article/"):
                return self.article(path.removeprefix("/article/"), params)
            if path.startswith("/rules/") and path.endswith(".atom"):
                return self.rule_feed(path.removeprefix("/rules/").removesuffix(".atom"))
            if path == STYLESHEET:
                return Page(HTTPStatus.OK, self.stylesheet, "text/css; charset=utf-8",
                            [("Cache-Control", "max-age=600")])
            return self.error(HTTPStatus.NOT_FOUND, f"There is no page at {path}.")
        except BadRequest as exc:
            return self.error(HTTPStatus.BAD_REQUEST, str(exc))
        except StoreError as exc:
            return self.error(HTTPStatus.SERVICE_UNAVAILABLE, f"The index cannot be read: {exc}")
        except ConfigError as exc:
            return self.error(HTTPStatus.SERVICE_UNAVAILABLE,
                              f"The alert rules cannot be read: {exc}")
        except Exception:
            log.exception("the analyst UI failed on %s", path)
            return self.error(HTTPStatus.INTERNAL_SERVER_ERROR,
                              "Something failed on the server; its log has the details.")

    def render(self, template: str, code: HTTPStatus = HTTPStatus.OK, **context: Any) -> Page:
        context.setdefault("form", SearchForm())
        context.setdefault("languages", self.languages)
        body = self.env.get_template(template).render(**context)
        return Page(code, body.encode("utf-8"))

    def error(self, status: HTTPStatus, message: str) -> Page:
        return self.render("error.html", status, status=status, message=message)

    # -------------------------------------------------------------------- pages

    def front(self) -> Page:
        stats = self.store.stats()
        latest = self.store.search(LATEST, limit=LATEST_RELEVANT)
        possible = self.store.search(LATEST_POSSIBLE, limit=LATEST_RELEVANT)
        unhealthy = sum(r.state != "ok" for r in self.store.health_records())
        return self.render("front.html", stats=stats, latest=[h.article for h in latest],
                           unhealthy=unhealthy,
                           possible=[h.article for h in possible],
                           sources=sorted(stats.by_source))

    def sources(self) -> Page:
        """Each source URL's health, worst first, and the time-to-alert figures."""
        since = datetime.now(UTC) - timedelta(days=LATENCY_DAYS)
        return self.render("sources.html", records=worst_first(self.store.health_records()),
                           latency=latency_report(self.store.delivery_timings(since)),
                           spans=LATENCY_SPANS, days=LATENCY_DAYS)

    def _form(self, params: dict[str, list[str]]) -> SearchForm:
        form = SearchForm(
            q=_param(params, "q"),
            lang=_param(params, "lang").strip(),
            relevant=_param(params, "relevant") not in ("", "0"),
            possible=_param(params, "possible") not in ("", "0"),
            source=_param(params, "source").strip(),
            since=_param(params, "since").strip(),
            until=_param(params, "until").strip(),
            sort=_param(params, "sort").strip() or "relevance",
        )
        if form.sort not in SORTS:
            raise BadRequest(f"Unknown sort {form.sort!r}: expected one of {', '.join(SORTS)}.")
        if len(form.q) > MAX_QUERY_CHARS:
            raise BadRequest(f"The query is longer than {MAX_QUERY_CHARS} characters.")
        if form.lang and form.lang not in self.languages:
            raise BadRequest(f"Unknown language {form.lang!r}: expected one of "
                             f"{', '.join(self.languages)}.")
        page = _param(params, "page").strip() or "1"
        if not page.isdigit() or int(page) < 1:
            raise BadRequest(f"Page {page!r}: pages are numbered from 1.")
        form.page = int(page)
        return form

    def rule_feed(self, name: str) -> Page:
        """The Atom feed of a rule: its newest matching stories (the file is read again
        each time, so an edited rule's feed follows it)."""
        rules = {r.name: r for r in load_rules(self.alerts)} if self.alerts else {}
        rule = rules.get(name)
        if rule is None:
            return self.error(HTTPStatus.NOT_FOUND, f"There is no alert rule {name!r}.")
        return self.feed(rule.query, feed_id=f"urn:dozor:rule:{rule.name}", title=rule.title,
                         subtitle=f"Dozor alert rule {rule.name}: {rule.spec.query}",
                         self_url=f"/rules/{rule.name}.atom")

    def search_feed(self, params: dict[str, list[str]]) -> Page:
        """Any search as an Atom feed of its newest matches: the search page's URL with
        /search.atom for /search (the page and sort parameters do not apply)."""
        form = self._form(params)
        form.page, form.sort = 1, "relevance"
        try:
            query = form.query()
        except QueryError as exc:
            raise BadRequest(str(exc)) from None
        address = form.url()
        return self.feed(query, feed_id=f"urn:dozor:search:{address}",
                         title=f"Dozor search: {form.q.strip() or address}",
                         subtitle=f"The newest matches of the Dozor search {address}",
                         self_url=form.url(path="/search.atom"), page_url=address)

    def feed(self, query: Query, *, feed_id: str, title: str, subtitle: str, self_url: str,
             page_url: str | None = None) -> Page:
        """An Atom feed of the newest FEED_ENTRIES articles `query` matches."""
        hits = self.store.search(query, limit=FEED_ENTRIES, sort="newest")
        articles = [h.article for h in hits]
        stamps = [a.published_at or a.stored_at or a.fetched_at for a in articles]
        updated = max([s for s in stamps if s] or [datetime.now(UTC)])
        body = self.env.get_template("feed.atom.xml").render(
            feed_id=feed_id, title=title, subtitle=subtitle, self_url=self_url,
            page_url=page_url, entries=list(zip(articles, stamps, strict=True)),
            updated=updated, now=datetime.now(UTC))
        return Page(HTTPStatus.OK, body.encode("utf-8"), "application/atom+xml; charset=utf-8")

    def search(self, params: dict[str, list[str]]) -> Page:
        form = self._form(params)
        context: dict[str, Any] = {
            "form": form,
            "sources": sorted(self.store.stats().by_source),
            "hits": [],
            "problem": None,
            "next_url": None,
            "prev_url": form.url(page=form.page - 1) if form.page > 1 else None,
            "asked": False,
            "summary": None,
        }
        if not form.asks():
            return self.render("search.html", **context)
        context["asked"] = True
        try:
            query, first, hits = self._stories(form)
        except QueryError as exc:
            context["problem"] = _problem(exc, form.q)
            return self.render("search.html", HTTPStatus.BAD_REQUEST, **context)
        context["hits"] = hit_views(hits[:PER_PAGE], first)
        if len(hits) > PER_PAGE:
            context["next_url"] = form.url(page=form.page + 1)
        summary = self.store.summarise(query)
        context["summary"] = summary
        context["facet_urls"] = _facet_urls(form, summary)
        context["export_urls"] = {fmt.value: form.url(path=path, page=1)
                                  for path, fmt in EXPORTS.items()}
        context["json_url"] = form.url(path="/search.json")
        context["feed_url"] = form.url(path="/search.atom", page=1, sort="")
        return self.render("search.html", **context)

    def _stories(self, form: SearchForm) -> tuple[Query, int, list[SearchHit]]:
        """The form's query, its page's first offset and the page's stories, copies
        collapsed, with one story beyond the page: it says whether there is a next one."""
        query = form.query()
        first = (form.page - 1) * PER_PAGE
        hits = self.store.search(query, limit=PER_PAGE + 1, offset=first, sort=form.sort,
                                 collapse=True)
        return query, first, hits

    def search_json(self, params: dict[str, list[str]]) -> Page:
        """The search page as JSON: the totals (stories, articles, copies), facets (of
        articles), the page's stories (export fields, rank, snippet, their copies) and the
        next page's URL."""
        form = self._form(params)
        try:
            query, first, hits = self._stories(form)
        except QueryError as exc:
            return _json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        summary = self.store.summarise(query)
        return _json(HTTPStatus.OK, {
            "query": query.text, "sort": form.sort, "page": form.page, "offset": first,
            "total": summary.stories, "articles": summary.total,
            "copies": summary.total - summary.stories, "facets": summary.facets,
            "hits": [{**h.article.export(), "rank": round(h.rank, 6), "snippet": h.snippet,
                      "query_terms": h.matched_terms, "page": f"/article/{h.article.id}",
                      "cluster": f"/cluster/{story_key(h.article)}",
                      "copies": [member_json(c) for c in h.copies]}
                     for h in hits[:PER_PAGE]],
            "next": form.url(path="/search.json", page=form.page + 1)
            if len(hits) > PER_PAGE else None,
        })

    def export(self, params: dict[str, list[str]], fmt: Format) -> Page:
        """The current search's every match, as `dozor export` writes it."""
        form = self._form(params)
        try:
            query = form.query()
        except QueryError as exc:
            raise BadRequest(str(exc)) from None
        out = io.StringIO()
        write_export(out, self.store.iter_articles(), query, fmt,
                     labels=self.store.labels())
        kind = "text/csv" if fmt is Format.csv else "application/x-ndjson"
        return Page(HTTPStatus.OK, out.getvalue().encode("utf-8"), f"{kind}; charset=utf-8",
                    [("Content-Disposition",
                      f'attachment; filename="dozor-export.{fmt.value}"')])

    def article_json(self, article_id: str) -> Page:
        article = self.store.get(article_id) if _ARTICLE_ID.fullmatch(article_id) else None
        if article is None:
            return _json(HTTPStatus.NOT_FOUND,
                         {"error": f"no stored article has the id {article_id}"})
        members = []
        if article.cluster_id:
            members = [m.id for m in self.store.cluster_members(article.cluster_id,
                                                                CLUSTER_LIMIT + 1)
                       if m.id != article.id][:CLUSTER_LIMIT]
        return _json(HTTPStatus.OK, {**article.export(), "possible": article.possible,
                                     "same_story": members})

    def cluster(self, name: str) -> Page:
        """Every article of a near-duplicate cluster (/cluster/<id>, or .json)."""
        cluster_id = name.removesuffix(".json")
        members = self.store.cluster_members(cluster_id, CLUSTER_PAGE) \
            if _ARTICLE_ID.fullmatch(cluster_id) else []
        if name.endswith(".json"):
            if not members:
                return _json(HTTPStatus.NOT_FOUND, {"error": f"no cluster has the id {cluster_id}"})
            return _json(HTTPStatus.OK, {"cluster_id": cluster_id, "articles": len(members),
                                         "members": [member_json(m) for m in members]})
        if not members:
            return self.error(HTTPStatus.NOT_FOUND, f"No cluster has the id {cluster_id}.")
        lead = next((m for m in members if m.id == cluster_id), members[0])
        return self.render("cluster.html", cluster_id=cluster_id, lead=lead, members=members,
                           limit=CLUSTER_PAGE)

    def article(self, article_id: str, params: dict[str, list[str]] | None = None) -> Page:
        article = self.store.get(article_id) if _ARTICLE_ID.fullmatch(article_id) else None
        if article is None:
            return self.error(HTTPStatus.NOT_FOUND, f"No stored article has the id {article_id}.")
        members = []
        if article.cluster_id:
            members = [m for m in self.store.cluster_members(article.cluster_id,
                                                             CLUSTER_LIMIT + 1)
                       if m.id != article.id][:CLUSTER_LIMIT]
        label = self.store.labels([article.id]).get(article.id)
        return self.render("article.html", article=article, also_in=members,
                           label=label_value(label), can_label=self.labeller is not None,
                           **self._timeline(article, params or {}))

    def archived(self, path: str, params: dict[str, list[str]]) -> Page:
        """An archived answer of the article (?record=<WARC-Record-ID>) as it was received,
        sandboxed; `<id>/archive.warc`: the WARC record itself, as a download."""
        article_id, _, kind = path.partition("/")
        article = self.store.get(article_id) if _ARTICLE_ID.fullmatch(article_id) else None
        if article is None:
            return self.error(HTTPStatus.NOT_FOUND, f"No stored article has the id {article_id}.")
        history = self._timeline(article, {})
        records = archived.article_records(article, history["versions"], history["events"])
        record_id = _param(params, "record")
        if record_id not in records:
            return self.error(HTTPStatus.NOT_FOUND,
                              f"The article has no archived record {record_id!r}.")
        if self.warc_dir is None:
            return self.error(HTTPStatus.NOT_FOUND, "This UI reads no WARC archive.")
        try:
            record = archived.read_record(archived.inside(records[record_id], self.warc_dir),
                                          record_id)
        except archived.ArchiveUnavailable as exc:
            return self.error(HTTPStatus.NOT_FOUND, f"The archived copy cannot be served: {exc}")
        name = f"dozor-{article.id[:12]}-{record_id.strip('<>').rsplit(':', 1)[-1][:12]}"
        if kind == "archive.warc":
            return Page(HTTPStatus.OK, record.raw, "application/warc", [
                ("Content-Disposition", f'attachment; filename="{name}.warc"')])
        shown = archived.shown_type(record.content_type)
        disposition = "inline" if shown else "attachment"
        return Page(HTTPStatus.OK, record.body, shown or "application/octet-stream", [
            ("Content-Security-Policy", ARCHIVED_POLICY),
            ("Content-Disposition", f'{disposition}; filename="{name}"')])

    def label(self, environ: WSGIEnvironment, article_id: str) -> Page:
        """The one write: an analyst's relevant / not relevant label, or its removal.
        Only a form of this UI's own pages may post it (same origin), so another site
        open in the browser cannot label stories."""
        if not _same_origin(environ):
            return self.error(HTTPStatus.FORBIDDEN,
                              "A label is set from this UI's own article page only.")
        if self.labeller is None:
            return self.error(HTTPStatus.METHOD_NOT_ALLOWED, "This UI does not record labels.")
        try:
            size = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0
        form = parse_qs(environ["wsgi.input"].read(min(size, 1024)).decode("utf-8", "replace"))
        value = _param(form, "label")
        if value not in LABEL_VALUES:
            return self.error(HTTPStatus.BAD_REQUEST,
                              f"label must be one of {', '.join(LABEL_VALUES)}.")
        if not _ARTICLE_ID.fullmatch(article_id) or self.store.get(article_id) is None:
            return self.error(HTTPStatus.NOT_FOUND, f"No stored article has the id {article_id}.")
        with self.labeller() as labels:
            labels.set_label(article_id, LABEL_VALUES[value])
        return Page(HTTPStatus.SEE_OTHER, b"", headers=[("Location", f"/article/{article_id}")])

    def _timeline(self, article: Article, params: dict[str, list[str]]) -> dict[str, Any]:
        """The article's versions and events, and the word-level diff between the two
        versions asked for (?a=&b=; default: the last two)."""
        if not isinstance(self.store, History):
            return {"versions": [], "events": [], "diff": None}
        versions = self.store.versions(article.id)
        events = self.store.events(article.id)
        diff = None
        if len(versions) > 1:
            numbers = [v.version for v in versions]

            def pick(name: str, default: int) -> int:
                value = _param(params, name).strip()
                return int(value) if value.isdigit() and int(value) in numbers else default

            a, b = pick("a", numbers[-2]), pick("b", numbers[-1])
            old, new = versions[numbers.index(a)], versions[numbers.index(b)]
            diff = {"a": a, "b": b, "title": word_diff(old.title, new.title),
                    "text": word_diff(old.text, new.text),
                    "share": share_changed(old.text, new.text)}
        return {"versions": versions, "events": events, "diff": diff}


def _same_origin(environ: WSGIEnvironment) -> bool:
    """The request's Origin (else its Referer) names the host it was sent to."""
    source = environ.get("HTTP_ORIGIN") or environ.get("HTTP_REFERER") or ""
    host = environ.get("HTTP_HOST") or ""
    return bool(host) and urlsplit(source).netloc == host


def _json(status: HTTPStatus, doc: dict[str, Any]) -> Page:
    return Page(status, json.dumps(doc, ensure_ascii=False).encode("utf-8"),
                "application/json; charset=utf-8")


FacetRow = tuple[str, int, str | None]


def _facet_urls(form: SearchForm, summary: SearchSummary) -> dict[str, list[FacetRow]]:
    """Per facet, (value, count, the search narrowed to it or None): language and source
    narrow through the form's own fields, relevance through its checkboxes, an event by
    `event:` added to the query."""
    out: dict[str, list[FacetRow]] = {}
    for name, counts in summary.facets.items():
        rows: list[FacetRow] = []
        for value, count in counts.items():
            narrowed: dict[str, Any] | None = None
            if name in ("lang", "source"):
                narrowed = {name: value}
            elif name == "relevance" and value in ("relevant", "possible"):
                narrowed = {value: "1"}
            elif name == "event":
                narrowed = {"q": f"({form.q.strip()}) AND event:{value}" if form.q.strip()
                            else f"event:{value}"}
            rows.append((value, count, form.url(page=1, **narrowed) if narrowed else None))
        out[name] = rows
    return out


def _problem(exc: QueryError, q: str) -> QueryProblem:
    problem = QueryProblem(message=str(exc))
    if exc.text == q:
        problem.before = q[: exc.offset]
        problem.at = q[exc.offset : exc.offset + 1]
        problem.after = q[exc.offset + 1 :]
    return problem

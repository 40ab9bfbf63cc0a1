"""Hostile and broken input met while crawling, in real crawls of a site on 127.0.0.1:
malformed links, redirects out of the source's domains, redirect loops, over-long URLs,
endless sitemap-index chains, slow-drip pages and servers asking to retry later. Each
is handled on its own, counted and named, and never empties a feed or holds the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crawler.spiders.base import SourceScope
from pipelines.config.sources import Source, load_sources
from pipelines.errors import ConfigError
from pipelines.urls import canonicalize
from tests.support.crawl_harness import Outcome, launch, write_sources
from tests.support.httpserver import NewsServer

ALLOW = {"DOZOR_ALLOWED_NETWORKS": "127.0.0.1/32"}


def _article(title: str) -> str:
    return (f"<html lang='en'><head><title>{title}</title></head><body><article><h1>{title}"
            f"</h1><p>{title}. " + "The council met on Tuesday. " * 30 + "</p></article>"
            "</body></html>")


def _rss(links: list[str]) -> str:
    items = "".join(f"<item><title>t</title><link>{u.replace('&', '&amp;')}</link></item>"
                    for u in links)
    return ('<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
            f"{items}</channel></rss>")


class TimedServer(NewsServer):
    """Also remembers when each path was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.times: dict[str, list[float]] = {}
        self._times_lock = threading.Lock()

    def respond(self, path: str):  # type: ignore[override]
        with self._times_lock:
            self.times.setdefault(path, []).append(time.monotonic())
        return super().respond(path)


@dataclass
class Hostile:
    server: NewsServer
    out: Outcome


SITEMAP_CHAIN = 8  # an index pointing at an index pointing at ... 8 levels down


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    work = tmp_path_factory.mktemp("hostile")
    server = NewsServer().start()
    try:
        base, port = server.base, server.port
        server.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        for name in ("good-1", "good-2", "good-3", "after-loop"):
            server.add(f"/news/{name}.html", _article(name))
        # redirects: one elsewhere (localhost is another host than 127.0.0.1), one home
        server.redirect("/news/away.html", f"http://localhost:{port}/news/good-3.html", 302)
        server.redirect("/news/moved.html", "/news/good-3.html", 301)
        for i in range(1, 4):  # 1 -> 2 -> 3 -> 1
            server.redirect(f"/news/loop-{i}.html", f"/news/loop-{i % 3 + 1}.html", 302)
        long_url = f"{base}/news/{'x' * 2100}.html"
        server.add("/rss.xml", _rss([
            f"{base}/news/good-1.html",
            "http://127.0.0.1:99999/news/bad-port.html",
            "http://127.0.0.1:-1/news/negative-port.html",
            "http://127.0.0.1:8701:80/news/two-ports.html",
            f"{base}/news/good-2.html",
            f"{base}/news/away.html",
            f"{base}/news/moved.html",
            f"{base}/news/loop-1.html",
            long_url,
            f"{base}/news/after-loop.html",
        ]), "application/rss+xml")
        for level in range(SITEMAP_CHAIN):
            server.add(f"/sitemap-{level}.xml", f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>{base}/sitemap-{level + 1}.xml</loc></sitemap>
<sitemap><loc>http://127.0.0.1:99999/sitemap-bad.xml</loc></sitemap>
</sitemapindex>""", "application/xml")
        server.add(f"/sitemap-{SITEMAP_CHAIN}.xml", "<urlset/>", "application/xml")
        sources = write_sources(work / "sources.yaml", [
            {"name": "hostile", "feeds": [server.url("/rss.xml")],
             "sitemaps": [server.url("/sitemap-0.xml")]}])
        out = launch("crawl", work, "--sources", str(sources), "--db", str(work / "s.db"),
                     env=ALLOW, crawl_settings={"sitemap_depth": 3})
        yield Hostile(server, out)
    finally:
        server.stop()


def test_malformed_links_are_dropped_one_by_one_and_the_rest_fetched(hostile: Hostile) -> None:
    out = hostile.out
    fetched = sorted(p["final_url"].rsplit("/", 1)[1] for p in out.pages)
    assert fetched == ["after-loop.html", "good-1.html", "good-2.html", "good-3.html"]
    # three bad ports in the feed, one in each of the 4 sitemap indexes read
    assert out.figures["bad_links"] == 3 + 4
    for bad in ("http://127.0.0.1:99999/news/bad-port.html",
                "http://127.0.0.1:-1/news/negative-port.html",
                "http://127.0.0.1:8701:80/news/two-ports.html"):
        assert f"hostile: dropped {bad}: not a usable URL" in out.log, bad


def test_a_redirect_out_of_the_source_is_not_followed_and_is_named(hostile: Hostile) -> None:
    out, server = hostile.out, hostile.server
    assert server.fetched("/news/away.html") == 1
    assert out.figures["offsite_redirects"] == 1
    assert f"to http://localhost:{server.port}/news/good-3.html, outside hostile's domains" \
        in out.log
    # good-3 came through the in-scope redirect, once, under its own URL
    assert [p["url"] for p in out.pages if p["final_url"].endswith("good-3.html")] == \
        [server.url("/news/moved.html")]


def test_redirect_loops_and_over_long_urls_are_counted_and_named(hostile: Hostile) -> None:
    out = hostile.out
    assert out.figures["redirect_loops"] == 1
    hops = " -> ".join(hostile.server.url(f"/news/loop-{i}.html") for i in (1, 2, 3, 1))
    assert f"hostile: dropped {hostile.server.url('/news/loop-1.html')}: redirect loop: " \
        f"{hops}" in out.log
    assert out.figures["too_long"] == 1
    assert "longer than 2083 characters" in out.log


def test_sitemap_index_chains_stop_at_the_depth_bound_and_say_so(hostile: Hostile) -> None:
    server, out = hostile.server, hostile.out
    assert [server.fetched(f"/sitemap-{i}.xml") for i in range(SITEMAP_CHAIN + 1)] == \
        [1, 1, 1, 1, 0, 0, 0, 0, 0]
    assert out.figures["sitemap_bounds"] == 1
    assert "sitemap index nested deeper than 3 levels (crawl.sitemap_depth)" in out.log


def test_sitemaps_per_source_bound(news_server: NewsServer, tmp_path: Path) -> None:
    base = news_server.base
    children = "".join(f"<sitemap><loc>{base}/child-{i}.xml</loc></sitemap>" for i in range(9))
    news_server.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    news_server.add("/index.xml", '<?xml version="1.0"?><sitemapindex xmlns='
                    f'"http://www.sitemaps.org/schemas/sitemap/0.9">{children}</sitemapindex>',
                    "application/xml")
    for i in range(9):
        news_server.add(f"/child-{i}.xml", "<urlset/>", "application/xml")
    sources = write_sources(tmp_path / "sources.yaml",
                            [{"name": "wide", "sitemaps": [news_server.url("/index.xml")]}])
    out = launch("crawl", tmp_path, "--sources", str(sources), "--db", str(tmp_path / "s.db"),
                 env=ALLOW, crawl_settings={"sitemaps_per_source": 4})
    assert sum(news_server.fetched(f"/child-{i}.xml") for i in range(9)) == 4
    assert out.figures["sitemap_bounds"] == 5
    assert "more than 4 sitemaps this run (crawl.sitemaps_per_source)" in out.log


def test_a_source_time_budget_ends_slow_drip_pages(tmp_path: Path) -> None:
    """Three pages that take 20 s each (the download timeout allows 20 s, and two
    retries) cannot hold the run: the source's 3 s budget cuts them off."""
    with NewsServer() as server:
        server.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        server.add("/news/quick.html", _article("quick"))
        links = [server.url("/news/quick.html")]
        for i in range(3):
            server.add(f"/news/slow-{i}.html", _article(f"slow {i}"), delay=20)
            links.append(server.url(f"/news/slow-{i}.html"))
        server.add("/rss.xml", _rss(links), "application/rss+xml")
        sources = write_sources(tmp_path / "sources.yaml",
                                [{"name": "drip", "feeds": [server.url("/rss.xml")]}])
        started = time.monotonic()
        out = launch("crawl", tmp_path, "--sources", str(sources), "--db",
                     str(tmp_path / "s.db"), env=ALLOW,
                     crawl_settings={"source_budget": 3, "download_timeout": 20,
                                     "retry_times": 2, "concurrent_requests_per_domain": 4})
        took = time.monotonic() - started
    assert [p["final_url"] for p in out.pages] == [server.url("/news/quick.html")]
    assert took < 15, took
    assert out.figures["over_budget"] >= 1
    assert "drip's time budget of 3 s for this run is spent" in out.log


def test_retry_after_is_honoured_and_retries_back_off(tmp_path: Path) -> None:
    with TimedServer() as server:
        server.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        server.add("/news/busy.html", "busy", "text/plain", status=503,
                   headers={"Retry-After": "3"})
        server.add("/news/limited.html", "slow down", "text/plain", status=429,
                   headers={"Retry-After": "2"})
        server.add("/news/broken.html", "oops", "text/plain", status=500)
        paths = ["/news/busy.html", "/news/limited.html", "/news/broken.html"]
        server.add("/rss.xml", _rss([server.url(p) for p in paths]), "application/rss+xml")
        sources = write_sources(tmp_path / "sources.yaml",
                                [{"name": "busy", "feeds": [server.url("/rss.xml")]}])
        launch("crawl", tmp_path, "--sources", str(sources), "--db", str(tmp_path / "s.db"),
               env=ALLOW, crawl_settings={"retry_times": 2})
        times = {p: server.times[p] for p in paths}

    def gaps(path: str) -> list[float]:
        t = times[path]
        return [b - a for a, b in zip(t, t[1:], strict=False)]

    assert [len(times[p]) for p in paths] == [3, 3, 3]  # the first try and two retries
    assert all(g >= 2.9 for g in gaps("/news/busy.html")), gaps("/news/busy.html")
    assert all(g >= 1.9 for g in gaps("/news/limited.html")), gaps("/news/limited.html")
    broken = gaps("/news/broken.html")  # 1 s, then 2 s
    assert broken[0] >= 0.9 and broken[1] >= 1.9 and broken[1] > broken[0], broken


def test_scope_compares_internationalised_domains_in_one_form() -> None:
    source = Source(name="rf", feeds=["https://пример.рф/rss"], allowed_domains=["Тест.РФ"])
    scope = SourceScope(source)
    for link in ("https://пример.рф/новости/1", "https://news.xn--e1afmkfd.xn--p1ai/a",
                 "https://тест.рф/b"):
        assert scope.allows(canonicalize(link)), link
    assert not scope.allows(canonicalize("https://другой.рф/a"))


def test_a_bad_url_in_the_sources_file_names_the_field(tmp_path: Path) -> None:
    path = write_sources(tmp_path / "sources.yaml", [
        {"name": "ok", "feeds": ["https://example.org/rss"]},
        {"name": "broken", "feeds": ["https://example.org/rss", "http://[::1/f"]}])
    with pytest.raises(ConfigError) as caught:
        load_sources(path)
    message = str(caught.value)
    assert "sources[1] (broken) → feeds" in message
    assert "not a usable URL: 'http://[::1/f'" in message
    for port in ("99999", "-1"):
        write_sources(path, [{"name": "p", "sitemaps": [f"http://example.org:{port}/s.xml"]}])
        with pytest.raises(ConfigError, match=r"sources\[0\] \(p\) → sitemaps"):
            load_sources(path)

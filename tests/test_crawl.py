"""Real crawls of a news site served on 127.0.0.1, into a real SQLite store.

One site carries every case (feeds in three formats, a sitemap index with a Google News
sitemap and a gzipped sitemap, a listing page, redirects, a loop, errors, a slow page,
robots.txt, a PDF, a gzip bomb, hostile feeds, old and offsite entries). It is crawled
twice in subprocesses; each test checks one behaviour on the pages the crawler handed
to the stages, the figures it returned and the server's request log.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.store import open_store
from tests.support.crawl_harness import Outcome, launch, write_sources
from tests.support.httpserver import NewsServer

NOW = datetime.now(UTC).replace(microsecond=0)
RECENT = NOW - timedelta(hours=3)
# a timeout well above what a busy machine needs to answer a local request: with 1 s, a
# stalled reactor once timed the 500 page out before it reached the server
CRAWL = {"download_timeout": 3}
SLOW_DELAY = 6.0  # beyond the timeout, so the slow page times out on every try
OLD = NOW - timedelta(days=60)

# final paths of the pages the first crawl must hand over, and how they were found
# (ru-1 is linked from the RSS feed and the listing: whichever is read first wins)
EXPECTED = {
    "/news/ru-1.html": "feed|listing",
    "/news/moved.html": "feed",
    "/news/uk-1.html": "feed",
    "/news/en-1.html": "feed",
    "/news/en-2.html": "sitemap",
    "/news/gz-1.html": "sitemap",
    "/news/listing-1.html": "listing",
}


def _article(title: str, lang: str) -> str:
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}'
            f"</title></head><body><nav>Menu</nav><article><h1>{title}</h1><p>{title}. "
            + "Body text. " * 40 + "</p></article></body></html>")


def _rfc822(when: datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S +0000")


def _gzip_bomb(megabytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    chunk = b"\0" * (1024 * 1024)
    return b"".join(packer.compress(chunk) for _ in range(megabytes)) + packer.flush()


def build_site(server: NewsServer) -> None:
    base = server.base
    server.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    for path in EXPECTED:
        lang = {"ru": "ru", "uk": "uk"}.get(path.split("/")[-1][:2], "en")
        server.add(path, _article(f"Article {path}", lang))
    server.redirect("/news/old-address.html", "/news/moved.html")
    for i in range(1, 9):  # a ring of redirects: 1 -> 2 -> ... -> 8 -> 1
        server.redirect(f"/news/loop-{i}.html", f"/news/loop-{i % 8 + 1}.html", status=302)
    server.add("/news/broken.html", "<html><body>oops</body></html>", status=500)
    server.add("/news/slow.html", _article("Slow", "en"), delay=SLOW_DELAY)
    server.add("/news/report.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "application/pdf")
    server.add("/news/bomb.html", _gzip_bomb(64), headers={"Content-Encoding": "gzip"})
    server.add("/private/draft.html", _article("Draft", "en"))
    server.add("/news/too-old.html", _article("Old", "en"))

    items = [
        ("Ru one", f"{base}/news/ru-1.html?utm_source=rss&utm_medium=feed", RECENT),
        ("Ru one again", "/news/ru-1.html?utm_campaign=spring#comments", RECENT),
        ("Moved", "/news/old-address.html", RECENT),
        ("Draft", "/private/draft.html", RECENT),
        ("Missing", "/news/missing.html", RECENT),
        ("Broken", "/news/broken.html", RECENT),
        ("Slow", "/news/slow.html", RECENT),
        ("PDF", "/news/report.pdf", RECENT),
        ("Bomb", "/news/bomb.html", RECENT),
        ("Loop", "/news/loop-1.html", RECENT),
        ("Old", "/news/too-old.html", OLD),
        ("Elsewhere", "https://elsewhere.example/news/x.html", RECENT),
        ("Local file", "file:///etc/passwd", RECENT),
    ]
    rss_items = "".join(f"<item><title>{t}</title><link>{u.replace('&', '&amp;')}</link>"
                        f"<pubDate>{_rfc822(d)}</pubDate></item>" for t, u, d in items)
    server.add("/feeds/rss.xml", f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0">'
               f"<channel><title>Wire</title><language>ru</language>{rss_items}</channel></rss>",
               "application/rss+xml")
    server.add("/feeds/atom.xml", f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="uk"><title>Стрічка</title><id>urn:f</id>
<entry><title>Помилувані повертаються</title><id>urn:uk-1</id>
<link href="{base}/news/uk-1.html"/><published>{RECENT.isoformat()}</published>
<updated>{NOW.isoformat()}</updated></entry></feed>""", "application/atom+xml")
    server.add("/feeds/rdf.xml", f"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="{base}/"><title>RDF</title><link>{base}/</link>
<dc:language>en</dc:language></channel>
<item rdf:about="{base}/news/en-1.html"><title>English one</title>
<link>{base}/news/en-1.html</link><dc:date>{RECENT.isoformat()}</dc:date></item>
</rdf:RDF>""", "application/rdf+xml")
    server.add("/sitemap-index.xml", f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>{base}/sitemap-news.xml</loc><lastmod>{NOW.isoformat()}</lastmod></sitemap>
<sitemap><loc>{base}/sitemap-2.xml.gz</loc></sitemap>
<sitemap><loc>{base}/sitemap-2019.xml</loc><lastmod>{OLD.isoformat()}</lastmod></sitemap>
</sitemapindex>""", "application/xml")
    server.add("/sitemap-news.xml", f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
 xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
<url><loc>{base}/news/en-2.html</loc><news:news>
<news:publication><news:name>Wire</news:name><news:language>en</news:language></news:publication>
<news:publication_date>{RECENT.isoformat()}</news:publication_date>
<news:title>Convicts return from the front</news:title></news:news></url>
</urlset>""", "application/xml")
    server.add("/sitemap-2.xml.gz", gzip.compress(f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>{base}/news/gz-1.html</loc><lastmod>{NOW.date().isoformat()}</lastmod></url>
</urlset>""".encode()), "application/x-gzip")
    server.add("/sitemap-2019.xml", "<urlset/>", "application/xml")
    server.add("/section/", f"""<html><body><nav><a href="/">Home</a>
<a href="/category/politics/">Politics</a><a href="/tag/wagner">Wagner</a>
<a href="/section/page/2">Next</a></nav>
<a href="/news/listing-1.html">A story</a><a href="{base}/news/ru-1.html?utm_source=section">Dup</a>
<a href="/static/photo.jpg">Photo</a></body></html>""")
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    server.add("/feeds/lol.xml", f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{lol}]>'
               '<rss version="2.0"><channel><title>&l9;</title><item><link>'
               f"{base}/news/lol.html</link></item></channel></rss>", "application/rss+xml")
    server.add("/feeds/xxe.xml", f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM '
               f'"{base}/secret.txt">]><rss version="2.0"><channel><title>&x;</title><item>'
               f"<link>{base}/news/xxe.html</link></item></channel></rss>", "application/rss+xml")
    server.add("/secret.txt", "secret", "text/plain")


@dataclass
class TwoCrawls:
    server: NewsServer
    first: Outcome
    second: Outcome
    fetched_after_first: dict[str, int]
    db: Path
    warc_dir: Path


@pytest.fixture(scope="module")
def crawls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoCrawls]:
    work = tmp_path_factory.mktemp("crawl")
    server = NewsServer().start()
    try:
        build_site(server)
        sources = write_sources(work / "sources.yaml", [{
            "name": "wire",
            "lang": "ru",
            "feeds": [server.url(p) for p in ("/feeds/rss.xml", "/feeds/atom.xml",
                                              "/feeds/rdf.xml", "/feeds/lol.xml",
                                              "/feeds/xxe.xml")],
            "sitemaps": [server.url("/sitemap-index.xml")],
            "listings": [server.url("/section/")],
        }])
        db = work / "store.db"
        args = ("--sources", str(sources), "--db", str(db))
        env = {"DOZOR_ALLOWED_NETWORKS": "127.0.0.1/32"}
        first = launch("crawl", work, *args, env=env, crawl_settings=CRAWL)
        counts = {p: server.fetched(p) for p in set(server.requests)}
        second = launch("crawl", work, *args, env=env, crawl_settings=CRAWL)
        yield TwoCrawls(server, first, second, counts, db, work / "data" / "warc")
    finally:
        server.stop()


def test_every_reachable_article_becomes_one_page(crawls: TwoCrawls) -> None:
    first = crawls.first
    finals = sorted(p["final_url"].removeprefix(crawls.server.base) for p in first.pages)
    assert finals == sorted(EXPECTED)
    for path, via in EXPECTED.items():
        page = first.page(path)
        assert page["discovered_via"] in via.split("|") and page["status"] == 200
        assert page["source"] == "wire" and page["source_lang"] == "ru"
        assert page["content_type"] == "text/html"
    assert first.figures["pages"] == len(EXPECTED)
    assert first.figures["batches"] == 3 and first.figures["batches_failed"] == 0
    assert first.figures["batch_sizes"] == [3, 3, 1]  # batch_size 3, the rest flushed at close


def test_tracking_parameters_and_fragments_are_dropped_before_scheduling(
        crawls: TwoCrawls) -> None:
    page = crawls.first.page("/news/ru-1.html")
    assert page["url"] == crawls.server.url("/news/ru-1.html")
    # linked three times (two feed items, the listing), with different tracking parameters
    assert crawls.fetched_after_first["/news/ru-1.html"] == 1
    assert not any("utm_" in p for p in crawls.server.requests)


def test_redirect_is_followed_and_the_final_url_recorded(crawls: TwoCrawls) -> None:
    page = crawls.first.page("/news/moved.html")
    assert page["url"] == crawls.server.url("/news/old-address.html")
    assert page["final_url"] == crawls.server.url("/news/moved.html")
    assert crawls.first.figures["responses_3xx"] >= 1


def test_redirect_loop_ends_after_redirect_max_times(crawls: TwoCrawls) -> None:
    hops = sum(crawls.fetched_after_first.get(f"/news/loop-{i}.html", 0) for i in range(1, 9))
    assert 1 <= hops <= 6  # the first request and at most REDIRECT_MAX_TIMES (5) redirects
    # named in the run's summary, not only in Scrapy's debug log
    assert crawls.first.figures["redirect_loops"] == 1
    assert "wire: dropped " in crawls.first.log
    assert "/news/loop-1.html: redirect loop, or a chain longer than 5 hops" in crawls.first.log
    assert not any("loop" in p["final_url"] for p in crawls.first.pages)


def test_http_errors_and_timeouts_are_counted_and_retried(crawls: TwoCrawls) -> None:
    figures, fetched = crawls.first.figures, crawls.fetched_after_first
    assert fetched["/news/missing.html"] == 1  # 404 is not retried
    assert fetched["/news/broken.html"] == 2  # 500: first try + retry_times (1)
    assert fetched["/news/slow.html"] == 2  # timed out twice (download_timeout 3 s)
    assert figures["responses_4xx"] >= 1 and figures["responses_5xx"] == 2
    # missing, broken, slow (timeout) and the gzip bomb; the redirect loop is counted apart
    assert figures["errors"] == 4
    assert "HTTP 404" in crawls.first.log and "HTTP 500" in crawls.first.log
    assert "TimeoutError" in crawls.first.log


def test_robots_txt_is_obeyed(crawls: TwoCrawls) -> None:
    assert crawls.fetched_after_first.get("/private/draft.html", 0) == 0
    assert crawls.fetched_after_first["/robots.txt"] == 1
    assert crawls.first.figures["robots_forbidden"] == 1


def test_non_html_is_archived_not_processed(crawls: TwoCrawls) -> None:
    assert crawls.fetched_after_first["/news/report.pdf"] == 1
    assert crawls.first.figures["non_html"] == 1
    assert not any(p["final_url"].endswith(".pdf") for p in crawls.first.pages)
    # fetched once, never an article: not fetched again on the second run
    assert crawls.server.fetched("/news/report.pdf") == 1


def test_gzip_bomb_is_bounded_by_download_maxsize(crawls: TwoCrawls) -> None:
    assert crawls.fetched_after_first["/news/bomb.html"] == 1
    assert "exceeded DOWNLOAD_MAXSIZE" in crawls.first.log
    assert not any("bomb" in p["final_url"] for p in crawls.first.pages)


def test_hostile_feeds_are_refused_and_their_entities_never_fetched(crawls: TwoCrawls) -> None:
    assert crawls.first.figures["unsafe_xml"] == 2
    assert crawls.fetched_after_first.get("/secret.txt", 0) == 0
    assert crawls.fetched_after_first.get("/news/lol.html", 0) == 0
    assert "EntitiesForbidden" in crawls.first.log


def test_old_offsite_and_non_http_entries_are_not_fetched(crawls: TwoCrawls) -> None:
    figures = crawls.first.figures
    assert crawls.fetched_after_first.get("/news/too-old.html", 0) == 0
    assert crawls.fetched_after_first.get("/sitemap-2019.xml", 0) == 0  # old child sitemap
    assert figures["too_old"] == 1
    assert figures["offsite"] == 2  # elsewhere.example and file:///etc/passwd


def test_feed_and_sitemap_hints_reach_the_page(crawls: TwoCrawls) -> None:
    ru = crawls.first.page("/news/ru-1.html")
    if ru["discovered_via"] == "feed":
        assert ru["feed_title"] in ("Ru one", "Ru one again") and ru["feed_lang"] == "ru"
        assert datetime.fromisoformat(ru["feed_published"]) == RECENT
    uk = crawls.first.page("/news/uk-1.html")
    assert (uk["feed_title"], uk["feed_lang"]) == ("Помилувані повертаються", "uk")
    assert datetime.fromisoformat(uk["feed_published"]) == RECENT  # <published>, not <updated>
    en1 = crawls.first.page("/news/en-1.html")
    assert (en1["feed_lang"], datetime.fromisoformat(en1["feed_published"])) == ("en", RECENT)
    news = crawls.first.page("/news/en-2.html")
    assert (news["feed_title"], news["feed_lang"]) == ("Convicts return from the front", "en")
    assert datetime.fromisoformat(news["feed_published"]) == RECENT
    gz = crawls.first.page("/news/gz-1.html")
    assert datetime.fromisoformat(gz["feed_published"]).date() == NOW.date()
    listed = crawls.first.page("/news/listing-1.html")
    assert listed["feed_title"] == "A story" and listed["feed_published"] is None


def test_listing_follows_article_links_only(crawls: TwoCrawls) -> None:
    for nav in ("/category/politics/", "/tag/wagner", "/section/page/2", "/static/photo.jpg"):
        assert crawls.fetched_after_first.get(nav, 0) == 0, nav
    assert crawls.fetched_after_first.get("/", 0) == 0


def test_second_run_fetches_no_stored_article(crawls: TwoCrawls) -> None:
    second = crawls.second
    assert second.pages == []
    assert second.figures["seen_skipped"] >= len(EXPECTED)
    for path in [*EXPECTED, "/news/old-address.html"]:
        assert crawls.server.fetched(path) == crawls.fetched_after_first[path], path
    # feeds and sitemaps are read again, that is how new stories are found
    assert crawls.server.fetched("/feeds/rss.xml") == 2
    store = open_store(db=crawls.db)
    try:
        expected_urls = {crawls.server.url(p) for p in EXPECTED}
        assert store.seen(expected_urls) == expected_urls
    finally:
        store.close()


def test_every_response_is_archived(crawls: TwoCrawls) -> None:
    for page in crawls.first.pages:
        assert page["warc_record_id"].startswith("<urn:uuid:")
        assert Path(page["warc_file"]).parent == crawls.warc_dir
    figures = crawls.first.figures
    # every response that reached Dozor's middlewares (errors, redirects, robots.txt too)
    responses = sum(figures[f"responses_{c}xx"] for c in "2345")
    assert figures["archived"] == responses
    assert len(list(crawls.warc_dir.glob("*.warc.gz"))) == 2  # one file per run

"""Feed and sitemap parsing: every format the sources use, and hostile XML refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from crawler.feeds import NotAFeed, UnsafeXML, check_safe_xml, parse_feed, parse_sitemap
from tests.support.httpserver import NewsServer

RSS2 = """<?xml version="1.0" encoding="windows-1251"?>
<rss version="2.0"><channel><title>Лента</title><language>ru-RU</language>
<item><title>Заключённых вербуют</title><link>/news/1.html?utm_source=rss</link>
  <pubDate>Tue, 02 Jan 2024 10:00:00 +0300</pubDate></item>
<item><title>Без даты</title><link>https://example.org/news/2.html</link></item>
<item><title>Без ссылки</title></item>
</channel></rss>""".encode("windows-1251")

RDF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
  xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://example.org/"><title>X</title><link>https://example.org/</link>
  <dc:language>uk</dc:language></channel>
<item rdf:about="https://example.org/uk/3.html"><title>Article</title>
  <link>https://example.org/uk/3.html</link><dc:date>2024-01-03T10:00:00+02:00</dc:date></item>
</rdf:RDF>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><title>A</title><id>urn:a</id>
<entry><title>Convicts sign contracts</title><id>urn:x</id>
  <link rel="alternate" href="https://example.org/en/4.html"/>
  <updated>2024-01-04T12:00:00Z</updated><published>2024-01-04T09:00:00Z</published></entry>
<entry><title>Only updated</title><id>https://example.org/en/5.html</id>
  <updated>2024-01-05T12:00:00Z</updated></entry>
</feed>"""

NEWS_SITEMAP = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
  xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"
  xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
<url>
  <image:image><image:loc>https://cdn.example.org/photo.jpg</image:loc></image:image>
  <loc>https://example.org/news/6.html</loc>
  <news:news>
    <news:publication><news:name>Example</news:name><news:language>ru</news:language>
    </news:publication>
    <news:publication_date>2024-01-06T10:00:00+03:00</news:publication_date>
    <news:title>Помилованные вернулись</news:title>
  </news:news>
</url>
<url><loc>https://example.org/news/7.html</loc><lastmod>2024-01-07</lastmod></url>
<url><lastmod>2024-01-07</lastmod></url>
</urlset>""".encode()

SITEMAP_INDEX = b"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>https://example.org/sitemap-1.xml</loc><lastmod>2024-01-01T00:00:00Z</lastmod>
</sitemap>
<sitemap><loc>https://example.org/sitemap-2.xml.gz</loc></sitemap>
</sitemapindex>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><link>https://example.org/lol.html</link></item></channel></rss>"""


def _external(kind: str, url: str) -> bytes:
    """A document whose DTD pulls in `url`: as a general or a parameter entity."""
    if kind == "general":
        doctype = f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{url}">]>'
        title = "&xxe;"
    else:
        doctype = f'<!DOCTYPE rss [<!ENTITY % remote SYSTEM "{url}"> %remote;]>'
        title = "t"
    return (f'<?xml version="1.0"?>{doctype}<rss version="2.0"><channel><title>{title}</title>'
            '<item><link>https://example.org/x.html</link></item></channel></rss>').encode()


def test_rss2_entries_with_dates_titles_language_and_relative_links() -> None:
    feed = parse_feed(RSS2, "https://example.org/rss.xml", "application/rss+xml")
    assert feed.kind == "rss20" and feed.lang == "ru"
    first, second = feed.entries
    assert first.url == "https://example.org/news/1.html?utm_source=rss"
    assert first.title == "Заключённых вербуют"
    assert first.published == datetime(2024, 1, 2, 7, 0, tzinfo=UTC)
    assert (second.url, second.published, second.lang) == (
        "https://example.org/news/2.html", None, "ru")
    assert feed.newest == first.published


def test_rss1_rdf_entries() -> None:
    feed = parse_feed(RDF, "https://example.org/index.rdf")
    assert feed.kind == "rss10" and feed.lang == "uk"
    [entry] = feed.entries
    assert entry.url == "https://example.org/uk/3.html"
    assert entry.published == datetime(2024, 1, 3, 8, 0, tzinfo=UTC)


def test_atom_entries_prefer_published_and_fall_back_to_url_ids() -> None:
    feed = parse_feed(ATOM, "https://example.org/atom.xml")
    assert feed.kind == "atom10" and feed.lang == "en"
    first, second = feed.entries
    assert (first.url, first.title) == ("https://example.org/en/4.html", "Convicts sign contracts")
    assert first.published == datetime(2024, 1, 4, 9, 0, tzinfo=UTC)
    assert second.url == "https://example.org/en/5.html"
    assert second.published == datetime(2024, 1, 5, 12, 0, tzinfo=UTC)


def test_google_news_sitemap_gives_publication_date_title_and_language() -> None:
    sitemap = parse_sitemap(NEWS_SITEMAP)
    assert sitemap.kind == "urlset" and sitemap.sitemaps == []
    news, plain = sitemap.entries  # the <url> without <loc> is skipped
    assert news.url == "https://example.org/news/6.html"  # not the image's <image:loc>
    assert news.published == datetime(2024, 1, 6, 7, 0, tzinfo=UTC)
    assert (news.title, news.lang) == ("Помилованные вернулись", "ru")
    assert plain.published == datetime(2024, 1, 7, tzinfo=UTC)  # lastmod, date only


def test_sitemap_index_lists_child_sitemaps() -> None:
    index = parse_sitemap(SITEMAP_INDEX)
    assert index.kind == "sitemapindex" and index.entries == []
    assert [s.url for s in index.sitemaps] == ["https://example.org/sitemap-1.xml",
                                               "https://example.org/sitemap-2.xml.gz"]
    assert index.sitemaps[0].published == datetime(2024, 1, 1, tzinfo=UTC)
    assert index.sitemaps[1].published is None


@pytest.mark.parametrize("parse", [lambda b: parse_feed(b, "https://example.org/f"),
                                   parse_sitemap], ids=["feed", "sitemap"])
def test_entity_expansion_is_refused_before_parsing(parse: Callable[[bytes], object]) -> None:
    with pytest.raises(UnsafeXML, match="EntitiesForbidden"):
        parse(BILLION_LAUGHS)


@pytest.mark.parametrize("kind", ["general", "parameter"])
def test_external_entities_are_refused_and_never_fetched(news_server: NewsServer,
                                                          kind: str) -> None:
    secret = news_server.add("/secret.dtd", '<!ENTITY leaked "secret">', "application/xml-dtd")
    hostile = _external(kind, secret)
    with pytest.raises(UnsafeXML):
        parse_feed(hostile, "https://example.org/f")
    with pytest.raises(UnsafeXML):
        parse_sitemap(hostile.replace(b"rss", b"urlset"))
    local_file = _external(kind, "file:///etc/passwd")
    with pytest.raises(UnsafeXML):
        check_safe_xml(local_file)
    assert news_server.fetched("/secret.dtd") == 0


def test_a_doctype_naming_an_external_dtd_is_read_without_loading_it(
        news_server: NewsServer) -> None:
    dtd = news_server.add("/rss-0.91.dtd", '<!ENTITY leaked "secret">', "application/xml-dtd")
    netscape = (f'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD '
                f'RSS 0.91//EN" "{dtd}"><rss version="0.91"><channel><title>T</title>'
                "<item><title>I</title><link>https://example.org/old.html</link></item>"
                "</channel></rss>").encode()
    assert [e.url for e in parse_feed(netscape, "https://example.org/f").entries] == [
        "https://example.org/old.html"]
    with pytest.raises(NotAFeed):  # read as a sitemap: wrong root, and still nothing loaded
        parse_sitemap(netscape)
    assert news_server.fetched("/rss-0.91.dtd") == 0


@pytest.mark.parametrize("body", [b"", b"<html><body>Not a feed</body></html>",
                                  b"\x00\x01binary", b'{"json": true}'])
def test_not_a_feed_or_sitemap(body: bytes) -> None:
    with pytest.raises(NotAFeed):
        parse_feed(body, "https://example.org/f")
    with pytest.raises(NotAFeed):
        parse_sitemap(body)

"""The WARC archive: written before processing, read back into the same pages."""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from warcio.archiveiterator import ArchiveIterator

from pipelines.archive import Exchange, PageMeta, WarcArchive, read_pages, warc_files
from pipelines.store import open_store
from tests.support.crawl_harness import REPO, TEST_CRAWL, launch, write_sources
from tests.support.httpserver import NewsServer

HTML = "<html><head><title>Заголовок</title></head><body><p>Текст.</p></body></html>".encode()
META: PageMeta = {"kind": "article", "source": "wire", "via": "sitemap",
                  "url": "https://example.org/news/1.html", "source_lang": "ru",
                  "feed_lang": "uk", "feed_title": "Заголовок",
                  "feed_published": "2024-01-02T03:04:05+00:00"}


def _exchange(**changes: object) -> Exchange:
    ex = Exchange(url="https://example.org/news/1.html?from=redirect", status=200, reason="OK",
                  response_headers=[("Content-Type", "text/html; charset=utf-8"),
                                    ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
                  body=HTML, meta=META, request_headers=[("User-Agent", "Dozor/test")],
                  ip_address="93.184.215.14")
    for name, value in changes.items():
        setattr(ex, name, value)
    return ex


def test_an_article_response_reads_back_as_the_page_it_was(tmp_path: Path) -> None:
    archive = WarcArchive(tmp_path)
    gzipped = _exchange(body=gzip.compress(HTML), response_headers=[
        ("Content-Type", "text/html; charset=utf-8"), ("Content-Encoding", "gzip"),
        ("Transfer-Encoding", "chunked"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    at = archive.write(gzipped)
    archive.close()

    [page] = read_pages(archive.path, max_size=1024 * 1024)
    assert page.body == HTML  # content-encoding undone on reading
    assert page.url == "https://example.org/news/1.html"  # the URL that was requested
    assert page.final_url == "https://example.org/news/1.html?from=redirect"
    assert page.status == 200 and page.source == "wire" and page.discovered_via == "sitemap"
    assert page.headers == {"content-type": "text/html; charset=utf-8", "set-cookie": "a=1, b=2"}
    assert (page.source_lang, page.feed_lang, page.feed_title) == ("ru", "uk", "Заголовок")
    assert page.feed_published == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (page.warc_file, page.warc_record_id, page.fetched_at) == (
        str(archive.path), at.record_id, at.date)


def test_records_are_standard_warc_with_linked_request_records(tmp_path: Path) -> None:
    archive = WarcArchive(tmp_path)
    at = archive.write(_exchange())
    archive.close()
    with open(archive.path, "rb") as fh:
        records = [(r.rec_type, r.rec_headers) for r in ArchiveIterator(fh)]
    assert [kind for kind, _ in records] == ["warcinfo", "response", "request"]
    response, request = records[1][1], records[2][1]
    assert response.get_header("WARC-Record-ID") == at.record_id
    assert request.get_header("WARC-Concurrent-To") == at.record_id
    assert response.get_header("WARC-IP-Address") == "93.184.215.14"
    assert response.get_header("WARC-Dozor-Source") == "wire"
    assert json.loads(response.get_header("WARC-Dozor-Hints"))["feed_title"] == "Заголовок"


def test_only_html_article_responses_with_2xx_become_pages(tmp_path: Path) -> None:
    archive = WarcArchive(tmp_path)
    archive.write(_exchange(meta={**META, "kind": "feed"}))
    archive.write(_exchange(status=404, reason="Not Found"))
    archive.write(_exchange(status=301, reason="Moved Permanently", body=b""))
    archive.write(_exchange(body=b"%PDF-1.4", response_headers=[
        ("Content-Type", "application/pdf")]))
    archive.write(_exchange(meta={}))  # robots.txt and the like: no Dozor metadata
    kept = archive.write(_exchange())
    archive.close()
    assert [p.warc_record_id for p in read_pages(archive.path, 1024)] == [kept.record_id]


def test_a_gzip_bomb_is_bounded_on_reading_too(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    archive = WarcArchive(tmp_path)
    archive.write(_exchange(body=gzip.compress(b"\0" * 5_000_000), response_headers=[
        ("Content-Type", "text/html"), ("Content-Encoding", "gzip")]))
    archive.close()
    with caplog.at_level(logging.WARNING):
        assert list(read_pages(archive.path, max_size=100_000)) == []
    assert "decodes to more than 100000 bytes" in caplog.text


@pytest.mark.parametrize(("cut", "survivors"), [(10, 1), (300, 1), (-5, 2)],
                         ids=["in-warc-headers", "in-http-headers", "in-request-record"])
def test_a_file_cut_short_by_a_crash_yields_the_records_before_the_cut(
        tmp_path: Path, cut: int, survivors: int) -> None:
    archive = WarcArchive(tmp_path)
    first = archive.write(_exchange())
    size_after_first = archive.path.stat().st_size
    second = archive.write(_exchange(body=HTML * 50))
    archive.close()
    data = archive.path.read_bytes()
    # the second exchange is its response record, then its request record
    archive.path.write_bytes(data[:size_after_first + cut] if cut > 0 else data[:cut])
    pages = list(read_pages(archive.path, 1024 * 1024))
    assert [p.warc_record_id for p in pages] == [first.record_id, second.record_id][:survivors]


def test_warc_files_lists_a_directory_and_refuses_a_missing_path(tmp_path: Path) -> None:
    (tmp_path / "b.warc.gz").write_bytes(b"")
    (tmp_path / "a.warc.gz").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in warc_files(tmp_path)] == ["a.warc.gz", "b.warc.gz"]
    with pytest.raises(FileNotFoundError, match="no such WARC"):
        warc_files(tmp_path / "missing")


# --- real crawls, then the archive alone --------------------------------------------------

def _article(title: str, lang: str, paragraph: str) -> str:
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}'
            f"</title></head><body><header><a href='/'>Home</a></header><article><h1>{title}"
            f"</h1>" + "".join(f"<p>{paragraph} ({i})</p>" for i in range(8))
            + "</article><footer>© Wire</footer></body></html>")


def _site(server: NewsServer, tmp_path: Path) -> Path:
    server.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    server.add("/news/ru.html", _article(
        "Заключённых колонии вербуют на фронт", "ru",
        "Осуждённых из исправительной колонии вербуют в штурмовые отряды «Шторм Z»; "
        "после полугода на фронте им обещают помилование."))
    server.add("/news/en.html", gzip.compress(_article(
        "Convicts recruited from penal colonies", "en",
        "Prisoners were offered pardons in exchange for six months of fighting with "
        "Wagner and the Storm-Z units of the Defence Ministry.").encode()),
        headers={"Content-Encoding": "gzip"})
    server.redirect("/news/old-uk.html", "/news/uk.html")
    server.add("/news/uk.html", _article(
        "Ув'язнених вербують до армії", "uk",
        "Засуджених з виправних колоній вербують до штурмових загонів; їм обіцяють "
        "помилування після шести місяців на фронті."))
    items = "".join(f"<item><title>{p}</title><link>{server.base}{p}</link></item>"
                    for p in ("/news/ru.html", "/news/en.html", "/news/old-uk.html"))
    server.add("/rss.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>'
               f"{items}</channel></rss>", "application/rss+xml")
    return write_sources(tmp_path / "sources.yaml",
                         [{"name": "wire", "feeds": [server.url("/rss.xml")]}])


LOCAL = {"DOZOR_ALLOWED_NETWORKS": "127.0.0.1/32"}


def test_a_failing_batch_loses_nothing_reprocess_rebuilds_the_same_pages(
        news_server: NewsServer, tmp_path: Path) -> None:
    sources = _site(news_server, tmp_path)
    db = tmp_path / "crawl.db"
    crawled = launch("crawl", tmp_path, "--sources", str(sources), "--db", str(db),
                     "--fail-batches", env=LOCAL)
    assert crawled.figures["pages"] == 3 and len(crawled.pages) == 3
    assert crawled.figures["batches_failed"] == 1 and crawled.figures["pages_failed"] == 3
    assert "the stages failed on purpose" in crawled.log and "dozor reprocess" in crawled.log
    store = open_store(db=db)
    try:  # not marked seen: the next crawl would fetch them again
        assert store.seen([news_server.url("/news/ru.html")]) == set()
    finally:
        store.close()

    requests_before = len(news_server.requests)
    again = launch("reprocess", tmp_path, "--db", str(db))
    assert len(news_server.requests) == requests_before  # no network
    assert again.figures["pages"] == 3 and again.figures["batches_failed"] == 0
    by_url = {p["url"]: p for p in again.pages}
    assert {p["url"]: p for p in crawled.pages} == by_url  # the very same pages
    assert by_url[news_server.url("/news/old-uk.html")]["final_url"] == news_server.url(
        "/news/uk.html")
    store = open_store(db=db)
    try:  # processed this time: marked seen
        assert store.seen([news_server.url("/news/ru.html")]) == {
            news_server.url("/news/ru.html")}
    finally:
        store.close()


def _dozor(*args: str, tmp_path: Path, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "dozor.yaml"
    config.write_text(yaml.safe_dump({"crawl": TEST_CRAWL}))
    full_env = {**os.environ, "DOZOR_CONFIG": str(config), **(env or {})}
    return subprocess.run([sys.executable, "-m", "dozor", *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=300)


def _articles(db: Path) -> dict[str, tuple]:
    store = open_store(db=db)
    try:
        return {a.id: (a.url, a.canonical_url, a.final_url, a.title, a.text, a.lang,
                       a.relevant, a.published_at, a.warc_record_id, a.cluster_id)
                for a in store.iter_articles()}
    finally:
        store.close()


def test_dozor_reprocess_rebuilds_the_index_from_the_archive(news_server: NewsServer,
                                                              tmp_path: Path) -> None:
    sources = _site(news_server, tmp_path)
    crawl_db, rebuilt_db = tmp_path / "crawl.db", tmp_path / "rebuilt.db"
    run = _dozor("run", "--sources", str(sources), "--db", str(crawl_db), tmp_path=tmp_path,
                 env=LOCAL)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "3 pages" in run.stdout and "3 new" in run.stdout
    crawled = _articles(crawl_db)
    assert len(crawled) == 3

    requests_before = len(news_server.requests)
    again = _dozor("reprocess", "--sources", str(sources), "--db", str(rebuilt_db),
                   tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "3 archived pages from 1 WARC file(s)" in again.stdout
    assert len(news_server.requests) == requests_before
    assert _articles(rebuilt_db) == crawled

    missing = _dozor("reprocess", "--warc", str(tmp_path / "nowhere"), "--db",
                     str(rebuilt_db), tmp_path=tmp_path)
    assert missing.returncode == 2 and "nowhere" in missing.stderr

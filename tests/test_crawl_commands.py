"""The crawl from the outside: `scrapy crawl news`, `dozor sources check`, `dozor run` errors."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from crawler.settings import operational
from pipelines.config.config import Config
from pipelines.config.settings import CrawlSettings
from pipelines.store import open_store
from tests.support.crawl_harness import REPO, TEST_CRAWL, write_sources
from tests.support.httpserver import NewsServer
from tests.support.smtpserver import closed_port

LOCAL = {"DOZOR_ALLOWED_NETWORKS": "127.0.0.1/32"}
PUBLISHED = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)


def _run(cmd: list[str], tmp_path: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "dozor.yaml"
    config.write_text(yaml.safe_dump({"crawl": TEST_CRAWL}))
    full_env = {**os.environ, "DOZOR_CONFIG": str(config), "COLUMNS": "200", **(env or {})}
    return subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=300)


def _site(server: NewsServer) -> None:
    server.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    server.add("/news/story.html", "<html lang='en'><head><title>Pardoned convicts return"
               "</title></head><body><article><h1>Pardoned convicts return</h1>"
               + "<p>Former prisoners recruited by Wagner came home after six months.</p>" * 6
               + "</article></body></html>")
    server.add("/rss.xml", '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
               f"<item><title>Story</title><link>{server.base}/news/story.html</link>"
               f"<pubDate>{PUBLISHED.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate></item>"
               "</channel></rss>", "application/rss+xml")
    server.add("/sitemap.xml", '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/'
               f'schemas/sitemap/0.9"><url><loc>{server.base}/news/story.html</loc></url>'
               "<url><loc>https://elsewhere.example/a.html</loc></url></urlset>",
               "application/xml")


def test_scrapy_crawl_news_from_the_repository_root(news_server: NewsServer,
                                                    tmp_path: Path) -> None:
    """Without the dozor CLI: sources and database from DOZOR_SOURCES / DOZOR_DB."""
    _site(news_server)
    sources = write_sources(tmp_path / "sources.yaml",
                            [{"name": "wire", "feeds": [news_server.url("/rss.xml")]}])
    db = tmp_path / "scrapy.db"
    proc = _run([sys.executable, "-m", "scrapy", "crawl", "news"], tmp_path,
                env={**LOCAL, "DOZOR_SOURCES": str(sources), "DOZOR_DB": str(db)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "'finish_reason': 'finished'" in proc.stderr
    store = open_store(db=db)
    try:
        [article] = list(store.iter_articles())
    finally:
        store.close()
    assert article.url == news_server.url("/news/story.html") and article.source == "wire"
    assert article.title == "Pardoned convicts return" and article.lang == "en"
    assert article.warc_file and Path(article.warc_file).exists()


def test_sources_check_reports_status_items_and_newest_date(news_server: NewsServer,
                                                             tmp_path: Path) -> None:
    _site(news_server)
    down = f"http://127.0.0.1:{closed_port()}/rss.xml"  # its robots.txt cannot be fetched either
    sources = write_sources(tmp_path / "sources.yaml", [
        {"name": "wire", "feeds": [news_server.url("/rss.xml"), news_server.url("/gone.xml")],
         "sitemaps": [news_server.url("/sitemap.xml")]},
        {"name": "metadata", "sitemaps": ["http://169.254.169.254/latest/sitemap.xml"]},
        {"name": "down", "feeds": [down]},
    ])
    proc = _run([sys.executable, "-m", "dozor", "sources", "check", "--sources", str(sources)],
                tmp_path, env=LOCAL)
    assert proc.returncode == 1  # some of them failed
    rows = {line.split("│")[3].strip(): [c.strip() for c in line.split("│")[1:-1]]
            for line in proc.stdout.splitlines() if line.startswith("│") and "http" in line}
    feed = rows[news_server.url("/rss.xml")]
    assert feed[:6] == ["wire", "feed", news_server.url("/rss.xml"), "200", "rss20", "1"]
    assert feed[6] == PUBLISHED.strftime("%Y-%m-%d %H:%M")
    assert rows[news_server.url("/sitemap.xml")][3:6] == ["200", "urlset", "2"]
    assert rows[news_server.url("/gone.xml")][3] == "404"
    assert "HTTP 404" in rows[news_server.url("/gone.xml")][7]
    assert "cloud metadata" in rows["http://169.254.169.254/latest/sitemap.xml"][7]
    assert "DownloadConnectionRefusedError" in rows[down][7]
    assert "2 of 5 feeds/sitemaps/listings answered" in proc.stdout
    assert "Traceback" not in proc.stderr  # Scrapy's robots.txt error is one line too
    assert news_server.fetched("/news/story.html") == 0  # entries are counted, not fetched


def test_dozor_run_explains_a_bad_sources_file(tmp_path: Path) -> None:
    bad = tmp_path / "sources.yaml"
    bad.write_text("sources:\n  - name: Meduza\n    feeds: [meduza.io/rss/all]\n")
    proc = _run([sys.executable, "-m", "dozor", "run", "--sources", str(bad), "--db",
                 str(tmp_path / "x.db")], tmp_path)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr
    assert "sources[0] (Meduza) → name" in proc.stderr and "[a-z0-9]" in proc.stderr
    assert "not an http(s) URL: 'meduza.io/rss/all'" in proc.stderr
    assert not (tmp_path / "x.db").exists()


def test_dozor_run_explains_a_bad_allowed_network(news_server: NewsServer,
                                                  tmp_path: Path) -> None:
    _site(news_server)
    sources = write_sources(tmp_path / "sources.yaml",
                            [{"name": "wire", "feeds": [news_server.url("/rss.xml")]}])
    proc = _run([sys.executable, "-m", "dozor", "run", "--sources", str(sources), "--db",
                 str(tmp_path / "x.db")], tmp_path,
                env={"DOZOR_ALLOWED_NETWORKS": "127.0.0.1/32,localhost"})
    assert proc.returncode == 2
    assert "DOZOR_ALLOWED_NETWORKS: 'localhost' is not a network" in proc.stderr
    assert news_server.requests == []


def test_operational_settings_become_scrapy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOZOR_CONTACT", "newsroom@example.org")
    scrapy = operational(CrawlSettings(download_timeout=7, download_maxsize=100_000,
                                       concurrent_requests_per_domain=3, batch_size=9),
                         Config.from_env().get("DOZOR_CONTACT"))
    assert scrapy["DOWNLOAD_TIMEOUT"] == 7 and scrapy["DOWNLOAD_MAXSIZE"] == 100_000
    assert scrapy["CONCURRENT_REQUESTS_PER_DOMAIN"] == 3 and scrapy["DOZOR_BATCH_SIZE"] == 9
    assert scrapy["USER_AGENT"].endswith("contact via newsroom@example.org)")

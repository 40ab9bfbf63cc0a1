"""`dozor reprocess` takes from an archived channel page only the posts the crawl took:
none older than the age limit when the page was fetched."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from dozor.demo.telegram import DemoPost, channel_pages
from pipelines.archive import Exchange, WarcArchive, read_pages
from pipelines.article import utcnow


def test_archived_channel_page_gives_no_post_older_than_the_limit(tmp_path: Path) -> None:
    now = utcnow()
    posts = [DemoPost(1, now - timedelta(days=20), html="Старый пост о суде"),
             DemoPost(2, now - timedelta(hours=1), html="Новый пост о суде")]
    body = channel_pages("chan_one", "Канал", posts)["/s/chan_one"].encode()
    archive = WarcArchive(tmp_path)
    archive.write(Exchange(url="http://127.0.0.1:1/s/chan_one", status=200, reason="OK",
                           response_headers=[("Content-Type", "text/html; charset=utf-8")],
                           body=body, meta={"kind": "telegram", "source": "src",
                                            "via": "telegram", "source_lang": "ru"},
                           request_headers=[], ip_address="127.0.0.1"))
    archive.close()
    every = [p.url for p in read_pages(archive.path, 1024 * 1024)]
    assert every == ["https://t.me/chan_one/1", "https://t.me/chan_one/2"]
    limited = [p.url for p in read_pages(archive.path, 1024 * 1024, 14)]
    assert limited == ["https://t.me/chan_one/2"]

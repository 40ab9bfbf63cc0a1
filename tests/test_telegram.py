"""The Telegram web-preview parser and the `telegram:` source field, on Telegram's markup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dozor.demo.telegram import DemoPost, channel_pages, contact_page
from pipelines.article import RawPage
from pipelines.config.sources import load_sources
from pipelines.errors import ConfigError
from pipelines.extract import extract
from pipelines.telegram import (
    parse_channel_page,
    parse_views,
    post_link,
    post_page,
    title_of,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "views"), [("12.3K", 12300), ("845", 845), ("1.2M", 1200000),
                                              ("4.85K", 4850), ("", None), ("views", None)])
def test_views_are_numbers(text: str, views: int | None) -> None:
    assert parse_views(text) == views


def test_title_is_the_first_line_or_its_first_sentence() -> None:
    assert title_of("\nСуд вынес приговор\nВторая строка") == "Суд вынес приговор"
    long = ("Суд в Ростове приговорил бывшего заключённого к восьми годам. " * 3).strip()
    assert title_of(long) == "Суд в Ростове приговорил бывшего заключённого к восьми годам."
    words = " ".join(["слово"] * 60)
    cut = title_of(words)
    assert cut.endswith("…") and len(cut) <= 141 and " " in cut


def test_post_links() -> None:
    assert post_link("https://t.me/Other_Chan/77") == "https://t.me/other_chan/77"
    assert post_link("https://t.me/s/other_chan/77") == "https://t.me/other_chan/77"
    assert post_link("https://t.me/other_chan") is None
    assert post_link("https://example.org/other_chan/77") is None


def _page() -> str:
    posts = [DemoPost(i, NOW - timedelta(hours=30 - i), views="1.5K",
                      html=f"Пост {i}<br>строка <a href='https://example.org/a{i}'>ссылка</a> "
                           "<a href='?q=%23tag'>#tag</a>") for i in range(10, 30)]
    posts += [DemoPost(30, NOW, kind="service", html="Channel created"),
              DemoPost(31, NOW, kind="poll", html="Вопрос?"),
              DemoPost(32, NOW, kind="sticker"),
              DemoPost(33, NOW, html="Переслано", forwarded_from="Orig_Chan/5",
                       forwarded_name="Orig", edited=True, views="2",
                       preview={"url": "https://example.org/x", "title": "T",
                                "description": "D", "site": "S"})]
    return channel_pages("test_chan", "Тест", posts)["/s/test_chan"]


def test_channel_page_posts_skipped_kinds_and_older_link() -> None:
    page = parse_channel_page(_page().encode(), "test_chan")
    assert page.problem is None and page.title == "Тест"
    assert page.skipped == {"service": 1, "poll": 1, "sticker": 1}
    assert [p.post_id for p in page.posts] == sorted(p.post_id for p in page.posts)
    assert len(page.posts) == 17  # the newest 20 widgets, 3 of them not posts
    assert page.before == page.posts[0].post_id
    last = page.posts[-1]
    assert last.url == "https://t.me/test_chan/33"
    assert last.forwarded_from == "https://t.me/orig_chan/5"
    assert last.edited and not page.posts[0].edited
    assert last.links == ["https://example.org/x"]
    first = page.posts[0]
    assert first.text.splitlines()[0] == f"Пост {first.post_id}"
    assert first.links == [f"https://example.org/a{first.post_id}"]  # hashtag search dropped
    assert first.views == 1500
    assert first.published_at == NOW - timedelta(hours=30 - first.post_id)


def test_post_page_becomes_an_article_without_extraction() -> None:
    page = parse_channel_page(_page(), "test_chan")
    raw = post_page(page.posts[-1], "src", "http://127.0.0.1:1/s/test_chan", NOW, "ru")
    assert isinstance(raw, RawPage) and raw.discovered_via == "telegram"
    [article] = extract([raw])
    assert article.canonical_url == "https://t.me/test_chan/33"
    assert (article.title, article.text) == ("Переслано", "Переслано")
    assert article.channel == "test_chan" and article.post_id == 33 and article.views == 2
    assert article.forwarded_from == "https://t.me/orig_chan/5"
    assert article.export()["links"] == ["https://example.org/x"]


def test_no_preview_missing_and_changed_layout_are_told_apart() -> None:
    assert parse_channel_page(contact_page("closed_chan", "Closed"), "closed_chan"
                              ).problem == "no_preview"
    assert parse_channel_page(contact_page("ghost_chan", None), "ghost_chan").problem == "missing"
    changed = b"<html><body><main class='tgme_channel_history'><div>new</div></main></body></html>"
    page = parse_channel_page(changed, "some_chan")
    assert page.problem == "no_posts"
    assert page.describe() == f"telegram some_chan: no posts found in a page that has " \
                              f"{len(changed)} bytes"


def test_source_field_usernames(tmp_path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  - name: rights\n    telegram: [https://t.me/Pravo_Monitor, "
                    "'@other_one', t.me/s/third_chan, pravo_monitor]\n", encoding="utf-8")
    [source] = load_sources(path)
    assert source.telegram == ["pravo_monitor", "other_one", "third_chan"]
    assert not source.feeds
    path.write_text("sources:\n  - name: rights\n    telegram: [ok_channel, 'bad!']\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_sources(path)
    assert str(path) in str(err.value)
    assert "sources[0] (rights) → telegram" in str(err.value) and "'bad!'" in str(err.value)


def _stored_post(store) -> None:
    page = parse_channel_page(_page(), "test_chan")
    [article] = extract([post_page(page.posts[-1], "src", "https://t.me/s/test_chan", NOW)])
    store.write([article])
    back = store.get(article.id)
    assert back is not None
    assert (back.channel, back.post_id, back.views) == ("test_chan", 33, 2)
    assert back.forwarded_from == "https://t.me/orig_chan/5"
    assert back.links == ["https://example.org/x"]
    assert back.export()["channel"] == "test_chan"


def test_post_fields_on_sqlite(store) -> None:
    _stored_post(store)


def test_post_fields_on_elasticsearch(fake, tmp_path) -> None:
    from tests.fakes.elasticsearch import fast_store

    with fast_store(fake.url, tmp_path / "spool") as es:
        _stored_post(es)

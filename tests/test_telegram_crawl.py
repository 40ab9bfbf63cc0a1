"""Telegram channels crawled end to end: `dozor run` against channels served on 127.0.0.1.

A real HTTP server answers `/s/<channel>` (and `?before=<id>`) with Telegram's own
web-preview markup (dozor/demo/telegram.py) for channels written for these tests in
Russian, Ukrainian and English: forwards, an edited post, link previews, three pages of
history reaching past the age limit, a service message, a poll and a sticker. A channel
without a web preview is redirected to its contact page, one that does not exist to an
empty one. `dozor run` crawls twice into a real SQLite file with DOZOR_TELEGRAM_URL
pointing at the server.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import yaml

from dozor.demo.telegram import DemoPost, channel_pages, contact_page
from pipelines.article import Article
from pipelines.store import open_store
from tests.support.cli import run_dozor
from tests.support.httpserver import NewsServer

NOW = datetime.now(UTC).replace(microsecond=0)
RUN_TIMEOUT = 180

WIRE = ("Суд в Ростове-на-Дону приговорил бывшего заключённого, завербованного из колонии "
        "в отряд «Шторм Z», к восьми годам за убийство, совершённое через месяц после "
        "возвращения с фронта. По данным обвинения, мужчина был помилован после шести месяцев "
        "контракта с Минобороны и вернулся в родной посёлок в январе. Родственники погибшего "
        "говорят, что о его возвращении никто не предупредил. Правозащитники насчитали "
        "десятки таких дел с начала года и требуют раскрыть списки помилованных.")


def _ru_history() -> list[DemoPost]:
    """45 posts, one every 11 hours back from now: three pages, the last past 14 days."""
    posts = []
    for n in range(45):
        post_id = 1000 + n * 3  # ids are not contiguous on a real channel
        when = NOW - timedelta(hours=11 * (44 - n)) - timedelta(minutes=5)
        posts.append(DemoPost(post_id, when, views=f"{n + 1}.{n % 10}K", html=(
            f"Сводка №{n}: в колонии ИК-{n} снова приезжали вербовщики<br>"
            f"Заключённым обещают помилование за полгода контракта. "
            f'<a href="?q=%23вербовка">#вербовка</a>')))
    posts[-1] = DemoPost(1132, NOW - timedelta(minutes=30), views="12.3K", edited=True, html=(
        "Вербовка заключённых в «Шторм Z»: новые данные<br><br>Минобороны снова набирает "
        "осуждённых в колониях Свердловской области. Подробнее: "
        '<a href="{base}/news/shtorm.html">наш разбор</a>'),
        preview={"url": "{base}/news/shtorm.html", "site": "Монитор",
                 "title": "Как вербуют в «Шторм Z»", "description": "Разбор"})
    posts[-2] = DemoPost(1129, NOW - timedelta(hours=1), views="845", html=WIRE)
    posts.insert(-2, DemoPost(1130, NOW - timedelta(minutes=50), kind="service",
                              html="Channel photo updated"))
    posts.insert(-2, DemoPost(1131, NOW - timedelta(minutes=40), kind="poll",
                              html="Кто из ваших родных в колонии?"))
    posts.insert(-2, DemoPost(1128, NOW - timedelta(minutes=70), kind="sticker"))
    return posts


def _uk_channel() -> list[DemoPost]:
    return [
        DemoPost(501, NOW - timedelta(hours=5), views="2.1K",
                 html="Повернувся з фронту і знову сів: історія ув'язненого з Харківщини"),
        # the forward keeps the text the original had before it was edited
        DemoPost(502, NOW - timedelta(hours=2), views="1.1M",
                 forwarded_from="pravo_monitor/1132", forwarded_name="Право Монитор", html=(
                     "Вербовка заключённых в «Шторм Z»: новые данные<br><br>Минобороны "
                     "набирает осуждённых в колониях. Подробнее: "
                     '<a href="{base}/news/shtorm.html">наш разбор</a>')),
        DemoPost(503, NOW - timedelta(hours=1), views="310",
                 html="Їхні родини досі не отримали жодної відповіді."),
    ]


def _en_channel() -> list[DemoPost]:
    return [
        DemoPost(77, NOW - timedelta(hours=3), views="5K",
                 html="Pardoned convicts return from the front; courts see new cases"),
        DemoPost(78, NOW - timedelta(hours=2), views="960", forwarded_name="Hidden user",
                 html="Their families say nobody warned them."),
    ]


@dataclass
class Crawl:
    server: NewsServer
    runs: list[subprocess.CompletedProcess[str]]
    requests: list[list[str]]
    articles: dict[str, Article]  # by canonical URL
    export: list[dict]
    pages: dict[str, str]
    work: Path


def _serve(server: NewsServer) -> dict[str, str]:
    base = server.base
    served: dict[str, str] = {}
    for channel, title, posts in (("pravo_monitor", "Право Монитор", _ru_history()),
                                  ("kyiv_vistky", "Київ Вісті", _uk_channel()),
                                  ("front_wire", "Front Wire", _en_channel())):
        for post in posts:
            post.html = post.html.replace("{base}", base)
            if post.preview:
                post.preview = {k: v.replace("{base}", base) for k, v in post.preview.items()}
        for path, html in channel_pages(channel, title, posts).items():
            served[path] = html
            server.add(path, html)
    server.redirect("/s/closed_chan", f"{base}/closed_chan", status=302)
    server.add("/closed_chan", contact_page("closed_chan", "Closed Channel"))
    server.redirect("/s/ghost_channel", f"{base}/ghost_channel", status=302)
    server.add("/ghost_channel", contact_page("ghost_channel", None))
    server.add("/news/shtorm.html", (
        "<html lang='ru'><head><title>Как вербуют в «Шторм Z»</title></head><body><article>"
        "<h1>Как вербуют в «Шторм Z»</h1>" + "<p>Вербовщики Минобороны приезжают в колонии "
        "и обещают заключённым помилование через шесть месяцев контракта.</p>" * 6
        + "</article></body></html>"))
    # the wire story the channel's post 1129 repeats, from the web
    server.add("/wire/rss.xml", (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Wire</title>"
        f"<item><title>Приговор помилованному</title><link>{base}/wire/prigovor.html</link>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=3))}</pubDate></item>"
        "</channel></rss>"), "application/rss+xml")
    server.add("/wire/prigovor.html", (
        "<html lang='ru'><head><title>Приговор помилованному</title></head><body><article>"
        f"<h1>Приговор помилованному</h1><p>{WIRE}</p></article></body></html>"))
    return served


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawl]:
    work = tmp_path_factory.mktemp("telegram")
    server = NewsServer().start()
    try:
        pages = _serve(server)
        channels = [
            {"name": "rights-monitor", "lang": "ru", "follow_links": True,
             "telegram": ["https://t.me/pravo_monitor", "@closed_chan", "ghost_channel"]},
            {"name": "kyiv-channels", "lang": "ru", "telegram": ["kyiv_vistky"]},
            {"name": "front-wire", "telegram": ["t.me/s/Front_Wire"]},
        ]
        # the third run adds a web source on the same host: the followed link of the first
        # run is not one of its articles (links into a configured source's domains are left
        # to that source's feed), and its wire story finds the post stored before
        sources, with_wire = work / "sources.yaml", work / "with-wire.yaml"
        sources.write_text(yaml.safe_dump({"sources": channels}, allow_unicode=True),
                           encoding="utf-8")
        with_wire.write_text(yaml.safe_dump({"sources": [*channels, {
            "name": "wire-web", "feeds": [f"{server.base}/wire/rss.xml"]}]},
            allow_unicode=True), encoding="utf-8")
        (work / "dozor.yaml").write_text("crawl:\n  telegram_delay: 0\n", encoding="utf-8")
        (work / "alerts.yaml").write_text("rules: []\n", encoding="utf-8")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DOZOR_") and k != "ELASTICSEARCH_URL"}
        env.update(DOZOR_DATA_DIR=str(work / "data"), DOZOR_ALLOWED_NETWORKS="127.0.0.1/32",
                   DOZOR_TELEGRAM_URL=server.base, DOZOR_CONFIG=str(work / "dozor.yaml"),
                   DOZOR_OUTBOX=str(work / "outbox"))
        db = str(work / "dozor.db")
        alerts = str(work / "alerts.yaml")
        runs, requests = [], []
        for path in (sources, sources, with_wire):
            before = len(server.requests)
            runs.append(run_dozor(["run", "--sources", str(path), "--db", db, "--alerts", alerts],
                                  env, RUN_TIMEOUT))
            requests.append(server.requests[before:])
        exported = run_dozor(["export", "--json", "--db", db], env).stdout
        store = open_store(db=db)
        try:
            articles = {a.canonical_url: a for a in store.iter_articles()}
        finally:
            store.close()
        export = [json.loads(line) for line in exported.splitlines() if line.strip()]
        yield Crawl(server, runs, requests, articles, export, pages, work)
    finally:
        server.stop()


def _posts(crawl: Crawl, channel: str) -> list[Article]:
    return sorted((a for a in crawl.articles.values() if a.channel == channel),
                  key=lambda a: a.post_id or 0)


def test_posts_stored_once_under_their_canonical_url(crawl: Crawl) -> None:
    posts = _posts(crawl, "pravo_monitor")
    cutoff = NOW - timedelta(days=14)
    # 45 text posts, 11 hours apart: those of the last 14 days, no service/poll/sticker
    expected = {f"https://t.me/pravo_monitor/{1000 + n * 3}" for n in range(43)
                if NOW - timedelta(hours=11 * (44 - n), minutes=5) >= cutoff}
    expected |= {"https://t.me/pravo_monitor/1129", "https://t.me/pravo_monitor/1132"}
    assert {a.canonical_url for a in posts} == expected
    for post in posts:
        assert post.discovered_via == "telegram"
        assert post.source == "rights-monitor"
        assert post.published_at is not None and post.published_at >= cutoff
    assert "https://t.me/pravo_monitor/1130" not in crawl.articles  # service message
    assert "https://t.me/pravo_monitor/1131" not in crawl.articles  # poll
    assert "https://t.me/pravo_monitor/1128" not in crawl.articles  # sticker
    assert len({a.id for a in crawl.articles.values()}) == len(crawl.articles)


def test_title_text_views_links_and_date(crawl: Crawl) -> None:
    post = crawl.articles["https://t.me/pravo_monitor/1132"]
    assert post.title == "Вербовка заключённых в «Шторм Z»: новые данные"
    assert post.text.startswith("Вербовка заключённых в «Шторм Z»: новые данные\n\n")
    assert post.text.endswith("Подробнее: наш разбор")  # link text kept
    assert post.views == 12300
    assert post.post_id == 1132
    assert post.links == [f"{crawl.server.base}/news/shtorm.html"]
    assert post.published_at == NOW - timedelta(minutes=30)
    assert crawl.articles["https://t.me/kyiv_vistky/502"].views == 1_100_000
    assert crawl.articles["https://t.me/pravo_monitor/1129"].views == 845


def test_paging_stops_at_the_age_limit(crawl: Crawl) -> None:
    first = crawl.requests[0]
    ru_pages = [p for p in first if p.startswith("/s/pravo_monitor")]
    # the third page holds only posts older than 14 days: it is never asked for
    older = sorted(p for p in crawl.pages if p.startswith("/s/pravo_monitor?"))
    assert len(older) == 2
    assert ru_pages.count("/s/pravo_monitor") == 1
    newest_older = max(older, key=lambda p: int(p.rsplit("=", 1)[1]))
    assert ru_pages == ["/s/pravo_monitor", newest_older]


def test_second_run_fetches_no_older_page_and_stores_nothing(crawl: Crawl) -> None:
    second = crawl.requests[1]
    assert not any("before=" in p for p in second)
    assert second.count("/s/pravo_monitor") == 1
    assert "/news/shtorm.html" not in second  # followed link already stored
    assert "0 new" in crawl.runs[1].stdout


def test_forward_lands_in_the_cluster_of_the_original(crawl: Crawl) -> None:
    original = crawl.articles["https://t.me/pravo_monitor/1132"]
    forward = crawl.articles["https://t.me/kyiv_vistky/502"]
    assert forward.forwarded_from == "https://t.me/pravo_monitor/1132"
    assert forward.text != original.text  # the original was edited after the forward
    assert forward.cluster_id == original.cluster_id
    hidden = crawl.articles["https://t.me/front_wire/78"]
    assert hidden.forwarded_from is None  # forwarded from a user without a public link


def test_post_repeating_a_wire_story_joins_the_web_copy(crawl: Crawl) -> None:
    post = crawl.articles["https://t.me/pravo_monitor/1129"]
    web = crawl.articles[f"{crawl.server.base}/wire/prigovor.html"]
    assert post.cluster_id == web.cluster_id


def test_followed_link_is_an_article_of_the_source(crawl: Crawl) -> None:
    linked = crawl.articles[f"{crawl.server.base}/news/shtorm.html"]
    assert linked.source == "rights-monitor"
    assert linked.discovered_via == "telegram-link"
    assert linked.channel is None
    assert linked.relevant


def test_short_posts_get_their_own_language(crawl: Crawl) -> None:
    # kyiv-channels says ru; its posts are Ukrainian, except the forwarded Russian one
    assert crawl.articles["https://t.me/kyiv_vistky/501"].lang == "uk"
    assert crawl.articles["https://t.me/kyiv_vistky/503"].lang == "uk"
    assert crawl.articles["https://t.me/kyiv_vistky/502"].lang == "ru"
    assert crawl.articles["https://t.me/front_wire/77"].lang == "en"
    assert crawl.articles["https://t.me/front_wire/78"].lang == "en"
    assert crawl.articles["https://t.me/pravo_monitor/1132"].lang == "ru"


def test_channel_without_preview_or_missing_is_one_line_and_the_run_succeeds(
        crawl: Crawl) -> None:
    out = " ".join(crawl.runs[0].stdout.split())
    assert "telegram channel closed_chan has no public web preview" in out
    assert "telegram channel ghost_channel does not exist" in out
    assert out.count("closed_chan") == 1


def test_export_adds_the_post_fields(crawl: Crawl) -> None:
    by_url = {doc["canonical_url"]: doc for doc in crawl.export}
    post = by_url["https://t.me/kyiv_vistky/502"]
    assert post["channel"] == "kyiv_vistky"
    assert post["post_id"] == 502
    assert post["views"] == 1_100_000
    assert post["forwarded_from"] == "https://t.me/pravo_monitor/1132"
    assert post["links"] == [f"{crawl.server.base}/news/shtorm.html"]
    web = by_url[f"{crawl.server.base}/news/shtorm.html"]
    assert "channel" not in web


def test_sources_check_reports_each_channel(crawl: Crawl, tmp_path: Path) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": [
        {"name": "channels", "telegram": ["pravo_monitor", "closed_chan", "ghost_channel",
                                          "gone_channel"]}]}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOZOR_")}
    env.update(DOZOR_DATA_DIR=str(tmp_path / "data"), DOZOR_ALLOWED_NETWORKS="127.0.0.1/32",
               DOZOR_TELEGRAM_URL=crawl.server.base, COLUMNS="250")
    # three of the four channels are not readable: exit status 1
    result = run_dozor(["sources", "check", "--sources", str(sources)], env, RUN_TIMEOUT,
                       expect=1)
    rows = {line.split("│")[3].strip(): line for line in result.stdout.splitlines()
            if line.count("│") > 6 and "/s/" in line}
    newest = (NOW - timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M")
    ok = rows[f"{crawl.server.base}/s/pravo_monitor"]
    assert " 200 " in ok and " 17 " in ok and newest in ok  # 20 widgets, 3 not posts
    assert "no public web preview" in rows[f"{crawl.server.base}/s/closed_chan"]
    assert "does not exist" in rows[f"{crawl.server.base}/s/ghost_channel"]
    assert "does not exist (HTTP 404)" in rows[f"{crawl.server.base}/s/gone_channel"]
    assert "1 of 4 feeds/sitemaps/listings answered" in result.stdout


def test_reprocess_rebuilds_the_posts_from_the_archive(crawl: Crawl, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOZOR_")}
    env.update(DOZOR_DATA_DIR=str(crawl.work / "data"), DOZOR_CONFIG=str(crawl.work / "dozor.yaml"))
    db = tmp_path / "rebuilt.db"
    run_dozor(["reprocess", "--db", str(db), "--sources", str(crawl.work / "sources.yaml")], env,
              RUN_TIMEOUT)
    store = open_store(db=db)
    try:
        rebuilt = {a.canonical_url: a for a in store.iter_articles() if a.channel}
    finally:
        store.close()
    # every post is rebuilt from the channel pages; the archive also holds the pages'
    # posts past the age limit, which the crawl did not store
    stored = {url for url, a in crawl.articles.items() if a.channel}
    assert stored <= set(rebuilt)
    post = rebuilt["https://t.me/kyiv_vistky/502"]
    assert (post.views, post.forwarded_from) == (1_100_000, "https://t.me/pravo_monitor/1132")

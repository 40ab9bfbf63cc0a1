"""Telegram posts that only link to a story, judged on the article they link to
(`follow_links: true`), with Telegram's own web-preview markup (dozor/demo/telegram.py):
through the real stages into a real SQLite file, and by a real `dozor run` against a
server on 127.0.0.1 that mails its digest to aiosmtpd."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from dozor.demo.telegram import DemoPost, channel_pages
from pipelines import process, relevance
from pipelines.alert import notify
from pipelines.article import RawPage, article_id
from pipelines.config.config import Config
from pipelines.store import open_store
from pipelines.store.sqlite import SQLiteStore
from pipelines.telegram import followed_articles, parse_channel_page, post_page
from tests.support.alerts import RECRUITMENT_RULES, rules_file
from tests.support.cli import REPO, run_dozor
from tests.support.httpserver import NewsServer
from tests.support.smtpserver import SmtpServer

TOPIC = REPO / "dozor" / "defaults" / "topic.yaml"
SOURCE = "links-monitor"
CHANNEL = "links_monitor"
NOW = datetime.now(UTC).replace(microsecond=0)

ON_TOPIC = (
    "<html lang='ru'><head><title>Как вербуют в «Шторм Z»</title></head><body><article>"
    "<h1>Как вербуют в «Шторм Z»</h1>" + "<p>Вербовщики Минобороны приезжают в колонии и "
    "обещают заключённым помилование через шесть месяцев контракта.</p>" * 6
    + "</article></body></html>")
OFF_TOPIC = (
    "<html lang='ru'><head><title>В филармонии открылся сезон</title></head><body><article>"
    "<h1>В филармонии открылся сезон</h1>" + "<p>Оркестр сыграл симфонии Чайковского, "
    "зал был полон, публика долго аплодировала дирижёру и солистам.</p>" * 6
    + "</article></body></html>")


def link_only(post_id: int, url: str, minutes_ago: int) -> DemoPost:
    return DemoPost(post_id, NOW - timedelta(minutes=minutes_ago), views="120",
                    html=f'<a href="{url}">{url}</a>')


def channel(base: str, *posts: DemoPost) -> str:
    return channel_pages(CHANNEL, "Links Monitor", list(posts))[f"/s/{CHANNEL}"]


def post_pages(html: str, base: str) -> list[RawPage]:
    """The posts of a channel page as the crawl hands them over, with the links a
    `follow_links` source fetches."""
    page = parse_channel_page(html.encode(), CHANNEL, base=f"{base}/s/{CHANNEL}")
    return [post_page(p, SOURCE, f"{base}/s/{CHANNEL}", NOW, "ru",
                      follows=followed_articles(p.links)) for p in page.posts]


def article_page(url: str, html: str, *posts: str) -> RawPage:
    return RawPage(url=url, final_url=url, status=200,
                   headers={"content-type": "text/html; charset=utf-8"},
                   body=html.encode(), source=SOURCE, discovered_via="telegram-link",
                   linked_from=posts)


def test_a_post_takes_the_relevance_of_the_article_it_links_to(tmp_path: Path,
                                                               smtp: SmtpServer) -> None:
    base = "http://127.0.0.1:8"
    on, off = f"{base}/news/shtorm.html", f"{base}/news/concert.html"
    store = SQLiteStore(tmp_path / "dozor.db")
    pipeline = process.Pipeline(store=store, profile=relevance.load_topic(TOPIC),
                                keep_relevant_only=frozenset({SOURCE}))
    posts = post_pages(channel(base, link_only(11, on, 30), link_only(12, off, 20)), base)
    on_post, off_post = (p.url for p in posts)
    # the posts come first, alone: nothing in them is on topic, yet `keep: relevant`
    # keeps them until the articles they link to are judged
    first = pipeline.process(posts)
    assert first.dropped == 0 and sorted(first.new_ids) == sorted(
        article_id(p.url) for p in posts)
    assert not store.get(article_id(on_post)).relevant
    second = pipeline.process([article_page(on, ON_TOPIC, on_post),
                               article_page(off, OFF_TOPIC, off_post)])
    assert second.dropped == 1  # the off-topic article itself
    post = store.get(article_id(on_post))
    assert post.relevant and post.relevant_via == on and post.score > 0
    assert post.export()["relevant_via"] == on
    assert store.get(article_id(on)).relevant
    kept = store.get(article_id(off_post))
    assert not kept.relevant and kept.relevant_via is None
    assert store.get(article_id(off)) is None and store.seen([off]) == {off}
    # a later post linking to the stored article is relevant in its own batch, without
    # the article being fetched again
    [later] = post_pages(channel(base, link_only(13, on, 5)), base)
    third = pipeline.process([later])
    assert third.relevant == 1 and store.get(article_id(later.url)).relevant_via == on
    # relevant, so alertable
    report = notify(store, rules_file(tmp_path, RECRUITMENT_RULES), [],
                    Config.from_env({"DOZOR_DATA_DIR": str(tmp_path / "data"), **smtp.env()}))
    assert [d.status for d in report.digests] == ["sent"]
    [message] = smtp.messages()
    assert "@links_monitor" in message.get_body(("plain",)).get_content()
    sent = {d.article_id for d in store.sent_deliveries(
        "recruitment", [article_id(u) for u in (on_post, later.url, off_post, on)])}
    assert sent == {article_id(on_post), article_id(on)}  # the later post folds into it
    assert [d.article_id for d in store.folded_deliveries("recruitment", sent)] == [
        article_id(later.url)]
    store.close()


def test_dozor_run_judges_a_link_only_post_on_the_followed_article(
        tmp_path: Path, news_server: NewsServer, smtp: SmtpServer) -> None:
    base = news_server.base
    on, off = f"{base}/news/shtorm.html", f"{base}/news/concert.html"
    news_server.add(f"/s/{CHANNEL}", channel(base, link_only(21, on, 30), link_only(22, off, 20)))
    news_server.add("/news/shtorm.html", ON_TOPIC)
    news_server.add("/news/concert.html", OFF_TOPIC)
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": [
        {"name": SOURCE, "lang": "ru", "keep": "relevant", "follow_links": True,
         "telegram": [CHANNEL]}]}), encoding="utf-8")
    (tmp_path / "dozor.yaml").write_text("crawl:\n  telegram_delay: 0\n", encoding="utf-8")
    alerts = rules_file(tmp_path, RECRUITMENT_RULES)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DOZOR_") and k != "ELASTICSEARCH_URL"}
    env.update(DOZOR_DATA_DIR=str(tmp_path / "data"), DOZOR_ALLOWED_NETWORKS="127.0.0.1/32",
               DOZOR_TELEGRAM_URL=base, DOZOR_CONFIG=str(tmp_path / "dozor.yaml"),
               **smtp.env(DOZOR_MAIL_FROM="dozor@example.org"))
    db = tmp_path / "dozor.db"
    run_dozor(["run", "--sources", str(sources), "--alerts", str(alerts), "--db", str(db)],
              env, timeout=180)
    # each linked article fetched once
    assert [news_server.fetched(f"/news/{n}.html") for n in ("shtorm", "concert")] == [1, 1]
    exported = run_dozor(["export", "--db", str(db)], env).stdout
    docs = {d["url"]: d for d in map(json.loads, exported.splitlines())}
    on_post, off_post = (f"https://t.me/{CHANNEL}/{n}" for n in (21, 22))
    assert docs[on_post]["relevant"] and docs[on_post]["relevant_via"] == on
    assert not docs[off_post]["relevant"] and docs[off_post]["relevant_via"] is None
    assert on in docs and off not in docs
    [message] = smtp.messages()
    assert "@links_monitor" in message.get_body(("plain",)).get_content()
    with open_store(db, read_only=True) as store:
        sent = store.sent_deliveries("recruitment", [article_id(on_post),
                                                     article_id(off_post)])
        assert [d.article_id for d in sent] == [article_id(on_post)]

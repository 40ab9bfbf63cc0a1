"""Revisits on 127.0.0.1: pages edited, retitled, redated, removed (404, sent home),
restored, touched only in their ads and markup; Telegram posts edited and deleted; the
versions, events, `event:` alerts through a real SMTP server (once per event) and
`dozor history`, all through the CLI on a real SQLite file."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import yaml

from dozor.demo.telegram import DemoPost, channel_pages
from pipelines.article import article_id
from pipelines.store import open_store
from pipelines.urls import canonicalize
from tests.support.cli import run_dozor
from tests.support.crawl_harness import write_sources
from tests.support.httpserver import NewsServer
from tests.support.smtpserver import SmtpServer
from tests.test_ui import fetch, running_ui

# six stories on one subject, each its own (no near-duplicate cluster among them)
STORIES = (
    "Осуждённых из колонии под Пермью вербуют в штурмовые отряды «Шторм Z».",
    "В Мордовии сотрудники колонии уговаривали заключённых подписать контракт.",
    "Родственники заключённых из Ростова рассказали о вербовке прямо в бараках.",
    "В колонии Свердловской области вербовщики обещали помилование за полгода.",
    "Заключённые из Бурятии получили повестки после визита людей в форме.",
    "Правозащитники подсчитали погибших среди завербованных в колониях Урала.",
)
DETAILS = ("Семьям обещали выплаты", "Адвокатов к ним не пустили", "Часть отказалась",
           "Сроки сократили не всем", "Связь с родными оборвалась", "Ответа нет")
CRAWL = {"autothrottle": False, "retry_times": 0, "download_timeout": 10}


def page(title: str, n: int, date: str = "2026-11-28T10:00:00+00:00", ad: str = "Реклама",
         views: int = 10, extra: str = "", wrapper: str = "article") -> str:
    paras = "".join(f"<p>{STORIES[n - 1]} {DETAILS[i]}, по словам источника номер {n}{i}.</p>"
                    for i in range(6)) + extra
    return (f'<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta property="article:published_time" content="{date}"></head><body>'
            f'<header><a href="/">Главная</a></header><div class="ad">{ad}</div>'
            f"<{wrapper}><h1>{title}</h1><time datetime=\"{date}\">{date[:10]}</time>{paras}"
            f"</{wrapper}><aside>Просмотров: {views}</aside><footer>© Wire</footer>"
            "</body></html>")


PAGES = {
    "body": ("Колонию вербуют на фронт", 1),
    "title": ("Заключённых вербуют в отряды", 2),
    "date": ("Вербовка в колонии продолжается", 3),
    "gone": ("Вербовщики пришли в колонию", 4),
    "home": ("Новая волна вербовки заключённых", 5),
    "ads": ("Помилование за полгода фронта", 6),
}


def _site(server: NewsServer, tmp_path: Path) -> Path:
    server.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    server.add("/", "<html><body><h1>Wire</h1><p>Главная страница.</p></body></html>")
    for name, (title, n) in PAGES.items():
        server.add(f"/news/{name}.html", page(title, n), headers={"ETag": f'"{name}-1"'})
    items = "".join(f"<item><title>{t}</title><link>{server.base}/news/{k}.html</link></item>"
                    for k, (t, _) in PAGES.items())
    server.add("/rss.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>'
               f"{items}</channel></rss>", "application/rss+xml")
    return write_sources(tmp_path / "sources.yaml",
                         [{"name": "wire", "feeds": [server.url("/rss.xml")]}])


def _env(tmp_path: Path, smtp: SmtpServer | None = None) -> dict[str, str]:
    config = tmp_path / "dozor.yaml"
    config.write_text(yaml.safe_dump({"crawl": CRAWL}))
    env = {**os.environ, "DOZOR_CONFIG": str(config), "DOZOR_ALLOWED_NETWORKS": "127.0.0.1/32",
           "DOZOR_DATA_DIR": str(tmp_path / "data")}
    return {**env, **(smtp.env() if smtp else {})}


RULES = """
rules:
  - name: takedowns
    query: 'event:removed OR event:title_changed'
    to: [desk@example.org]
"""


def _flat(out: str) -> str:
    """The output with the console's line wrapping undone."""
    return " ".join(out.split())


def _state(db: Path, url: str) -> tuple:
    store = open_store(db=db)
    try:
        ident = article_id(canonicalize(url))
        article = store.get(ident)
        return article, store.versions(ident), [e.kind for e in store.events(ident)]
    finally:
        store.close()


def test_revisits_record_versions_events_alerts_and_history(
        news_server: NewsServer, smtp: SmtpServer, tmp_path: Path) -> None:
    sources, db = _site(news_server, tmp_path), tmp_path / "d.db"
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES)
    env = _env(tmp_path, smtp)
    common = ["--db", str(db), "--alerts", str(rules)]
    run = run_dozor(["run", "--sources", str(sources), *common], env)
    assert "6 new" in run.stdout, run.stdout
    url = {k: news_server.url(f"/news/{k}.html") for k in PAGES}

    # first revisit: nothing changed; every page answers 200 (no validators yet)
    first = run_dozor(["revisit", "--all", *common], env)
    assert "6 checked, 0 not modified (304), 6 unchanged, 0 changed" in _flat(first.stdout)
    # second: the validators of the first revisit come back; every page answers 304
    second = run_dozor(["revisit", "--all", *common], env)
    assert "6 checked, 6 not modified (304)" in _flat(second.stdout), second.stdout

    news_server.add("/news/body.html", page("Колонию вербуют на фронт", 1, extra=(
        "<p>Администрация колонии отказалась от комментариев.</p>")))
    news_server.add("/news/title.html", page("Заключённых массово вербуют в отряды", 2))
    news_server.add("/news/date.html", page("Вербовка в колонии продолжается", 3,
                                            date="2026-11-29T08:00:00+00:00"))
    news_server.add("/news/gone.html", "<html><body>Not found</body></html>", status=404)
    news_server.redirect("/news/home.html", "/")
    # ads, counters and markup only: a different wrapper, another ad, more views
    news_server.add("/news/ads.html", page("Помилование за полгода фронта", 6, ad="Купите!",
                                           views=999, wrapper="main"))
    changed = run_dozor(["revisit", "--all", *common], env)
    out = _flat(changed.stdout)
    assert "6 checked" in out and "3 changed, 2 removed" in out, out + changed.stderr[-3000:]

    article, versions, events = _state(db, url["body"])
    assert [v.version for v in versions] == [1, 2] and versions[1].changed == ["text"]
    assert events == ["edited"] and "отказалась от комментариев" in article.text
    assert versions[1].warc_record_id and versions[1].warc_record_id != versions[0].warc_record_id
    assert article.change["added_sentences"] == ["Администрация колонии отказалась от "
                                                 "комментариев."]
    assert 0 < article.change["share"] < 0.2
    article, versions, events = _state(db, url["title"])
    assert events == ["title_changed"] and article.title == "Заключённых массово вербуют в отряды"
    assert versions[0].title == "Заключённых вербуют в отряды"
    article, versions, events = _state(db, url["date"])
    assert events == ["date_changed"] and article.published_at == datetime(2026, 11, 29, 8,
                                                                             tzinfo=UTC)
    for name in ("gone", "home"):
        article, versions, events = _state(db, url[name])
        assert events == ["removed"] and article.removed and article.text  # last text kept
        assert [v.version for v in versions] == [1]
    article, versions, events = _state(db, url["ads"])
    assert events == [] and versions == [] and not article.removed

    # the takedowns rule: one digest with the two removals and the title change
    assert len(smtp.messages()) == 1
    mail = smtp.messages()[0].get_body(("plain",)).get_content()
    assert "Вербовщики пришли в колонию" in mail and "Заключённых массово" in mail

    # search shows a removed article and `event:` finds it
    found = [json.loads(line) for line in run_dozor(
        ["search", "event:removed", "--json", "--db", str(db)], env).stdout.splitlines()]
    assert sorted(hit["url"] for hit in found) == sorted([url["gone"], url["home"]])

    # nothing new: no second mail for the same events
    run_dozor(["revisit", "--all", *common], env)
    assert len(smtp.messages()) == 1

    # restored: the page answers again
    news_server.add("/news/gone.html", page("Вербовщики пришли в колонию", 4))
    restored = run_dozor(["revisit", "--all", *common], env)
    assert "1 restored" in _flat(restored.stdout), restored.stdout
    article, _, events = _state(db, url["gone"])
    assert events == ["removed", "restored"] and not article.removed
    # removed again: a second removal is a new event, mailed once more
    news_server.add("/news/gone.html", "<html><body>Gone</body></html>", status=410)
    run_dozor(["revisit", "--all", *common], env)
    assert len(smtp.messages()) == 2

    history = json.loads(run_dozor(["history", url["body"], "--json", "--db", str(db)],
                                   env).stdout)
    assert [v["version"] for v in history["versions"]] == [1, 2]
    assert history["versions"][1]["diff"]["added_sentences"] == [
        "Администрация колонии отказалась от комментариев."]
    assert ["added", "Администрация колонии отказалась от комментариев."] in [
        list(w) for w in history["versions"][1]["diff"]["words"]]
    rows = {r["url"]: r for r in map(json.loads, run_dozor(
        ["export", "--json", "--versions", "--db", str(db)], env).stdout.splitlines())}
    body = rows[url["body"]]
    assert [v["version"] for v in body["versions"]] == [1, 2] and body["events"] == ["edited"]
    assert body["versions"][1]["warc_record_id"] and "отказалась" in body["text"]
    assert rows[url["gone"]]["removed"] and rows[url["ads"]]["versions"][0]["version"] == 1
    # the UI's article page: the timeline, the word diff of two versions, the archive
    store = open_store(db=db)
    try:
        with running_ui(store) as base:
            body_id = article_id(canonicalize(url["body"]))
            reply = fetch(f"{base}/article/{body_id}?a=1&b=2")
            assert reply.status == 200 and "Timeline" in reply.text
            assert "<ins>Администрация колонии отказалась от комментариев.</ins>" in reply.body
            records = {v.warc_record_id for v in store.versions(body_id)}
            assert len(records) == 2 and all(r in unescape(reply.body) for r in records)
            gone = fetch(f"{base}/article/{article_id(canonicalize(url['gone']))}")
            assert "Removed from the source" in gone.text
    finally:
        store.close()
    text = run_dozor(["history", url["title"], "--db", str(db)], env).stdout
    assert "v1" in text and "v2" in text and "title_changed" in text
    missing = run_dozor(["history", news_server.url("/nowhere"), "--db", str(db)], env,
                        expect=2)
    assert "no stored article" in missing.stderr


def test_telegram_posts_edited_and_deleted(news_server: NewsServer, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    posts = [DemoPost(id=i, date=now - timedelta(hours=10 - i),
                      html=f"Из колонии {i} вербуют заключённых в отряды «Шторм Z».")
             for i in range(1, 6)]
    for path, html in channel_pages("zonanews", "Зона", posts).items():
        news_server.add(path, html)
    sources = write_sources(tmp_path / "sources.yaml",
                            [{"name": "tg", "telegram": ["zonanews"], "lang": "ru"}])
    env = {**_env(tmp_path), "DOZOR_TELEGRAM_URL": news_server.base}
    db = tmp_path / "d.db"
    run = run_dozor(["run", "--sources", str(sources), "--db", str(db)], env)
    assert "5 new" in run.stdout, run.stdout

    # post 3 deleted (its neighbours 2 and 4 still there), post 4 edited and so marked;
    # post 5 unchanged but for its views
    posts[3].html = "Из колонии 4 вербуют заключённых. Администрация это отрицает."
    posts[3].edited = True
    posts[4].views = "5K"
    kept = [p for p in posts if p.id != 3]
    for path, html in channel_pages("zonanews", "Зона", kept).items():
        news_server.add(path, html)
    out = _flat(run_dozor(["revisit", "--all", "--db", str(db)], env).stdout)
    assert "5 checked" in out and "1 changed, 1 removed" in out, out
    base = "https://t.me/zonanews/"
    article, versions, events = _state(db, base + "3")
    assert events == ["removed"] and article.removed and "колонии 3" in article.text
    article, versions, events = _state(db, base + "4")
    assert events == ["edited"] and "отрицает" in article.text and len(versions) == 2
    assert article.change["marked_edited"] is True
    assert _state(db, base + "5")[2] == []


def test_dozor_run_revisits_what_is_due_on_the_schedule(news_server: NewsServer,
                                                        tmp_path: Path) -> None:
    sources, db = _site(news_server, tmp_path), tmp_path / "d.db"
    env = _env(tmp_path)
    Path(env["DOZOR_CONFIG"]).write_text(yaml.safe_dump(
        {"crawl": CRAWL, "revisit": {"schedule": ["2s", "1h"]}}))
    first = _flat(run_dozor(["run", "--sources", str(sources), "--db", str(db)], env).stdout)
    assert "6 new" in first and "revisits:" not in first  # nothing due yet
    time.sleep(2.5)
    news_server.add("/news/title.html", page("Заключённых массово вербуют в отряды", 2))
    second = _flat(run_dozor(["run", "--sources", str(sources), "--db", str(db)], env).stdout)
    assert "revisits: 6 checked" in second and "1 changed" in second, second
    # the next revisit is an hour away: the third run revisits nothing
    third = _flat(run_dozor(["run", "--sources", str(sources), "--db", str(db)], env).stdout)
    assert "revisits:" not in third
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"revisit": {"schedule": ["1h", "soon"]}}))
    out = run_dozor(["revisit", "--db", str(db)], {**env, "DOZOR_CONFIG": str(bad)}, expect=2)
    assert "not a delay: 'soon'" in out.stderr and "Traceback" not in out.stderr

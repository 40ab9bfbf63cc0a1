"""Revisits over the loopback Elasticsearch, through the CLI on 127.0.0.1: `dozor revisit
--source` revisits that source only; a page edited, one sent to its section page, one
that now says the article is gone; the `event:` alert percolated and mailed once;
`dozor history --es` and `dozor export --versions --es`. And what the "article gone"
phrases catch, in Russian, Ukrainian and English."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from dozor.cli import app
from pipelines.article import Article, article_id
from pipelines.revisit import removal_reason
from pipelines.store.history import RevisitTarget
from pipelines.urls import canonicalize
from tests.fakes.elasticsearch import FakeElasticsearch, fast_store
from tests.support.cli import run_dozor
from tests.support.crawl_harness import write_sources
from tests.support.httpserver import NewsServer
from tests.support.smtpserver import SmtpServer
from tests.test_revisit import RULES, _env, _flat, page
from tests.test_ui import fetch, running_ui

runner = CliRunner()
WIRE = {"body": ("Колонию вербуют на фронт", 1), "section": ("Заключённых вербуют в отряды", 2),
        "said": ("Вербовка в колонии продолжается", 3)}
OTHER = {"other": ("Вербовщики пришли в колонию", 4)}
GONE_PAGE = ('<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8"><title>Страница не '
             'найдена</title></head><body><header><a href="/">Главная</a></header><main>'
             "<h1>Страница не найдена</h1><p>Запрошенная вами публикация была удалена с сайта "
             "или перемещена по другому адресу. Воспользуйтесь поиском или вернитесь на "
             "главную страницу издания.</p></main></body></html>")


@dataclass
class EsRevisits:
    es: FakeElasticsearch
    server: NewsServer
    env: dict[str, str]
    url: dict[str, str]
    outputs: list[str]
    mails: int


def _feed(server: NewsServer, path: str, pages: dict[str, tuple[str, int]]) -> str:
    items = "".join(f"<item><title>{t}</title><link>{server.base}/news/{k}.html</link></item>"
                    for k, (t, _) in pages.items())
    return server.add(path, f'<?xml version="1.0"?><rss version="2.0"><channel><title>W'
                      f"</title>{items}</channel></rss>", "application/rss+xml")


@pytest.fixture(scope="module")
def revisited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EsRevisits]:
    work = tmp_path_factory.mktemp("es-revisit")
    smtp = SmtpServer().start()
    with FakeElasticsearch() as es, NewsServer() as server:
        server.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        server.add("/", "<html><body><h1>Wire</h1><p>Главная страница.</p></body></html>")
        server.add("/news/", "<html><body><h1>Новости</h1><ul><li>Раздел</li></ul></body></html>")
        for name, (title, n) in {**WIRE, **OTHER}.items():
            server.add(f"/news/{name}.html", page(title, n))
        sources = write_sources(work / "sources.yaml", [
            {"name": "wire", "feeds": [_feed(server, "/wire.xml", WIRE)]},
            {"name": "other", "feeds": [_feed(server, "/other.xml", OTHER)]}])
        rules = work / "alerts.yaml"
        rules.write_text(RULES)
        env = _env(work, smtp)
        common = ["--es", es.url, "--alerts", str(rules)]
        outputs = [run_dozor(["run", "--sources", str(sources), *common], env).stdout]
        server.add("/news/body.html", page("Колонию вербуют на фронт", 1, extra=(
            "<p>Администрация колонии отказалась от комментариев.</p>")))
        server.redirect("/news/section.html", "/news/")
        server.add("/news/said.html", GONE_PAGE)
        server.add("/news/other.html", "gone", status=404)
        before = len(server.requests)
        outputs.append(run_dozor(["revisit", "--all", "--source", "wire", *common], env).stdout)
        asked = server.requests[before:]
        mails = len(smtp.messages())
        outputs.append(" ".join(asked))
        try:
            yield EsRevisits(es, server, env, {k: server.url(f"/news/{k}.html")
                                               for k in {**WIRE, **OTHER}}, outputs, mails)
        finally:
            smtp.stop()


def test_revisit_over_elasticsearch_records_changes_of_that_source_only(
        revisited: EsRevisits) -> None:
    assert "4 new" in _flat(revisited.outputs[0]), revisited.outputs[0]
    out = _flat(revisited.outputs[1])
    assert "3 checked" in out and "1 changed, 2 removed" in out, out
    # --source wire: the other source's page (now a 404) was never asked for
    assert "/news/other.html" not in revisited.outputs[2]
    assert "/news/body.html" in revisited.outputs[2]
    other = revisited.es.docs("dozor-articles")[article_id(canonicalize(revisited.url["other"]))]
    assert not other["removed"] and other["events"] == []
    assert revisited.mails == 1  # the two removals, one digest
    assert revisited.es.problems == []


def _history(revisited: EsRevisits, name: str) -> dict:
    result = runner.invoke(app, ["history", revisited.url[name], "--json", "--es",
                                 revisited.es.url], env=revisited.env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_removed_when_sent_to_a_section_page_or_told_the_article_is_gone(
        revisited: EsRevisits) -> None:
    section = _history(revisited, "section")
    assert section["removed"] and [e["kind"] for e in section["events"]] == ["removed"]
    assert section["events"][0]["detail"]["reason"] == (
        f"redirected to {revisited.server.url('/news/')}")
    said = _history(revisited, "said")
    assert said["removed"] and said["events"][0]["detail"]["reason"] == (
        "the page says the article is gone")
    # the last text is kept, and the archived answer that showed the removal named
    assert said["versions"][0]["text"] and said["events"][0]["detail"]["warc_record_id"]


def test_history_and_export_versions_over_elasticsearch(revisited: EsRevisits) -> None:
    body = _history(revisited, "body")
    assert [v["version"] for v in body["versions"]] == [1, 2]
    assert body["versions"][1]["changed"] == ["text"]
    assert body["versions"][1]["diff"]["added_sentences"] == [
        "Администрация колонии отказалась от комментариев."]
    assert body["versions"][0]["warc_record_id"] != body["versions"][1]["warc_record_id"]
    text = runner.invoke(app, ["history", revisited.url["body"], "--es", revisited.es.url],
                         env=revisited.env)
    assert "v2" in text.output and "edited" in text.output
    result = runner.invoke(app, ["export", "--json", "--versions", "--es", revisited.es.url],
                           env=revisited.env)
    assert result.exit_code == 0, result.output
    rows = {r["url"]: r for r in map(json.loads, result.output.splitlines())}
    assert [v["version"] for v in rows[revisited.url["body"]]["versions"]] == [1, 2]
    assert rows[revisited.url["body"]]["events"] == ["edited"]
    assert rows[revisited.url["said"]]["removed"]
    assert [v["version"] for v in rows[revisited.url["other"]]["versions"]] == [1]
    found = runner.invoke(app, ["search", "event:removed", "--json", "--es",
                                revisited.es.url], env=revisited.env)
    assert sorted(json.loads(line)["url"] for line in found.output.splitlines()) == sorted(
        [revisited.url["section"], revisited.url["said"]])


def test_the_ui_timeline_and_archived_copies_over_elasticsearch(revisited: EsRevisits,
                                                                tmp_path: Path) -> None:
    body_id = article_id(canonicalize(revisited.url["body"]))
    warc = Path(revisited.env["DOZOR_DATA_DIR"]) / "warc"
    with fast_store(revisited.es.url, tmp_path / "spool") as store, \
            running_ui(store, warc_dir=warc) as base:
        versions = store.versions(body_id)
        page = fetch(f"{base}/article/{body_id}?a=1&b=2")
        assert page.status == 200 and "Timeline" in page.text
        assert "<ins>Администрация колонии отказалась от комментариев.</ins>" in page.body
        archived = fetch(f"{base}/article/{body_id}/archive"
                         f"?record={quote(versions[1].warc_record_id, safe='')}")
    assert archived.status == 200 and "отказалась от комментариев" in archived.body
    assert archived.headers["Content-Security-Policy"].startswith("sandbox;")


TARGET = RevisitTarget("x", "https://news.example/2026/11/story.html", "s",
                       first_seen=datetime(2026, 11, 28, tzinfo=UTC))


def _reason(title: str, text: str) -> str | None:
    page_now = Article(url=TARGET.url, canonical_url=TARGET.url, source="s",
                       fetched_at=TARGET.first_seen, title=title, text=text)
    return removal_reason(TARGET, 200, TARGET.url, False, page_now)


@pytest.mark.parametrize(("title", "text"), [
    ("Страница не найдена", "Возможно, она была перемещена."),
    ("Ошибка", "Статья была удалена по требованию правообладателя."),
    ("Новости", "Материал удалён редакцией."),
    ("Помилка 404", "Сторінку не знайдено. Поверніться на головну."),
    ("Новини", "Статтю було видалено на вимогу."),
    ("Oops", "The page you requested could not be found."),
    ("News", "This story has been removed."),
    ("News", "This content is no longer available."),
])
def test_the_article_gone_phrases(title: str, text: str) -> None:
    assert _reason(title, text) == "the page says the article is gone"


def test_an_article_quoting_such_a_phrase_is_no_removal() -> None:
    # a short text without such a phrase, and a long article quoting one
    assert _reason("Колония", "Заключённых колонии отправили на фронт.") is None
    long_text = "Статья была удалена, говорят в редакции. " + "Подробности расследования. " * 30
    assert _reason("Редакция", long_text) is None

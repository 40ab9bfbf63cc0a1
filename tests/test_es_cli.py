"""Every command with `--es`, as with `--db`: `dozor setup`, then `dozor run` twice (in
subprocesses, as a user runs it) over the never-seen news site (tests/site_unseen) into the loopback
Elasticsearch, alerts percolated there and mailed to a real SMTP server; then search,
export and the alerts commands on what was stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote, urlsplit
from urllib.request import urlopen

import pytest
import yaml
from typer.testing import CliRunner

from dozor.cli import app
from dozor.ui.server import make_ui_server, url_of
from pipelines.article import EXPORT_FIELDS, EXPORT_ID, EXPORT_WARC_FIELDS, Article
from pipelines.config.backend import store_options
from pipelines.config.config import Config
from pipelines.store import open_store
from tests.conftest import REPO
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.support.httpserver import NewsServer
from tests.support.smtpserver import SmtpServer
from tests.test_end_to_end import GOLD, SHIPPED_RULE, _rules_file, _serve

runner = CliRunner()
TIMEOUT = 180


@dataclass
class EsCrawl:
    es: FakeElasticsearch
    server: NewsServer
    rules: Path
    articles: list[Article]
    outputs: list[str]
    first_mail: list[EmailMessage]
    second_mail: list[EmailMessage]
    second_requests: list[str]


def _dozor(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-m", "dozor", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, f"dozor {args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EsCrawl]:
    work = tmp_path_factory.mktemp("es-e2e")
    es = FakeElasticsearch().start()
    server = NewsServer().start()
    smtp = SmtpServer().start()
    try:
        site = _serve(server)
        sources = work / "sources.yaml"
        sources.write_text(yaml.safe_dump(site.sources(), allow_unicode=True), encoding="utf-8")
        rules = _rules_file(work)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DOZOR_", "ELASTIC", "KIBANA"))}
        env.update(smtp.env(), DOZOR_DATA_DIR=str(work / "data"),
                   DOZOR_ALLOWED_NETWORKS="127.0.0.1/32", DOZOR_MAIL_FROM="dozor@example.org")
        args = ["run", "--sources", str(sources), "--es", es.url, "--alerts", str(rules)]
        setup = runner.invoke(app, ["setup", "--es", es.url])
        assert setup.exit_code == 0, setup.output
        outputs = [setup.output, _dozor(args, env)]
        first_mail = smtp.messages()
        before = len(server.requests)
        outputs.append(_dozor(args, env))
        articles = [Article.from_dict(doc) for doc in es.docs("dozor-articles").values()]
        yield EsCrawl(es, server, rules, articles, outputs, first_mail,
                      smtp.messages()[len(first_mail):], server.requests[before:])
    finally:
        smtp.stop()
        server.stop()
        es.stop()


def _path(url: str) -> str:
    return urlsplit(url).path


def test_the_cluster_saw_no_protocol_problem(crawl: EsCrawl) -> None:
    assert crawl.es.problems == []
    assert "created" in crawl.outputs[0]


def test_every_reachable_article_stored_once_with_the_right_verdicts(crawl: EsCrawl) -> None:
    paths = Counter(_path(a.canonical_url) for a in crawl.articles)
    assert {p: n for p, n in paths.items() if n > 1} == {}
    assert sorted(paths) == sorted(g["path"] for g in GOLD["articles"])
    by_path = {_path(a.canonical_url): a for a in crawl.articles}
    wrong = [(g["path"], by_path[g["path"]].lang, by_path[g["path"]].relevant)
             for g in GOLD["articles"]
             if (by_path[g["path"]].lang, by_path[g["path"]].relevant) != (g["lang"],
                                                                         g["relevant"])]
    assert wrong == []
    for gold in GOLD["articles"]:
        if "syndicated_of" in gold:
            copy, original = by_path[gold["path"]], by_path[gold["syndicated_of"]]
            assert copy.cluster_id and copy.cluster_id == original.cluster_id


def test_alerts_percolated_and_mailed_once(crawl: EsCrawl) -> None:
    percolations = [r for r in crawl.es.requests_to("POST", r"^/dozor-rules/_search$")
                    if b"percolate" in r.body]
    assert percolations, "the run did not match the rules with the percolator"
    assert len(crawl.first_mail) == 1
    originals = [g for g in GOLD["articles"] if g["relevant"] and "syndicated_of" not in g]
    assert f"{len(originals)} new stories" in str(crawl.first_mail[0]["Subject"])
    assert crawl.second_mail == []
    relevant = {a.id for a in crawl.articles if a.relevant}
    deliveries = crawl.es.docs("dozor-deliveries").values()
    assert {d["article_id"] for d in deliveries} == relevant
    # one sent delivery per story; the wire copy folded into its original
    assert Counter(d["status"] for d in deliveries) == {
        "sent": len(originals), "folded": len(relevant) - len(originals)}


def test_second_run_fetches_no_stored_article(crawl: EsCrawl) -> None:
    stored = {_path(a.final_url) for a in crawl.articles}
    assert sorted({p.split("?")[0] for p in crawl.second_requests} & stored) == []


def test_search_and_export_with_es(crawl: EsCrawl) -> None:
    result = runner.invoke(app, ["search", "колония", "--es", crawl.es.url, "--json"])
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert hits and all(h["id"] in {a.id for a in crawl.articles} for h in hits)
    assert all("колония" in h["query_terms"] for h in hits)
    result = runner.invoke(app, ["export", "--json", "--es", crawl.es.url])
    assert result.exit_code == 0, result.output
    exported = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(exported) == len(crawl.articles)
    assert all(list(row) == [EXPORT_ID, *EXPORT_FIELDS, *EXPORT_WARC_FIELDS, "label"]
               for row in exported)


def test_alerts_commands_with_es(crawl: EsCrawl) -> None:
    listed = runner.invoke(app, ["alerts", "list", "--alerts", str(crawl.rules),
                                 "--es", crawl.es.url])
    assert listed.exit_code == 0, listed.output
    assert SHIPPED_RULE in listed.output
    tested = runner.invoke(app, ["alerts", "test", SHIPPED_RULE, "--alerts",
                                 str(crawl.rules), "--es", crawl.es.url])
    assert tested.exit_code == 0, tested.output
    relevant = sum(a.relevant for a in crawl.articles)
    assert f"{relevant} stored article(s) match; 0 story(ies) wait to be sent." in tested.output


def test_the_analyst_ui_over_elasticsearch(crawl: EsCrawl) -> None:
    """`dozor serve --es`: front page counts, search and an article page with its cluster."""
    store = open_store(**store_options(Config.from_env(), es=crawl.es.url))
    server = make_ui_server(store, "127.0.0.1", 0, ["ru", "uk", "en"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = url_of(server)

        def page(path: str) -> str:
            with urlopen(base + path, timeout=10) as response:
                assert response.status == 200
                return response.read().decode("utf-8")

        front = page("/")
        relevant = [a for a in crawl.articles if a.relevant]
        assert str(len(crawl.articles)) in front and relevant[0].title in front
        found = page("/search?q=" + quote("колония"))
        assert "<mark>" in found
        copy = next(g for g in GOLD["articles"] if "syndicated_of" in g)
        article = next(a for a in crawl.articles if _path(a.canonical_url) == copy["path"])
        shown = page(f"/article/{article.id}")
        original = next(a for a in crawl.articles
                        if _path(a.canonical_url) == copy["syndicated_of"])
        assert original.title in shown  # the other member of its cluster
    finally:
        server.shutdown()
        store.close()

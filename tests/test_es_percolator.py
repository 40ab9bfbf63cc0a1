"""Alert rules as percolator queries: the same stories as the Python matcher, batched
percolate requests carrying only the fields rules can name, rules registered once,
and the whole alert flow (delivery log, real SMTP server) on the Elasticsearch store."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines import dedup
from pipelines.alert import load_rules, notify
from pipelines.article import Article
from pipelines.config.config import Config
from pipelines.matching import PythonMatcher
from pipelines.query import DATE_FIELDS, FIELD_ATTRS, FIELDS, SCOPE_FIELDS
from pipelines.store.elastic import ElasticStore
from pipelines.store.elastic.percolator import PercolatorMatcher
from tests.fakes.elasticsearch import FakeElasticsearch, fast_store
from tests.support.alerts import rules_file
from tests.support.articles import corpus
from tests.support.smtpserver import SmtpServer

RULES = """\
    rules:
      - name: recruitment
        query: 'relevant:true'
        to: [desk@example.org]
      - name: storm-z-ru
        query: '"Шторм-Z" AND колония'
        languages: [ru]
        to: [ru@example.org]
      - name: convicts-not-composer
        query: '(convicts OR заключённые OR ув*язн*) AND NOT композитор'
        to: [desk@example.org]
      - name: wagner-wildcard
        query: 'вагнер* OR wagner'
        sources: [meduza, reuters, bbc]
        to: [desk@example.org]
      - name: pardon-phrase
        query: '"pardoned after" OR помилование'
        to: [desk@example.org]
      - name: nothing
        query: 'марсиане'
        to: [desk@example.org]
"""


@pytest.fixture
def store(fake: FakeElasticsearch, tmp_path: Path) -> Iterator[ElasticStore]:
    with fast_store(fake.url, tmp_path / "spool") as s:
        yield s


@pytest.fixture
def articles(store: ElasticStore) -> list[Article]:
    stored = dedup.dedup(list(corpus().values()), store)
    store.write(stored)
    return stored


def _percolate_requests(fake: FakeElasticsearch) -> list[dict]:
    bodies = [r.json() for r in fake.requests_to("POST", r"^/dozor-rules/_search$")]
    return [b for b in bodies if "percolate" in str(b["query"])]


def test_percolator_matches_what_the_python_matcher_matches(
        store: ElasticStore, fake: FakeElasticsearch, articles: list[Article],
        tmp_path: Path) -> None:
    rules = load_rules(rules_file(tmp_path, RULES))
    expected = PythonMatcher().match(rules, articles)
    # the rules are not trivial: most match something, none match everything
    assert sum(1 for ids in expected.values() if ids) >= 4
    assert all(len(ids) < len(articles) for ids in expected.values())
    assert expected["nothing"] == []
    matcher = PercolatorMatcher(store, batch=3)
    assert matcher.match(rules, articles) == expected
    requests = _percolate_requests(fake)
    assert len(requests) == math.ceil(len(articles) / 3)
    for body in requests:
        (percolate,) = body["query"]["bool"]["must"]
        documents = percolate["percolate"]["documents"]
        assert percolate["percolate"]["field"] == "query"
        assert 1 <= len(documents) <= 3
        # what a rule may name, by index name: fields, dates, the title's and text's terms
        wanted = ({FIELD_ATTRS.get(f, f) for f in FIELDS} | set(DATE_FIELDS.values())
                  | set(SCOPE_FIELDS.values()))
        assert all(set(doc) == wanted for doc in documents)
        assert body["query"]["bool"]["filter"] == [
            {"ids": {"values": [r.name for r in rules]}}]


def test_rules_are_stored_as_their_compiled_queries(
        store: ElasticStore, fake: FakeElasticsearch, tmp_path: Path) -> None:
    rules = load_rules(rules_file(tmp_path, RULES))
    assert sorted(PercolatorMatcher(store).register(rules)) == sorted(r.name for r in rules)
    stored = fake.docs("dozor-rules")
    for rule in rules:
        assert stored[rule.name]["query"] == rule.query.to_es()
        assert stored[rule.name]["source_query"] == rule.query.text
    # unchanged rules are not written again; a changed one is; a removed one goes
    assert PercolatorMatcher(store).register(rules) == []
    edited = RULES.replace("'марсиане'", "'инопланетяне'").replace(
        "      - name: pardon-phrase\n        query: '\"pardoned after\" OR помилование'\n"
        "        to: [desk@example.org]\n", "")
    fewer = load_rules(rules_file(tmp_path, edited, "edited.yaml"))
    assert PercolatorMatcher(store).register(fewer) == ["nothing"]
    assert "pardon-phrase" not in fake.docs("dozor-rules")
    assert fake.docs("dozor-rules")["nothing"]["source_query"] == "инопланетяне"


def test_store_offers_the_percolator_to_the_alerts(store: ElasticStore) -> None:
    assert isinstance(store.alert_matcher(), PercolatorMatcher)


def test_python_fallback_when_the_cluster_cannot_percolate(
        store: ElasticStore, fake: FakeElasticsearch, articles: list[Article],
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rules = load_rules(rules_file(tmp_path, RULES))
    store.ensure_indices()
    fake.fail("POST", r"^/dozor-rules/_search$", 400, times=10)
    with caplog.at_level(logging.WARNING):
        found = PercolatorMatcher(store).match(rules, articles)
    assert found == PythonMatcher().match(rules, articles)
    assert "matching the rules in Python" in caplog.text


def test_no_rules_or_no_articles_asks_nothing(store: ElasticStore, fake: FakeElasticsearch,
                                             articles: list[Article], tmp_path: Path) -> None:
    rules = load_rules(rules_file(tmp_path, RULES))
    before = len(fake.requests)
    assert PercolatorMatcher(store).match(rules, []) == {r.name: [] for r in rules}
    assert PercolatorMatcher(store).match([], articles) == {}
    assert len(fake.requests) == before


def test_alert_flow_on_elasticsearch_sends_each_story_once(
        store: ElasticStore, fake: FakeElasticsearch, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """New articles percolated at ingest, queued in the deliveries index, one digest per
    rule to a real SMTP server; a second run sends nothing; SMTP down keeps them pending."""
    smtp = SmtpServer().start()
    try:
        for key, value in smtp.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DOZOR_MAIL_FROM", "dozor@example.org")
        path = rules_file(tmp_path, """\
            rules:
              - name: recruitment
                title: Prisoner recruitment
                query: 'relevant:true'
                to: [desk@example.org]
            """)
        docs = corpus()
        first = list(docs.values())[:6]
        new_ids = store.write(dedup.dedup(first, store)).new
        report = notify(store, path, new_ids, Config.from_env())
        relevant = [a for a in first if a.relevant]
        assert report.queued == {"recruitment": len(relevant)}
        (message,) = smtp.messages()
        assert "new stor" in message["Subject"]
        log = {d["article_id"]: d for d in fake.docs("dozor-deliveries").values()}
        assert {d["status"] for d in log.values()} == {"sent", "folded"}
        # a syndicated copy is logged folded into its story, which was sent
        for copy in (d for d in log.values() if d["status"] == "folded"):
            assert log[copy["folded_into"]]["status"] == "sent"
        # the same ids again (a restart): nothing queued, nothing sent
        again = notify(store, path, new_ids, Config.from_env())
        assert again.queued == {"recruitment": 0} and len(smtp.messages()) == 1
        # SMTP refuses: the next story stays pending, then goes out once
        smtp.mode = "451 4.3.0 Try again later"
        later = [a for a in list(docs.values())[6:] if a.relevant] or [
            replace(list(docs.values())[6], relevant=True)]
        more = store.write(dedup.dedup(later, store)).new
        failed = notify(store, path, more, Config.from_env())
        assert failed.failed and failed.folded == {"recruitment": 1}
        # one story each, the English wire copy folded into its original
        assert len(store.pending_deliveries("recruitment")) == len(more) - 1
        smtp.mode = "accept"
        sent = notify(store, path, [], Config.from_env())
        assert len(sent.sent) == 1 and store.pending_deliveries("recruitment") == []
        assert len(smtp.messages()) == 2
    finally:
        smtp.stop()


def test_a_rule_asking_for_possible_stories_percolates_them_too(
        store: ElasticStore, tmp_path: Path) -> None:
    docs = corpus()
    # the same stories, elsewhere, nearly on topic
    near = [replace(docs[name], url=docs[name].url + "?near", id="",
                    canonical_url=docs[name].url + "?near", relevant=False, possible=True,
                    score=0.3333) for name in ("ru_composer", "en_prison_reform")]
    stored = dedup.dedup([*docs.values(), *near], store)
    store.write(stored)
    rules = load_rules(rules_file(tmp_path, """\
        rules:
          - name: with-possible
            query: 'relevant:true'
            languages: [ru]
            possible: true
            to: [desk@example.org]
    """))
    expected = PythonMatcher().match(rules, stored)
    assert near[0].id in expected["with-possible"]  # Russian, possible
    assert near[1].id not in expected["with-possible"]  # English: outside the rule
    assert PercolatorMatcher(store, batch=4).match(rules, stored) == expected

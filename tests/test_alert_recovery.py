"""Alerts across runs, on both backends (a real SQLite file; the loopback Elasticsearch)
with a real SMTP server: the stories of a run that died before its alert step go out
with the next run, once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.alert import notify
from pipelines.store import Store
from pipelines.store.elastic import BulkSettings, ElasticStore, connect
from pipelines.store.spool import Spool
from pipelines.store.sqlite import SQLiteStore
from tests.alert_helpers import RECRUITMENT_RULES, RELEVANT, rules_file, store_articles
from tests.fake_es import FakeElasticsearch
from tests.sample_articles import corpus
from tests.smtpserver import SmtpServer

RULE = "recruitment"
LEADS = ("ru_wire", "ru_other", "uk", "en_wire", "en_other")  # the copies fold into two


@pytest.fixture(params=["sqlite", "elasticsearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        with SQLiteStore(tmp_path / "dozor.db") as s:
            yield s
        return
    with FakeElasticsearch() as fake:
        client = connect(fake.url, backoff_base=0.01, backoff_cap=0.02)
        with ElasticStore(fake.url, client=client, spool=Spool(tmp_path / "spool"),
                          bulk=BulkSettings(initial_backoff=0.01)) as s:
            yield s
        assert fake.problems == []


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    for key, value in server.env(DOZOR_MAIL_FROM="dozor@example.org").items():
        monkeypatch.setenv(key, value)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    return rules_file(tmp_path, RECRUITMENT_RULES)


def _text(smtp: SmtpServer, n: int) -> str:
    return smtp.messages()[n].get_body(("plain",)).get_content()


def test_stories_of_a_run_that_died_before_its_alerts_go_out_with_the_next_run(
        store: Store, smtp: SmtpServer, rules: Path) -> None:
    docs = corpus()
    # a run stores the corpus and dies: its new ids, held in memory, are gone
    store_articles(store, list(docs.values()))
    assert len(store.unmatched_ids()) == len(docs)
    # the next run stored nothing new
    report = notify(store, rules, [])
    assert report.queued == {RULE: len(RELEVANT)}
    (message,) = smtp.messages()
    assert message["Subject"] == "5 new stories — Prisoner recruitment: en 2, ru 2, uk 1"
    text = _text(smtp, 0)
    assert all(docs[name].title in text for name in LEADS)
    assert store.unmatched_ids() == [] and store.pending_deliveries() == []
    again = notify(store, rules, [])
    assert again.queued == {RULE: 0} and again.digests == []
    assert len(smtp.messages()) == 1


def test_a_crash_between_matching_and_clearing_the_mark_queues_nothing_twice(
        store: Store, smtp: SmtpServer, rules: Path) -> None:
    """Matches recorded, marks not yet cleared when the process died: the next run
    matches the same articles again and finds every match already in the log."""
    docs = corpus()
    store_articles(store, list(docs.values()))
    store.add_deliveries(RULE, [docs[name].id for name in RELEVANT])
    report = notify(store, rules, [])
    assert report.queued == {RULE: 0}
    (sent,) = report.sent
    assert sent.stories == len(LEADS)
    assert len(smtp.messages()) == 1 and store.unmatched_ids() == []

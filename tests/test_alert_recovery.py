"""Alerts across runs, on both backends (a real SQLite file; the loopback Elasticsearch)
with a real SMTP server: the stories of a run that died before its alert step go out
with the next run, once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.alert import notify
from pipelines.config.config import Config
from pipelines.store import Store
from tests.support.alerts import (
    LEADS,
    RECRUITMENT_RULES,
    RELEVANT,
    backend_store,
    rules_file,
    store_articles,
)
from tests.support.articles import corpus
from tests.support.smtpserver import SmtpServer

RULE = "recruitment"


@pytest.fixture(params=["sqlite", "elasticsearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with backend_store(request.param, tmp_path) as s:
        yield s


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
    report = notify(store, rules, [], Config.from_env())
    assert report.queued == {RULE: len(RELEVANT)}
    (message,) = smtp.messages()
    assert message["Subject"] == "5 new stories — Prisoner recruitment: en 2, ru 2, uk 1"
    text = _text(smtp, 0)
    assert all(docs[name].title in text for name in LEADS)
    assert store.unmatched_ids() == [] and store.pending_deliveries() == []
    again = notify(store, rules, [], Config.from_env())
    assert again.queued == {RULE: 0} and again.digests == []
    assert len(smtp.messages()) == 1


def test_a_crash_between_matching_and_clearing_the_mark_queues_nothing_twice(
        store: Store, smtp: SmtpServer, rules: Path) -> None:
    """Matches recorded, marks not yet cleared when the process died: the next run
    matches the same articles again and finds every match already in the log."""
    docs = corpus()
    store_articles(store, list(docs.values()))
    store.add_deliveries(RULE, [docs[name].id for name in RELEVANT])
    report = notify(store, rules, [], Config.from_env())
    assert report.queued == {RULE: 0}
    (sent,) = report.sent
    assert sent.stories == len(LEADS)
    assert len(smtp.messages()) == 1 and store.unmatched_ids() == []


# ------------------------------------------------------------- syndicated copies


def test_delivery_log_folds_copies_into_their_story(store: Store) -> None:
    docs = corpus()
    store_articles(store, list(docs.values()))
    wire, copy, other = (docs[n] for n in ("ru_wire", "ru_copy", "ru_other"))
    wire, copy = store.get(wire.id), store.get(copy.id)
    assert wire.cluster_id == copy.cluster_id == wire.id
    assert store.cluster_deliveries(RULE, [wire.cluster_id, ""]) == {}
    assert store.add_deliveries(RULE, [wire.id, copy.id, other.id],
                                folded_into={copy.id: wire.id}) == [wire.id, copy.id, other.id]
    assert store.add_deliveries(RULE, [copy.id], folded_into={copy.id: other.id}) == []
    # the story of a cluster is carried by its delivery that is not folded
    assert store.cluster_deliveries(RULE, [wire.cluster_id, other.cluster_id]) == {
        wire.cluster_id: wire.id, other.cluster_id: other.id}
    assert store.cluster_deliveries("other-rule", [wire.cluster_id]) == {}
    (folded,) = store.folded_deliveries(RULE, [wire.id, other.id])
    assert (folded.article_id, folded.status, folded.folded_into) == (copy.id, "folded", wire.id)
    assert store.folded_deliveries("other-rule", [wire.id]) == []
    # a folded delivery is never pending, and nothing sends it on its own
    assert {d.article_id for d in store.pending_deliveries(RULE)} == {wire.id, other.id}
    store.mark_sending(RULE, [wire.id, copy.id], "<digest@dozor>")
    store.mark_delivered(RULE, [wire.id, copy.id])
    store.mark_delivery_failed(RULE, [copy.id], "late")
    (folded,) = store.folded_deliveries(RULE, [wire.id])
    assert (folded.status, folded.attempts, folded.message_id) == ("folded", 0, None)
    assert store.cluster_deliveries(RULE, [wire.cluster_id]) == {wire.cluster_id: wire.id}


def test_the_earliest_recorded_delivery_of_a_cluster_carries_its_story(store: Store) -> None:
    docs = corpus()
    store_articles(store, list(docs.values()))
    wire, copy = docs["ru_wire"], docs["ru_copy"]
    # the copy was logged on its own first (as a story, not folded): it carries the story,
    # though the wire founded the cluster
    assert store.add_deliveries(RULE, [copy.id]) == [copy.id]
    assert store.add_deliveries(RULE, [wire.id]) == [wire.id]
    # logged in one write, at one time: the smaller id
    assert store.add_deliveries("other-rule", [wire.id, copy.id]) == [wire.id, copy.id]
    assert store.many_cluster_deliveries(
        {RULE: [wire.id], "other-rule": [wire.id, ""], "third-rule": [wire.id]}) == {
        RULE: {wire.id: copy.id}, "other-rule": {wire.id: min(wire.id, copy.id)},
        "third-rule": {}}
    # a batch with new pairs before one logged already records the new ones, once
    other = docs["ru_other"]
    assert store.add_many_deliveries({"third-rule": [copy.id], RULE: [other.id, wire.id]}) == {
        "third-rule": [copy.id], RULE: [other.id]}
    assert sorted(d.article_id for d in store.pending_deliveries(RULE)) == sorted(
        [copy.id, wire.id, other.id])


def test_a_copy_of_a_story_sent_in_an_earlier_run_is_folded_not_sent_again(
        store: Store, smtp: SmtpServer, rules: Path) -> None:
    docs = corpus()
    store_articles(store, [docs["ru_wire"], docs["uk"]])
    first = notify(store, rules, [], Config.from_env())
    assert [d.stories for d in first.sent] == [2]
    # the next run finds the wire story again at another outlet
    (copy_id,) = store_articles(store, [docs["ru_copy"]])
    assert store.get(copy_id).cluster_id == docs["ru_wire"].id
    second = notify(store, rules, [], Config.from_env())
    assert (second.queued, second.folded, second.digests) == ({RULE: 1}, {RULE: 1}, [])
    assert "1 new match(es) (1 syndicated copy of a story)" in "\n".join(second.lines())
    (folded,) = store.folded_deliveries(RULE, [docs["ru_wire"].id])
    assert (folded.article_id, folded.status) == (copy_id, "folded")
    assert store.pending_deliveries() == []
    # a story of its own in the same run still goes out, alone
    store_articles(store, [docs["en_copy"], docs["en_other"]])
    third = notify(store, rules, [], Config.from_env())
    assert [d.stories for d in third.sent] == [2]  # the English copy is a new story here
    assert len(smtp.messages()) == 2
    assert notify(store, rules, [], Config.from_env()).digests == []
    assert docs["ru_copy"].title not in "".join(_text(smtp, n) for n in range(2))


def test_a_copy_arriving_while_its_story_waits_is_listed_under_it(
        store: Store, smtp: SmtpServer, rules: Path) -> None:
    docs = corpus()
    smtp.mode = "451 4.3.0 Try again later"
    store_articles(store, [docs["ru_wire"]])
    assert notify(store, rules, [], Config.from_env()).failed
    smtp.mode = "accept"
    store_articles(store, [docs["ru_copy"]])
    report = notify(store, rules, [], Config.from_env())
    assert report.folded == {RULE: 1}
    (sent,) = report.sent
    assert (sent.stories, sent.articles) == (1, 2)
    (message,) = smtp.messages()
    assert message["Subject"] == "1 new story — Prisoner recruitment: ru 1"
    text = _text(smtp, 0)
    assert docs["ru_wire"].title in text and docs["ru_copy"].title not in text
    assert f"Also in: ural-news (ru) {docs['ru_copy'].url}" in text
    assert notify(store, rules, [], Config.from_env()).digests == [] and len(smtp.messages()) == 1


@pytest.mark.parametrize("stage", ["connecting", "data", "end-of-data"])
def test_a_digest_a_crash_interrupted_goes_again_as_far_as_it_got(
        stage: str, store: Store, smtp: SmtpServer, rules: Path) -> None:
    """A run died while handing the wire story's digest over (left "sending" at
    `stage`). The copy found next is folded into it. Before the end of the message the
    server cannot have it: the story goes out once, as any other. After it, the outcome
    is unknown: it goes out again with the same Message-ID, marked a possible repeat."""
    docs = corpus()
    store_articles(store, [docs["ru_wire"]])
    no_rules = rules_file(rules.parent, "rules: []\n", "none.yaml")
    notify(store, no_rules, [], Config.from_env())  # clears the mark, as a past alert step would
    wire = docs["ru_wire"].id
    store.add_deliveries(RULE, [wire])
    store.mark_sending(RULE, [wire], "<interrupted@dozor>")
    if stage != "connecting":
        store.mark_stage(RULE, [wire], "data")
    if stage == "end-of-data":
        store.mark_stage(RULE, [wire], "end-of-data")
    store_articles(store, [docs["ru_copy"]])
    report = notify(store, rules, [], Config.from_env())
    assert report.folded == {RULE: 1}
    [outcome] = report.digests
    [message] = smtp.messages()
    unknown = stage == "end-of-data"
    assert (outcome.status, outcome.possible_repeat) == ("sent", unknown)
    assert (message["Message-ID"] == "<interrupted@dozor>") is unknown
    assert message.get("X-Dozor-Possible-Repeat") == ("yes" if unknown else None)
    assert ("may be a repeat" in _text(smtp, 0)) is unknown
    assert docs["ru_copy"].source in _text(smtp, 0)  # listed under its story
    lines = "\n".join(report.lines())
    assert "crash" not in lines
    assert ("outcome unknown" if unknown else "not delivered") in lines
    assert store.pending_deliveries() == []
    assert notify(store, rules, [], Config.from_env()).digests == [] and len(smtp.messages()) == 1


def test_sent_deliveries_lists_only_what_went_out_to_that_rule(store: Store) -> None:
    docs = corpus()
    store_articles(store, list(docs.values()))
    wire, other = docs["ru_wire"], docs["ru_other"]
    store.add_deliveries(RULE, [wire.id, other.id])
    assert store.sent_deliveries(RULE, [wire.id, other.id]) == []
    store.mark_sending(RULE, [wire.id], "<digest@dozor>")
    assert store.sent_deliveries(RULE, [wire.id, other.id]) == []  # sending is not sent
    store.mark_delivered(RULE, [wire.id])
    (sent,) = store.sent_deliveries(RULE, [wire.id, other.id])
    assert (sent.article_id, sent.status) == (wire.id, "sent") and sent.sent_at is not None
    assert store.sent_deliveries("other-rule", [wire.id]) == []

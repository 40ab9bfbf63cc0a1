"""The delivery flow on the embedded default: what counts as new, one digest per rule
per run, the digest limit, the outbox when no SMTP is configured, and load errors."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from pipelines.alert import notify
from pipelines.article import utcnow
from pipelines.config.config import Config
from pipelines.errors import ConfigError
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import (
    LEADS,
    RECRUITMENT_RULES,
    RELEVANT,
    rules_file,
    store_articles,
    stored_corpus,
)
from tests.support.articles import article

TWO_RULES = RECRUITMENT_RULES + """\
      - name: recruitment-uk
        query: 'relevant:true AND lang:uk'
        to: [uk-desk@example.org]
"""


def outbox() -> list[Path]:
    return sorted(Config.from_env().paths.outbox.glob("*.eml"))


def read_eml(path: Path) -> EmailMessage:
    return message_from_bytes(path.read_bytes(), policy=default_policy)  # type: ignore[return-value]


def test_without_smtp_each_digest_is_an_eml_file_in_the_outbox(
        tmp_path: Path, store: SQLiteStore) -> None:
    docs, new_ids = stored_corpus(store)
    report = notify(store, rules_file(tmp_path, TWO_RULES), new_ids, Config.from_env())

    files = outbox()
    assert len(files) == 2  # one digest per rule
    assert Config.from_env().paths.outbox == tmp_path / "data" / "outbox"
    lines = "\n".join(report.lines())
    assert f"via outbox {Config.from_env().paths.outbox}" in lines
    assert all(str(f) in lines for f in files)
    by_rule = {read_eml(f)["X-Dozor-Rule"]: read_eml(f) for f in files}
    assert by_rule["recruitment"]["Subject"] == (
        "5 new stories — Prisoner recruitment: en 2, ru 2, uk 1")
    assert by_rule["recruitment-uk"]["Subject"] == "1 new story — recruitment-uk: uk 1"
    assert by_rule["recruitment-uk"]["To"] == "uk-desk@example.org"
    text = by_rule["recruitment-uk"].get_body(("plain",)).get_content()
    assert docs["uk"].title in text
    assert report.queued == {"recruitment": len(RELEVANT), "recruitment-uk": 1}


def test_outbox_folder_from_the_environment(tmp_path: Path, store: SQLiteStore,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOZOR_OUTBOX", str(tmp_path / "mail out"))
    _, new_ids = stored_corpus(store)
    notify(store, rules_file(tmp_path, RECRUITMENT_RULES), new_ids, Config.from_env())
    [eml] = (tmp_path / "mail out").glob("*.eml")
    assert eml.name.endswith(".eml") and "-recruitment-" in eml.name
    assert not list((tmp_path / "mail out").glob("*.tmp"))


def test_new_means_stored_now_not_published_recently(tmp_path: Path,
                                                     store: SQLiteStore) -> None:
    rules = rules_file(tmp_path, RECRUITMENT_RULES)
    # stored by a run whose alert step came before the rule existed
    docs, new_ids = stored_corpus(store)
    none = rules_file(tmp_path, "rules: []\n", "none.yaml")
    assert notify(store, none, new_ids, Config.from_env()).digests == []
    assert store.unmatched_ids() == []
    assert notify(store, rules, [], Config.from_env()).digests == []
    # an old story found only today alerts; what was stored before does not come back
    old = article("https://oblast.example/archive/2019/convoy",
                  "Этап из колонии: заключённых увезли на фронт",
                  "Заключённых исправительной колонии вывезли автобусами на фронт после "
                  "вербовки. Осуждённым обещали помилование через полгода.",
                  lang="ru", source="oblast", relevant=True, score=0.8,
                  published=utcnow() - timedelta(days=400))
    new_ids = store_articles(store, [old])
    assert new_ids == [old.id]
    report = notify(store, rules, new_ids, Config.from_env())
    [eml] = outbox()
    message = read_eml(eml)
    assert message["Subject"] == "1 new story — Prisoner recruitment: ru 1"
    text = message.get_body(("plain",)).get_content()
    assert old.title in text and f"· {old.published_at:%Y-%m-%d} ·" in text
    assert docs["ru_wire"].title not in text
    assert report.queued == {"recruitment": 1}


def test_a_restart_never_resends(tmp_path: Path, store: SQLiteStore) -> None:
    rules = rules_file(tmp_path, RECRUITMENT_RULES)
    _, new_ids = stored_corpus(store)
    assert len(notify(store, rules, new_ids, Config.from_env()).sent) == 1
    # the same ids again (a run repeated after a restart) and a run with nothing new
    again = notify(store, rules, new_ids, Config.from_env())
    assert again.queued == {"recruitment": 0} and again.digests == []
    assert notify(store, rules, [], Config.from_env()).digests == []
    assert len(outbox()) == 1


def test_digest_limit_overflow_waits_for_the_next_digest(tmp_path: Path,
                                                         store: SQLiteStore) -> None:
    limited = RECRUITMENT_RULES.replace("to: [", "digest_limit: 3\n        to: [")
    rules = rules_file(tmp_path, limited)
    docs, new_ids = stored_corpus(store)
    first = notify(store, rules, new_ids, Config.from_env())
    [sent] = first.sent
    assert (sent.stories, sent.waiting) == (3, 2)
    assert "2 more waiting for the next digest" in "\n".join(first.lines())
    assert len(store.pending_deliveries("recruitment")) > 0

    second = notify(store, rules, [], Config.from_env())
    [rest] = second.sent
    assert (rest.stories, rest.waiting) == (2, 0)
    assert store.pending_deliveries() == []
    assert notify(store, rules, [], Config.from_env()).digests == []

    stories = []
    for eml in outbox():
        message = read_eml(eml)
        text = message.get_body(("plain",)).get_content()
        stories += [docs[n].title for n in RELEVANT if docs[n].title in text]
    # every story exactly once over the two digests; copies only as "also in"
    assert sorted(stories) == sorted(docs[n].title for n in LEADS)


def test_unwritable_outbox_keeps_the_digest_pending(tmp_path: Path, store: SQLiteStore,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the outbox should be")
    monkeypatch.setenv("DOZOR_OUTBOX", str(blocker))
    rules = rules_file(tmp_path, RECRUITMENT_RULES)
    _, new_ids = stored_corpus(store)
    report = notify(store, rules, new_ids, Config.from_env())
    [failed] = report.failed
    assert f"cannot write to the outbox {blocker}" in failed.detail
    assert len(store.pending_deliveries()) == len(LEADS)

    monkeypatch.setenv("DOZOR_OUTBOX", str(tmp_path / "outbox"))
    assert len(notify(store, rules, [], Config.from_env()).sent) == 1
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_bad_rules_file_fails_before_anything_is_queued(tmp_path: Path,
                                                        store: SQLiteStore) -> None:
    rules = rules_file(tmp_path, """\
        rules:
          - name: broken
            query: 'relevant:true AND'
            to: [a@example.org]
    """)
    _, new_ids = stored_corpus(store)
    with pytest.raises(ConfigError, match=r"rules\[0\] \(broken\) → query"):
        notify(store, rules, new_ids, Config.from_env())
    assert store.pending_deliveries() == []
    with pytest.raises(ConfigError, match="file not found"):
        notify(store, tmp_path / "missing.yaml", new_ids, Config.from_env())

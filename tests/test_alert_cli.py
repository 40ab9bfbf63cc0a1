"""`dozor alerts list | test | send` on a real database file and a real SMTP server."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dozor.cli import app
from pipelines.alert import notify
from pipelines.alert.mailer import SmtpMailer, SmtpSettings
from pipelines.config.config import Config
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import (
    COPIES,
    LEADS,
    OFF_TOPIC,
    RECRUITMENT_RULES,
    RELEVANT,
    rules_file,
    stored_corpus,
)
from tests.support.smtpserver import SmtpServer, closed_port

runner = CliRunner()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A database with the corpus stored by an earlier run whose digest could not go out."""
    db, rules = tmp_path / "dozor.db", rules_file(tmp_path, RECRUITMENT_RULES)
    with SQLiteStore(db) as store:
        docs, new_ids = stored_corpus(store)
        report = notify(store, rules, new_ids, Config.from_env(), mailer=_down())
        assert report.failed
    return db, rules, docs


def _down() -> SmtpMailer:
    """A mailer whose server refuses connections."""
    return SmtpMailer(SmtpSettings("127.0.0.1", closed_port(), timeout=2))


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["alerts", *args])
    return result.exit_code, result.output


def test_list_shows_rules_pending_counts_and_destination(setup: tuple[Path, Path, dict],
                                                        tmp_path: Path) -> None:
    db, rules, _ = setup
    code, out = invoke("list", "--alerts", str(rules), "--db", str(db))
    assert code == 0, out
    assert "recruitment" in out and "Prisoner recruitment" in out
    assert "relevant:true" in out and "desk@example.org" in out
    assert f"│ {len(LEADS)} " in out  # pending stories: the copies are folded into theirs
    assert "digests go to: outbox" in out
    # the rule renamed: its pending deliveries are reported, not silently dropped
    renamed = rules_file(tmp_path, RECRUITMENT_RULES.replace("name: recruitment",
                                                             "name: recruitment-v2"), "v2.yaml")
    code, out = invoke("list", "--alerts", str(renamed), "--db", str(db))
    assert code == 0, out
    assert f"{len(LEADS)} pending stories for 'recruitment', which is no longer" in out


def test_test_shows_matches_and_the_pending_digest_and_sends_nothing(
        setup: tuple[Path, Path, dict], smtp: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    db, rules, docs = setup
    for key, value in smtp.env().items():
        monkeypatch.setenv(key, value)
    code, out = invoke("test", "recruitment", "--alerts", str(rules), "--db", str(db),
                       "--preview", "--limit", "50")
    assert code == 0, out
    assert (f"{len(RELEVANT)} stored article(s) match; {len(LEADS)} story(ies) wait to be "
            f"sent, with {len(COPIES)} syndicated copy(ies) listed under them") in out
    assert "would send: 5 new stories — Prisoner recruitment: en 2, ru 2, uk 1" in out
    assert "Also in: ural-news (ru)" in out  # the preview's text part
    listed = out.split("would send")[0]
    for name in OFF_TOPIC:
        assert docs[name].source not in listed
    for name in RELEVANT:
        assert docs[name].source in listed
    assert smtp.received == [] and not list(Config.from_env().paths.outbox.glob("*.eml"))
    with SQLiteStore(db) as store:
        assert len(store.pending_deliveries()) == len(LEADS)


def test_test_with_an_unknown_rule_names_the_rules(setup: tuple[Path, Path, dict]) -> None:
    db, rules, _ = setup
    code, out = invoke("test", "nosuch", "--alerts", str(rules), "--db", str(db))
    assert code == 2
    assert "no rule 'nosuch'; the rules are: recruitment" in out


def test_send_delivers_what_is_pending_once(setup: tuple[Path, Path, dict], smtp: SmtpServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    db, rules, _ = setup
    monkeypatch.setenv("DOZOR_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DOZOR_SMTP_PORT", str(closed_port()))
    code, out = invoke("send", "--alerts", str(rules), "--db", str(db))
    assert code == 1 and "NOT sent" in out and "Connection refused" in out

    monkeypatch.setenv("DOZOR_SMTP_PORT", str(smtp.port))
    code, out = invoke("send", "--alerts", str(rules), "--db", str(db))
    assert code == 0, out
    assert "1 digest(s) sent via SMTP 127.0.0.1" in out
    assert [m["Subject"] for m in smtp.messages()] == [
        "5 new stories — Prisoner recruitment: en 2, ru 2, uk 1"]
    code, out = invoke("send", "--alerts", str(rules), "--db", str(db))
    assert code == 0 and "0 digest(s) sent" in out
    assert len(smtp.received) == 1


def test_send_matches_what_a_stopped_run_left_unmatched(tmp_path: Path, smtp: SmtpServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed after storing, before its alert step: `alerts list` says so and
    `alerts send` completes that step."""
    db, rules = tmp_path / "dozor.db", rules_file(tmp_path, RECRUITMENT_RULES)
    with SQLiteStore(db) as store:
        stored_corpus(store)
    code, out = invoke("list", "--alerts", str(rules), "--db", str(db))
    assert code == 0 and "10 stored article(s) not matched against the rules yet" in out
    monkeypatch.setenv("DOZOR_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DOZOR_SMTP_PORT", str(smtp.port))
    code, out = invoke("send", "--alerts", str(rules), "--db", str(db))
    assert code == 0, out
    assert f"{len(RELEVANT)} new match(es) ({len(COPIES)} syndicated copies of a story)" in out
    assert [m["Subject"] for m in smtp.messages()] == [
        "5 new stories — Prisoner recruitment: en 2, ru 2, uk 1"]
    code, out = invoke("list", "--alerts", str(rules), "--db", str(db))
    assert code == 0 and "not matched" not in out


def test_bad_rules_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = rules_file(tmp_path, "rules:\n  - name: x\n    query: 'a OR'\n    to: [a@example.org]\n")
    for command in ("list", "send"):
        code, out = invoke(command, "--alerts", str(bad), "--db", str(tmp_path / "d.db"))
        assert code == 2
        assert "rules[0] (x) → query:" in out and "Traceback" not in out


def test_preview_marks_the_stories_already_sent_with_their_dates(
        setup: tuple[Path, Path, dict], smtp: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    db, rules, docs = setup
    for key, value in smtp.env().items():
        monkeypatch.setenv(key, value)
    assert invoke("send", "--alerts", str(rules), "--db", str(db))[0] == 0
    code, out = invoke("test", "recruitment", "--alerts", str(rules), "--db", str(db),
                       "--preview", "--limit", "50")
    assert code == 0, out
    with SQLiteStore(db) as store:
        sent = store.sent_deliveries("recruitment", [docs[n].id for n in RELEVANT])
    assert sorted(d.article_id for d in sent) == sorted(docs[n].id for n in LEADS)
    day = f"{sent[0].sent_at:%Y-%m-%d}"
    assert f"Already sent ({len(LEADS)}), not in the next digest:" in out
    assert out.count(f"[sent {day} ") == len(LEADS)
    assert "Nothing is pending: `dozor alerts send` would send nothing." in out
    for name in LEADS:
        assert docs[name].title[:30] in out.split("Already sent")[1].replace("\n", " ")
    assert len(smtp.received) == 1  # the preview sent nothing

"""Rule schedules (immediate, hourly, daily HH:MM, weekly DAY HH:MM in the alerts file's
time zone): stories matched between due times wait for the next digest, decided from
when the rule last sent one; and the alerts file's ui_url, which links each story of a
digest to its UI page and the digest to the rule's search. Digests go to aiosmtpd."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipelines.alert import load_rules, notify
from pipelines.alert.rules import Schedule
from pipelines.config.config import Config
from pipelines.errors import ConfigError
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import rules_file, store_articles
from tests.support.articles import corpus
from tests.support.smtpserver import SmtpServer

DAILY = """\
timezone: Europe/Kyiv
rules:
  - name: morning
    query: 'relevant:true'
    to: [desk@example.org]
    schedule: daily 08:00
"""


def _backdate(db: Path, column: str, days: int) -> None:
    when = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    with sqlite3.connect(db) as conn:
        conn.execute(f"UPDATE deliveries SET {column} = ? WHERE {column} IS NOT NULL", (when,))


def _subjects(smtp: SmtpServer) -> list[str]:
    return [str(m["Subject"]) for m in smtp.messages()]


def test_daily_digest_holds_stories_until_its_due_time(
        tmp_path: Path, store: SQLiteStore, smtp: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in smtp.env().items():
        monkeypatch.setenv(key, value)
    docs = corpus()
    rules = rules_file(tmp_path, DAILY)
    first = store_articles(store, [docs["ru_wire"], docs["uk"]])
    # queued just now: no 08:00 in Kyiv has passed since, so the stories wait
    report = notify(store, rules, first, Config.from_env())
    assert smtp.messages() == [] and report.held == {"morning": 2}
    assert any("held for the rule's next scheduled digest" in line for line in report.lines())
    # queued two days ago: an 08:00 has passed, the digest goes
    _backdate(tmp_path / "dozor.db", "created_at", 2)
    report = notify(store, rules, [], Config.from_env())
    assert report.held == {} and len(report.sent) == 1 and len(smtp.messages()) == 1
    assert "2 new stories" in _subjects(smtp)[0]
    # new stories after that digest: the last one was sent today, so they wait...
    second = store_articles(store, [docs["en_other"]])
    report = notify(store, rules, second, Config.from_env())
    assert len(smtp.messages()) == 1 and report.held == {"morning": 1}
    # ...until an 08:00 has passed since the last digest
    _backdate(tmp_path / "dozor.db", "sent_at", 2)
    report = notify(store, rules, [], Config.from_env())
    assert len(smtp.messages()) == 2 and "1 new story" in _subjects(smtp)[1]
    assert store.pending_deliveries("morning") == []


def test_immediate_is_the_default_and_sends_each_run(
        tmp_path: Path, store: SQLiteStore, smtp: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in smtp.env().items():
        monkeypatch.setenv(key, value)
    ids = store_articles(store, [corpus()["uk"]])
    rules = rules_file(tmp_path, "rules:\n  - {name: now, query: 'relevant:true', "
                                 "to: [desk@example.org]}\n")
    assert load_rules(rules)[0].spec.schedule == "immediate"
    report = notify(store, rules, ids, Config.from_env())
    assert len(smtp.messages()) == 1 and report.held == {}


KYIV = ZoneInfo("Europe/Kyiv")


@pytest.mark.parametrize("text, now, slot", [
    # 2026-12-02 is a Wednesday; Kyiv is UTC+2 in winter, UTC+3 in summer
    ("hourly", "2026-12-02T10:59:00+00:00", "2026-12-02T10:00:00+00:00"),
    ("daily 08:00", "2026-12-02T05:59:00+00:00", "2026-12-01T06:00:00+00:00"),
    ("daily 08:00", "2026-12-02T06:00:00+00:00", "2026-12-02T06:00:00+00:00"),
    ("daily 08:00", "2026-07-02T06:00:00+00:00", "2026-07-02T05:00:00+00:00"),
    ("weekly mon 08:00", "2026-12-02T12:00:00+00:00", "2026-11-30T06:00:00+00:00"),
    ("weekly wed 08:00", "2026-12-02T05:00:00+00:00", "2026-11-25T06:00:00+00:00"),
    ("Weekly  WED 08:00", "2026-12-02T07:00:00+00:00", "2026-12-02T06:00:00+00:00"),
])
def test_schedule_due_times_in_the_time_zone(text: str, now: str, slot: str) -> None:
    got = Schedule.parse(text).last_slot(datetime.fromisoformat(now), KYIV)
    assert got == datetime.fromisoformat(slot)


ADDRESS = "    to: [a@example.org]\n"


@pytest.mark.parametrize("extra, rule_field, message", [
    (ADDRESS + "    schedule: daily 25:00\n", "schedule", "no such time of day"),
    (ADDRESS + "    schedule: fortnightly\n", "schedule", "expected immediate, hourly"),
    (ADDRESS + "    schedule: weekly funday 08:00\n", "schedule", "expected immediate"),
    # an Apprise URL of a scheme Apprise does not know
    ("    to: [a@example.org, 'nosuchscheme://x/y']\n", "to", "not an Apprise URL"),
])
def test_bad_rule_fields_name_file_rule_and_field(tmp_path: Path, extra: str,
                                                  rule_field: str, message: str) -> None:
    path = rules_file(tmp_path, "rules:\n  - name: r\n    query: x\n" + extra)
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    text = str(info.value)
    assert str(path) in text and f"rules[0] (r) → {rule_field}" in text and message in text


def test_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    path = rules_file(tmp_path, "timezone: Europe/Atlantis\nrules:\n  - name: r\n"
                                "    query: x\n    to: [a@example.org]\n")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert str(path) in str(info.value) and "timezone" in str(info.value)
    assert "unknown time zone 'Europe/Atlantis'" in str(info.value)


def test_ui_url_links_each_story_and_the_rules_search(
        tmp_path: Path, store: SQLiteStore, smtp: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in smtp.env().items():
        monkeypatch.setenv(key, value)
    docs = corpus()
    ids = store_articles(store, [docs["uk"], docs["en_other"]])
    rules = rules_file(tmp_path, """\
ui_url: http://127.0.0.1:8765/dozor/
rules:
  - name: r
    query: 'relevant:true'
    languages: [uk, en]
    to: [desk@example.org]
""")
    notify(store, rules, ids, Config.from_env())
    [message] = smtp.messages()
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    search = ("http://127.0.0.1:8765/dozor/search?q=%28relevant%3Atrue%29%20AND%20"
              "lang%3A%28uk%20OR%20en%29&sort=newest")
    for article_id in ids:
        page = f"http://127.0.0.1:8765/dozor/article/{article_id}"
        assert f"In Dozor: {page}" in text and f'<a href="{page}"' in html
    assert f"All the rule's stories in Dozor: {search}" in text
    assert f'<a href="{search.replace("&", "&amp;")}"' in html


def test_without_ui_url_no_ui_links(tmp_path: Path, store: SQLiteStore, smtp: SmtpServer,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in smtp.env().items():
        monkeypatch.setenv(key, value)
    ids = store_articles(store, [corpus()["uk"]])
    notify(store, rules_file(tmp_path, "rules:\n  - {name: r, query: 'relevant:true', "
                                       "to: [desk@example.org]}\n"), ids, Config.from_env())
    [message] = smtp.messages()
    assert "In Dozor" not in message.as_string() and "/article/" not in message.as_string()

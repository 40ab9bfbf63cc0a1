"""Digests in flight: how far the SMTP conversation got decides what the next run does.

Faults made by the server (aiosmtpd on 127.0.0.1) and by SIGKILL of a real `dozor
alerts send`: a digest that certainly never reached the end of DATA goes again as any
other; one whose outcome is unknown (the connection dropped after the end of the
message, a 250 slower than the timeout, a sender killed while the server held the
message) goes again with the same Message-ID, marked as a possible repeat; a delivery
log that cannot be written (a full tmpfs) is reported as such and leaves the stories
pending.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipelines.alert import AlertReport, load_rules, notify, queue_matches, send_pending
from pipelines.alert.mailer import mailer_for
from pipelines.config.config import Config
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import LEADS, RECRUITMENT_RULES, rules_file, stored_corpus
from tests.support.cli import REPO
from tests.support.smtpserver import SmtpServer

RULE = "recruitment"
SUBJECT = "5 new stories — Prisoner recruitment: en 2, ru 2, uk 1"


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Config:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Config.from_env()


def _check_repeat(smtp: SmtpServer, first_id: str) -> None:
    """The last message is the repeat of `first_id`, and says so."""
    last = smtp.messages()[-1]
    assert last["Message-ID"] == first_id
    assert last["X-Dozor-Possible-Repeat"] == "yes"
    assert "may be a repeat" in last.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "may be a repeat" in last.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert last["Subject"] == SUBJECT


@pytest.mark.parametrize("mode", ["close", "slow"])
def test_a_lost_reply_sends_again_with_the_same_message_id_marked(
        mode: str, tmp_path: Path, store: SQLiteStore, smtp: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """close: the server drops the connection after the end of DATA without replying;
    slow: it keeps the message and answers 250 after the client's timeout."""
    rules = rules_file(tmp_path, RECRUITMENT_RULES)
    config = use(monkeypatch, smtp.env(DOZOR_SMTP_TIMEOUT="1"))
    docs, new_ids = stored_corpus(store)
    smtp.mode, smtp.delay = mode, 2.0

    first = notify(store, rules, new_ids, config)
    [outcome] = first.digests
    assert outcome.status == "unknown" and "may have been delivered" in outcome.detail
    lines = "\n".join(first.lines())
    assert "outcome unknown" in lines and "possible repeat" in lines
    assert first.failed == [outcome]  # `alerts send` exits 1
    pending = store.pending_deliveries(RULE)
    assert sorted(d.article_id for d in pending) == sorted(docs[n].id for n in LEADS)
    assert {(d.status, d.possible_repeat, d.message_id) for d in pending} == {
        ("pending", True, outcome.message_id)}
    wait_for(lambda: smtp.attempts == 1)
    if mode == "slow":
        wait_for(lambda: len(smtp.received) == 1)  # it did arrive
        assert smtp.messages()[0].get("X-Dozor-Possible-Repeat") is None

    smtp.mode = "accept"
    second = notify(store, rules, [], config)
    [again] = second.digests
    assert (again.status, again.possible_repeat, again.message_id) == (
        "sent", True, outcome.message_id)
    assert "marked as a possible repeat" in "\n".join(second.lines())
    assert len(smtp.received) == (2 if mode == "slow" else 1)
    _check_repeat(smtp, outcome.message_id)
    # the delivery record says so, and it is final
    with SQLiteStore(tmp_path / "dozor.db", read_only=True) as check:
        rows = check._query("SELECT status, stage, possible_repeat FROM deliveries "
                            "WHERE status != 'folded'")
    assert {tuple(r) for r in rows} == {("sent", "acknowledged", 1)}
    assert store.pending_deliveries() == []
    assert notify(store, rules, new_ids, config).digests == []


def _sender(tmp_path: Path, db: Path, rules: Path, smtp: SmtpServer) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOZOR_", "ELASTIC"))}
    env.update(smtp.env(DOZOR_SMTP_TIMEOUT="30"), DOZOR_DATA_DIR=str(tmp_path / "data"))
    return subprocess.Popen([sys.executable, "-m", "dozor", "alerts", "send", "--db", str(db),
                             "--alerts", str(rules)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("point", ["before DATA", "end of data sent, awaiting the reply"])
def test_a_sender_killed_mid_digest(point: str, tmp_path: Path, store: SQLiteStore,
                                    smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "dozor.db"
    stored_corpus(store)
    rules = rules_file(tmp_path, RECRUITMENT_RULES)
    early = point == "before DATA"
    # held at RCPT, or holding the whole message before its 250
    smtp.mode, smtp.delay = ("stall", 5.0) if early else ("slow", 2.0)
    run = _sender(tmp_path, db, rules, smtp)
    try:
        wait_for(lambda: (smtp.rcpts if early else smtp.attempts) >= 1, 60)
        run.send_signal(signal.SIGKILL)
    finally:
        out, _ = run.communicate(timeout=30)
    assert run.returncode == -signal.SIGKILL, out
    stages = {d.stage for d in store.pending_deliveries(RULE)}
    assert stages == ({"connecting"} if early else {"end-of-data"})
    [first_id] = {d.message_id for d in store.pending_deliveries(RULE)}
    if not early:
        wait_for(lambda: len(smtp.received) == 1)  # the server delivered it all the same

    smtp.mode = "accept"
    after = _sender(tmp_path, db, rules, smtp)
    out, _ = after.communicate(timeout=60)
    assert after.returncode == 0, out
    assert "crash" not in out
    if early:
        assert "not delivered" in out and "possible repeat" not in out
        [message] = smtp.messages()
        assert message.get("X-Dozor-Possible-Repeat") is None
        assert message["Subject"] == SUBJECT
    else:
        assert "outcome unknown" in out and "marked as a possible repeat" in out
        assert len(smtp.received) == 2
        _check_repeat(smtp, first_id)
    assert store.pending_deliveries() == []
    # and never again
    again = _sender(tmp_path, db, rules, smtp)
    out, _ = again.communicate(timeout=60)
    assert again.returncode == 0 and "0 digest(s) sent" in out, out
    assert len(smtp.received) == (1 if early else 2)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs (root only), unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs to fill needs root and mount(8)")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write until the file system is full; the filler's path."""
    filler = directory / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


@pytest.mark.parametrize("when", ["before the digest", "while the server takes RCPT"])
def test_a_full_disk_is_reported_as_such_and_the_stories_stay_pending(
        when: str, tmp_path: Path, small_disk: Path, smtp: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rules = rules_file(tmp_path, RECRUITMENT_RULES)
    config = use(monkeypatch, smtp.env(DOZOR_SMTP_TIMEOUT="5"))
    with SQLiteStore(small_disk / "dozor.db") as store:
        _, new_ids = stored_corpus(store)
        report = AlertReport()
        queue_matches(store, load_rules(rules), new_ids, report)  # queued while there is room
        filler: list[Path] = []
        if when == "before the digest":
            filler.append(fill(small_disk))
        else:
            smtp.on_rcpt = lambda: filler.append(fill(small_disk)) if not filler else None
        send_pending(store, load_rules(rules), mailer_for(config), report, config)
        [outcome] = report.digests
        lines = "\n".join(report.lines())
        assert outcome.status == "unrecorded", lines
        assert "the delivery log could not be written" in lines and "full" in lines
        assert "nothing was sent" in lines and "crash" not in lines
        assert smtp.attempts == 0 and smtp.received == []
        assert report.failed == [outcome]

        filler[0].unlink()  # space again
        smtp.on_rcpt = None
        later = notify(store, rules, [], config)
        assert [d.status for d in later.digests] == ["sent"], later.lines()
        [message] = smtp.messages()
        assert message["Subject"] == SUBJECT
        assert message.get("X-Dozor-Possible-Repeat") is None  # it never left
        assert store.pending_deliveries() == []
        assert notify(store, rules, [], config).digests == []
        ok = store._query("PRAGMA integrity_check")
        assert [tuple(r) for r in ok] == [("ok",)]

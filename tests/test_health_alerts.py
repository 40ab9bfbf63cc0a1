"""Health notices through the delivery log, on a real SQLite file and the loopback
Elasticsearch, mailed to aiosmtpd on 127.0.0.1: one e-mail per transition, none on a
repeated run, and a hand-over cut off mid-send (a process SIGKILLed while the server
holds the message, or a log left "sending" at a stage) neither lost nor doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.alert.health import HEALTH_LOG, notify_health
from pipelines.alert.mailer import SmtpMailer, SmtpSettings
from pipelines.alert.rules import HealthAlerts
from pipelines.health import HealthRecord
from pipelines.store import Store
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import backend_store
from tests.support.cli import REPO
from tests.support.smtpserver import SmtpServer

SETTINGS = HealthAlerts(to=["desk@example.org"], subject_prefix="[Dozor]")
SENDER = "dozor@example.org"
FEED = "http://127.0.0.1:1/rss.xml"


@pytest.fixture(params=["sqlite", "elasticsearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with backend_store(request.param, tmp_path) as s:
        yield s


def mailer(smtp: SmtpServer, timeout: float = 30.0) -> SmtpMailer:
    return SmtpMailer(SmtpSettings("127.0.0.1", smtp.port, timeout=timeout))


def run(store: Store, smtp: SmtpServer, state: str | None = None,
        timeout: float = 30.0) -> list[str]:
    """One run's health step: the feed's record stored in `state` (None: as it is)."""
    [record] = store.health_records() or [HealthRecord("wire", FEED, "feed")]
    if state is not None:
        record.state = state
        store.put_health([record])
    return notify_health(store, store.health_records(), SETTINGS, mailer(smtp, timeout), SENDER)


def subjects(smtp: SmtpServer) -> list[str]:
    return [str(m["Subject"]) for m in smtp.messages()]


def test_one_mail_per_transition_and_none_on_a_repeated_run(store: Store,
                                                            smtp: SmtpServer) -> None:
    assert run(store, smtp, "ok") == [] and smtp.messages() == []
    [line] = run(store, smtp, "blocked")
    assert line.startswith(f"health alert: wire {FEED} blocked -> 127.0.0.1:")
    assert run(store, smtp) == [] and run(store, smtp, "blocked") == []
    run(store, smtp, "moved")
    run(store, smtp, "ok")
    assert run(store, smtp, "ok") == []
    assert subjects(smtp) == ["[Dozor] Dozor source wire: blocked",
                              "[Dozor] Dozor source wire: moved",
                              "[Dozor] Dozor source wire: recovered"]
    assert not any("X-Dozor-Possible-Repeat" in m for m in smtp.messages())
    [record] = store.health_records()
    assert (record.notified, record.transition) == ("ok", 3)
    assert store.pending_deliveries(HEALTH_LOG) == []
    assert len({m["Message-ID"] for m in smtp.messages()}) == 3


def test_a_refused_notice_goes_at_the_next_run_once(store: Store, smtp: SmtpServer) -> None:
    smtp.mode = "451 4.3.0 Try again later"
    [line] = run(store, smtp, "failing")
    assert "NOT sent, pending" in line and smtp.messages() == []
    smtp.mode = "accept"
    run(store, smtp)
    assert run(store, smtp) == []
    assert subjects(smtp) == ["[Dozor] Dozor source wire: failing"]


@pytest.mark.parametrize("stage", ["connecting", "data", "end-of-data"])
def test_a_notice_cut_off_goes_again_as_far_as_it_got(stage: str, store: Store,
                                                      smtp: SmtpServer) -> None:
    """A sender died handing the notice over, leaving it "sending" at `stage`: before the
    end of the message it goes once as any other; after it, again with the same
    Message-ID, marked as a possible repeat."""
    smtp.mode = "554 5.7.1 Rejected"  # the notice queued, its first hand-over refused
    run(store, smtp, "silent")
    [pending] = store.pending_deliveries(HEALTH_LOG)
    store.mark_sending(HEALTH_LOG, [pending.article_id], "<cut-off@dozor>")
    for step in ("data", "end-of-data")[:("connecting", "data", "end-of-data").index(stage)]:
        store.mark_stage(HEALTH_LOG, [pending.article_id], step)
    smtp.mode = "accept"
    lines = run(store, smtp)
    unknown = stage == "end-of-data"
    [message] = smtp.messages()
    assert (message["Message-ID"] == "<cut-off@dozor>") is unknown
    assert message.get("X-Dozor-Possible-Repeat") == ("yes" if unknown else None)
    assert ("may be a repeat" in message.get_content()) is unknown
    assert ("outcome unknown" if unknown else "not delivered") in lines[0]
    assert run(store, smtp) == [] and len(smtp.messages()) == 1


SENDER_SCRIPT = """
import sys
from pipelines.alert.health import notify_health
from pipelines.alert.mailer import SmtpMailer, SmtpSettings
from pipelines.alert.rules import HealthAlerts
from pipelines.store.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
notify_health(store, store.health_records(), HealthAlerts(to=["desk@example.org"]),
              SmtpMailer(SmtpSettings("127.0.0.1", int(sys.argv[2]), timeout=30)), "d@x.org")
"""


def test_a_sender_killed_after_the_end_of_the_message_repeats_it_marked(
        tmp_path: Path, smtp: SmtpServer) -> None:
    """SIGKILL while the server holds the whole notice before its reply: the next run
    sends it again with the same Message-ID, marked; the one after sends nothing."""
    db = tmp_path / "dozor.db"
    with SQLiteStore(db) as store:
        store.put_health([HealthRecord("wire", FEED, "feed", state="blocked")])
    smtp.mode, smtp.delay = "slow", 5.0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOZOR_", "ELASTIC"))}
    sender = subprocess.Popen([sys.executable, "-c", SENDER_SCRIPT, str(db), str(smtp.port)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not smtp.received and sender.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        sender.send_signal(signal.SIGKILL)
    finally:
        out, _ = sender.communicate(timeout=30)
    assert sender.returncode == -signal.SIGKILL, out
    with SQLiteStore(db) as store:
        [cut] = store.pending_deliveries(HEALTH_LOG)
        assert (cut.status, cut.stage) == ("sending", "end-of-data")
        smtp.mode = "accept"
        lines = run(store, smtp)
        assert "outcome unknown" in lines[0] and "possible repeat" in lines[1]
        first, again = smtp.messages()
        assert first["Message-ID"] == again["Message-ID"] == cut.message_id
        assert "X-Dozor-Possible-Repeat" not in first
        assert again["X-Dozor-Possible-Repeat"] == "yes"
        assert run(store, smtp) == [] and len(smtp.messages()) == 2
        [done] = store.sent_deliveries(HEALTH_LOG, [cut.article_id])
        assert done.possible_repeat and done.stage == "acknowledged"

"""The run lock covers the database, not only the data directory: two `dozor alerts
send` on one `--db` with different data directories cannot both mail its stories."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from dozor.lock import LOCK_BUSY_EXIT
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import RECRUITMENT_RULES, rules_file, stored_corpus
from tests.support.cli import REPO
from tests.support.smtpserver import SmtpServer


def test_two_senders_on_one_database_mail_each_story_once(tmp_path: Path,
                                                          smtp: SmtpServer) -> None:
    db = tmp_path / "shared.db"
    with SQLiteStore(db) as store:
        stored_corpus(store)
    rules = rules_file(tmp_path, RECRUITMENT_RULES)
    smtp.mode, smtp.delay = "slow", 3.0  # the first sender holds its digest 3 s
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DOZOR_", "ELASTIC"))}

    def sender(name: str) -> subprocess.Popen[str]:
        env = {**base, **smtp.env(DOZOR_SMTP_TIMEOUT="30"),
               "DOZOR_DATA_DIR": str(tmp_path / f"data-{name}")}
        return subprocess.Popen([sys.executable, "-m", "dozor", "alerts", "send", "--db",
                                 str(db), "--alerts", str(rules)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = sender("a")
    deadline = time.monotonic() + 60
    while smtp.attempts < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    second = sender("b")  # its own data directory, the same database
    _, second_err = second.communicate(timeout=60)
    first.communicate(timeout=60)
    assert first.returncode == 0
    assert second.returncode == LOCK_BUSY_EXIT, second_err
    assert "another Dozor cycle is running" in second_err
    assert f"{db}.lock" in " ".join(second_err.split())
    assert len(smtp.received) == 1

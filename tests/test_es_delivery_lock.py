"""The Elasticsearch delivery log is locked itself: two `dozor alerts send` against one
cluster (different data directories, so no file lock is shared) never both send, and a
lock whose holder died is taken over once it expires. On the loopback Elasticsearch."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dozor.lock import LOCK_BUSY_EXIT
from pipelines.store.base import DeliveryLogBusy
from pipelines.store.elastic.deliveries import LOCK_ID
from tests.fakes.elasticsearch import FakeElasticsearch, fast_store
from tests.support.alerts import RECRUITMENT_RULES, rules_file, stored_corpus
from tests.support.cli import REPO
from tests.support.smtpserver import SmtpServer


def test_two_senders_on_one_cluster_mail_each_story_once(tmp_path: Path, smtp: SmtpServer,
                                                         fake: FakeElasticsearch) -> None:
    with fast_store(fake.url, tmp_path / "spool") as store:
        stored_corpus(store)  # type: ignore[arg-type]
    rules = rules_file(tmp_path, RECRUITMENT_RULES)
    smtp.mode, smtp.delay = "slow", 10.0  # the first sender holds its digest 10 s
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DOZOR_", "ELASTIC"))}

    def sender(name: str) -> subprocess.Popen[str]:
        env = {**base, **smtp.env(DOZOR_SMTP_TIMEOUT="30"),
               "DOZOR_DATA_DIR": str(tmp_path / f"data-{name}")}
        return subprocess.Popen([sys.executable, "-m", "dozor", "alerts", "send", "--es",
                                 fake.url, "--alerts", str(rules)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = sender("a")
    deadline = time.monotonic() + 60
    while smtp.attempts < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert LOCK_ID in fake.docs("dozor-deliveries")  # held while it sends
    second = sender("b")
    second_out, second_err = second.communicate(timeout=60)
    assert first.poll() is None  # the second one ended while the first was sending
    _, first_err = first.communicate(timeout=60)
    assert first.returncode == 0, first_err
    assert second.returncode == LOCK_BUSY_EXIT, second_out + second_err
    said = " ".join(second_out.split())
    assert "another Dozor process is sending the digests" in said
    assert "the stories stay pending" in said
    assert len(smtp.received) == 1
    assert LOCK_ID not in fake.docs("dozor-deliveries")  # released at the end
    # and the lock document is no delivery
    with fast_store(fake.url, tmp_path / "spool") as store:
        assert store.pending_deliveries() == []


def test_an_expired_lock_is_taken_over_and_its_old_holder_stops(
        tmp_path: Path, fake: FakeElasticsearch) -> None:
    with fast_store(fake.url, tmp_path / "a") as one, fast_store(fake.url, tmp_path / "b") as two:
        with one.delivery_lock("killed sender", ttl=0.5) as old:
            with pytest.raises(DeliveryLogBusy, match="killed sender"), \
                    two.delivery_lock("next sender", ttl=60):
                pass
            time.sleep(0.7)  # its holder went quiet past the expiry
            with two.delivery_lock("next sender", ttl=60) as new:
                new.renew()
                with pytest.raises(DeliveryLogBusy, match="taken over"):
                    old.renew()
                old.release()  # the old holder ending leaves the new one's lock alone
                assert fake.docs("dozor-deliveries")[LOCK_ID]["owner"] == "next sender"
            assert LOCK_ID not in fake.docs("dozor-deliveries")
        assert LOCK_ID not in fake.docs("dozor-deliveries")
        with one.delivery_lock("again", ttl=60):
            assert fake.docs("dozor-deliveries")[LOCK_ID]["owner"] == "again"

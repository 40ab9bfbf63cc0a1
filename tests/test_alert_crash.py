"""A `dozor run` killed mid-crawl (SIGKILL, in a subprocess) after some batches were
stored: the next run mails those stories, once, to a real SMTP server (aiosmtpd).

The never-seen news site (tests/site_unseen) is served on 127.0.0.1 with one page, the
wire copy, answering only after a minute: batches of one page (settings file via
DOZOR_CONFIG) store everything else while that request holds the crawl open, and the run
is killed then. On SQLite (a real file) and on the loopback Elasticsearch.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dozor.cli import app
from pipelines.config.backend import store_options
from pipelines.config.config import Config
from pipelines.store import Store, open_store
from tests.conftest import REPO
from tests.fakes.elasticsearch import ApiFailure, FakeElasticsearch
from tests.support.httpserver import NewsServer
from tests.support.smtpserver import SmtpServer
from tests.test_end_to_end import GOLD, _check_digest, _dozor, _setup

SLOW = next(g["path"] for g in GOLD["articles"] if "syndicated_of" in g)
STORED_BEFORE_KILL = len(GOLD["articles"]) - 1  # everything but the slow page
WAIT = 90.0


@dataclass
class Backend:
    options: list[str]  # of `dozor run`
    stored: Callable[[], int]  # articles committed so far, read beside the running process

    def open(self) -> Store:
        db, es = (self.options[1], None) if self.options[0] == "--db" else (None,
                                                                            self.options[1])
        return open_store(**store_options(Config.from_env(), db, es))


@pytest.fixture(params=["sqlite", "elasticsearch"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        db = tmp_path / "dozor.db"

        def count() -> int:
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as raw:
                    return raw.execute("SELECT count(*) FROM articles").fetchone()[0]
            except sqlite3.Error:  # not created (or migrated) yet
                return 0

        yield Backend(["--db", str(db)], count)
        return
    with FakeElasticsearch() as fake:

        def count_docs() -> int:
            try:
                return len(fake.docs("dozor-articles"))
            except ApiFailure:  # not set up yet
                return 0

        yield Backend(["--es", fake.url], count_docs)
        assert fake.problems == []


def test_a_run_killed_mid_crawl_leaves_its_stories_to_the_next_run(
        tmp_path: Path, news_server: NewsServer, smtp: SmtpServer, backend: Backend,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, args, env = _setup(tmp_path, news_server, smtp.port)
    at = args.index("--db")
    args[at:at + 2] = backend.options
    rules = args[args.index("--alerts") + 1]
    settings = tmp_path / "dozor.yaml"
    settings.write_text("crawl:\n  batch_size: 1\n  autothrottle: false\n"
                        "  download_timeout: 300\n", encoding="utf-8")
    env["DOZOR_CONFIG"] = str(settings)
    news_server.routes[SLOW].delay = 60.0

    log = tmp_path / "killed-run.log"
    with log.open("w") as out:
        run = subprocess.Popen([sys.executable, "-m", "dozor", "run", *args], cwd=REPO,
                               env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + WAIT
    try:
        while backend.stored() < STORED_BEFORE_KILL:
            assert run.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"stored {backend.stored()}:\n{log.read_text()}"
            time.sleep(0.1)
        assert news_server.fetched(SLOW) == 1  # the crawl is still waiting for it
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert run.returncode == -signal.SIGKILL
    assert smtp.received == []

    with backend.open() as store:
        killed = [a.id for a in store.iter_articles()]
        assert len(killed) == STORED_BEFORE_KILL
        # every one of them still awaits the alert rules, and none was queued
        assert sorted(store.unmatched_ids()) == sorted(killed)
        assert store.pending_deliveries() == []

    news_server.routes[SLOW].delay = 0.0
    second = _dozor(["run", *args], env)
    (message,) = smtp.messages()
    # exactly the relevant stories of both runs, the wire copy (this run's) under its
    # original (the killed run's)
    _check_digest(message)
    assert f"{len(GOLD['articles']) - STORED_BEFORE_KILL} new" in second.stdout

    with backend.open() as store:
        assert store.count() == len(GOLD["articles"])
        assert store.unmatched_ids() == [] and store.pending_deliveries() == []
    # and nothing is left to send
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["alerts", "send", "--alerts", rules, *backend.options])
    assert result.exit_code == 0, result.output
    assert "0 digest(s) sent" in result.output
    assert len(smtp.messages()) == 1

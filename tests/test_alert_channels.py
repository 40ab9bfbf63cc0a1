"""Apprise channels beside e-mail: a rule's `to:` takes Apprise URLs, each with a
delivery log of its own (each story once per channel), a short text with titles and
links for chat channels and the full digest by mail; a channel that fails is retried
by the next run without sending again to the channels that took it. A JSON webhook and
an ntfy endpoint on 127.0.0.1 (a small recording HTTP server) and aiosmtpd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipelines.alert import load_rules, notify
from pipelines.alert.digest import REPEAT_NOTE
from pipelines.config.config import Config
from pipelines.store import Store
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import backend_store, rules_file, store_articles
from tests.support.articles import corpus
from tests.support.cli import REPO, run_dozor
from tests.support.smtpserver import SmtpServer


class Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.failing: set[str] = set()  # paths answered 500
        self.stalling: set[str] = set()  # paths recorded, then answered only after 30 s

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.received if p == path]


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"raw": raw.decode("utf-8", "replace"),
                    "title": self.headers.get("X-Title", "")}
        code = 500 if self.path in self.server.failing else 200
        if code == 200:
            self.server.received.append((self.path, body))
        if self.path in self.server.stalling:
            time.sleep(30)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=["sqlite", "elasticsearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with backend_store(request.param, tmp_path) as s:
        yield s


@pytest.fixture
def hooks() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(5)


def _rules(tmp_path: Path, port: int) -> Path:
    return rules_file(tmp_path, f"""\
ui_url: http://127.0.0.1:8080
rules:
  - name: desk
    query: 'relevant:true'
    to:
      - desk@example.org
      - json://127.0.0.1:{port}/hook
      - ntfy://127.0.0.1:{port}/recruitment
""")


def _text(body: dict[str, Any]) -> str:
    return " ".join(str(body.get(k, "")) for k in ("title", "message", "raw"))


def test_each_story_goes_once_to_each_channel_and_a_failed_one_is_retried(
        tmp_path: Path, store: Store, smtp: SmtpServer, hooks: Recorder,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in smtp.env().items():
        monkeypatch.setenv(key, value)
    docs = corpus()
    rules = _rules(tmp_path, hooks.server_address[1])
    hooks.failing.add("/hook")
    ids = store_articles(store, [docs["uk"], docs["en_other"]])
    report = notify(store, rules, ids, Config.from_env())
    # mail and ntfy took it; the webhook answered 500
    assert len(smtp.messages()) == 1 and hooks.bodies("/hook") == []
    [ntfy] = [body for path, body in hooks.received if path != "/hook"]
    titles = [docs["uk"].title, docs["en_other"].title]
    assert all(t in _text(ntfy) for t in titles)
    assert f"http://127.0.0.1:8080/article/{ids[0]}" in _text(ntfy)
    assert "<html" not in _text(ntfy).lower()  # the short text, not the digest
    failed = [d for d in report.digests if d.status == "failed"]
    assert len(failed) == 1 and "json://" in failed[0].rule
    # next run: only the webhook is sent to, with both stories
    hooks.failing.clear()
    report = notify(store, rules, [], Config.from_env())
    assert len(smtp.messages()) == 1 and len(hooks.received) == 2
    [hook] = hooks.bodies("/hook")
    assert all(t in _text(hook) for t in titles)
    assert [d.status for d in report.digests] == ["sent"]
    # and a third run sends nothing anywhere
    report = notify(store, rules, [], Config.from_env())
    assert report.digests == [] and len(hooks.received) == 2 and len(smtp.messages()) == 1
    assert store.pending_deliveries() == []


def test_a_rule_with_only_channels_sends_no_mail(
        tmp_path: Path, store: Store, smtp: SmtpServer, hooks: Recorder,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in smtp.env().items():
        monkeypatch.setenv(key, value)
    port = hooks.server_address[1]
    rules = rules_file(tmp_path, f"rules:\n  - name: hook\n    query: 'relevant:true'\n"
                                 f"    to: ['json://127.0.0.1:{port}/only']\n")
    ids = store_articles(store, [corpus()["uk"]])
    report = notify(store, rules, ids, Config.from_env())
    assert smtp.messages() == [] and len(hooks.bodies("/only")) == 1
    assert report.queued == {"hook": 1}



def test_a_sender_killed_during_the_request_repeats_rather_than_loses(
        tmp_path: Path, hooks: Recorder) -> None:
    db, port = tmp_path / "dozor.db", hooks.server_address[1]
    rules = rules_file(tmp_path, f"rules:\n  - name: hook\n    query: 'relevant:true'\n"
                                 f"    to: ['json://127.0.0.1:{port}/slow']\n")
    [channel] = load_rules(rules)[0].channels()
    with SQLiteStore(db) as store:
        store_articles(store, [corpus()["uk"]])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOZOR_", "ELASTIC"))}
    env["DOZOR_DATA_DIR"] = str(tmp_path / "data")
    args = ["alerts", "send", "--db", str(db), "--alerts", str(rules)]
    hooks.stalling.add("/slow")
    run = subprocess.Popen([sys.executable, "-m", "dozor", *args], cwd=REPO, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not hooks.received:  # the channel has the message, no reply yet
            assert time.monotonic() < deadline and run.poll() is None
            time.sleep(0.05)
        run.send_signal(signal.SIGKILL)
    finally:
        run.communicate(timeout=30)
    with SQLiteStore(db, read_only=True) as store:
        assert {d.stage for d in store.pending_deliveries(channel.log_key)} == {"end-of-data"}
    hooks.stalling.clear()
    out = run_dozor(args, env, timeout=60).stdout
    assert "possible repeat" in out
    first, again = hooks.bodies("/slow")
    assert REPEAT_NOTE in _text(again) and REPEAT_NOTE not in _text(first)
    assert "0 digest(s) sent" in run_dozor(args, env, timeout=60).stdout
    assert len(hooks.received) == 2

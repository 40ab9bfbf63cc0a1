"""Digests over real SMTP (aiosmtpd on 127.0.0.1): delivery, TLS and AUTH, and every
failure the server can produce leaving the stories pending for exactly one later email."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipelines.alert import AlertReport, load_rules, notify, send_pending
from pipelines.alert.mailer import SmtpSettings, mailer_for
from pipelines.config.config import Config
from pipelines.errors import ConfigError
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import LEADS, RECRUITMENT_RULES, RELEVANT, rules_file, stored_corpus
from tests.support.smtpserver import SmtpServer, closed_port, self_signed_tls


def use_smtp(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def wait_for(condition: object, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_digest_goes_to_the_smtp_server(tmp_path: Path, store: SQLiteStore, smtp: SmtpServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    use_smtp(monkeypatch, smtp.env(DOZOR_MAIL_FROM="Dozor <alerts@dozor.example>"))
    docs, new_ids = stored_corpus(store)
    report = notify(store, rules_file(tmp_path, RECRUITMENT_RULES), new_ids, Config.from_env())

    assert [d.status for d in report.digests] == ["sent"]
    assert report.queued == {"recruitment": len(RELEVANT)}
    [envelope] = smtp.received
    assert envelope.mail_from == "alerts@dozor.example"
    assert envelope.rcpt_tos == ["desk@example.org", "night@example.org"]
    [message] = smtp.messages()
    assert message["Subject"] == "5 new stories — Prisoner recruitment: en 2, ru 2, uk 1"
    assert message["Message-ID"] == report.digests[0].message_id
    assert message["Date"]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert docs["ru_wire"].title in html and docs["uk"].title.replace("'", "&#39;") in html
    assert f"127.0.0.1:{smtp.port}" in "\n".join(report.lines())
    assert store.pending_deliveries() == []
    # a second run over the same new ids (a restart) sends nothing
    again = notify(store, rules_file(tmp_path, RECRUITMENT_RULES), new_ids, Config.from_env())
    assert again.digests == [] and len(smtp.received) == 1


FAILURES = {
    "connection refused": ("refused", "cannot reach"),
    "4xx reply": ("451 4.3.0 Mail server temporarily busy", "answered 451"),
    "5xx reply": ("554 5.7.1 Message rejected by policy", "answered 554"),
    "connection dropped before DATA": ("drop-early", "closed the connection"),
    "timeout": ("stall", "did not answer within 1s"),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_failure_leaves_deliveries_pending_then_next_run_sends_once(
        failure: str, tmp_path: Path, store: SQLiteStore, smtp: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    mode, error = FAILURES[failure]
    rules = rules_file(tmp_path, RECRUITMENT_RULES)
    use_smtp(monkeypatch, smtp.env(DOZOR_SMTP_TIMEOUT="1"))
    if mode == "refused":
        monkeypatch.setenv("DOZOR_SMTP_PORT", str(closed_port()))
    else:
        smtp.mode, smtp.delay = mode, 3.0
    docs, new_ids = stored_corpus(store)

    down = notify(store, rules, new_ids, Config.from_env())
    [outcome] = down.digests
    assert outcome.status == "failed" and error in outcome.detail
    assert "NOT sent" in "\n".join(down.lines())
    assert smtp.received == []
    pending = store.pending_deliveries("recruitment")
    # one delivery per story: the syndicated copies are folded into theirs
    assert sorted(d.article_id for d in pending) == sorted(docs[n].id for n in LEADS)
    assert all(d.status == "pending" and d.attempts == 1 and error in (d.last_error or "")
               and not d.possible_repeat for d in pending)

    # the server is back; the next run stores nothing new and still sends the digest
    smtp.mode = "accept"
    monkeypatch.setenv("DOZOR_SMTP_PORT", str(smtp.port))
    up = notify(store, rules, [], Config.from_env())
    assert [d.status for d in up.digests] == ["sent"]
    wait_for(lambda: len(smtp.received) >= 1)
    [message] = [m for m in smtp.messages() if m["Message-ID"] == up.digests[0].message_id]
    assert message["Subject"] == "5 new stories — Prisoner recruitment: en 2, ru 2, uk 1"
    assert message.get("X-Dozor-Possible-Repeat") is None  # it certainly never arrived
    assert store.pending_deliveries() == []

    # and never again
    assert notify(store, rules, new_ids, Config.from_env()).digests == []
    assert notify(store, rules, [], Config.from_env()).digests == []
    time.sleep(0.2 if mode != "stall" else 3.2)  # a stalled session has ended by now
    delivered = [m["Subject"] for m in smtp.messages()]
    assert delivered == ["5 new stories — Prisoner recruitment: en 2, ru 2, uk 1"]


def test_recipient_refused_by_the_server_does_not_resend_to_the_others(
        tmp_path: Path, store: SQLiteStore, smtp: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    use_smtp(monkeypatch, smtp.env())
    smtp.refuse_rcpt = {"night@example.org"}
    _, new_ids = stored_corpus(store)
    report = notify(store, rules_file(tmp_path, RECRUITMENT_RULES), new_ids, Config.from_env())
    [outcome] = report.digests
    assert outcome.status == "sent" and "refused: night@example.org" in outcome.detail
    assert [e.rcpt_tos for e in smtp.received] == [["desk@example.org"]]
    assert store.pending_deliveries() == []


def test_every_recipient_refused_keeps_the_digest_pending(
        tmp_path: Path, store: SQLiteStore, smtp: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    use_smtp(monkeypatch, smtp.env())
    smtp.refuse_rcpt = {"desk@example.org", "night@example.org"}
    _, new_ids = stored_corpus(store)
    report = notify(store, rules_file(tmp_path, RECRUITMENT_RULES), new_ids, Config.from_env())
    assert "refused every recipient" in report.failed[0].detail
    assert "550 5.1.1 No such user here" in report.failed[0].detail
    assert len(store.pending_deliveries()) == len(LEADS)


# aiosmtpd warns about AUTH "without TLS" on the implicit-TLS server, which is TLS
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "ssl"])
def test_tls_and_login(implicit: bool, tmp_path: Path, store: SQLiteStore,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    context, ca_file = self_signed_tls(tmp_path)
    server = SmtpServer(tls_context=context, implicit_tls=implicit,
                        credentials=("dozor", "s3cret")).start()
    try:
        use_smtp(monkeypatch, server.env(
            DOZOR_SMTP_TLS="ssl" if implicit else "starttls", DOZOR_SMTP_CAFILE=str(ca_file),
            DOZOR_SMTP_USER="dozor", DOZOR_SMTP_PASSWORD="wrong", DOZOR_SMTP_TIMEOUT="5"))
        rules = load_rules(rules_file(tmp_path, RECRUITMENT_RULES))
        _, new_ids = stored_corpus(store)
        report = notify(store, tmp_path / "alerts.yaml", new_ids, Config.from_env())
        assert "answered 535" in report.failed[0].detail  # bad password: kept pending
        monkeypatch.setenv("DOZOR_SMTP_PASSWORD", "s3cret")
        retry = AlertReport()
        send_pending(store, rules, mailer_for(Config.from_env()), retry, Config.from_env())
        assert [d.status for d in retry.digests] == ["sent"]
        assert len(server.received) == 1
    finally:
        server.stop()


def test_untrusted_certificate_is_a_delivery_failure(tmp_path: Path, store: SQLiteStore,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    context, _ = self_signed_tls(tmp_path)
    server = SmtpServer(tls_context=context).start()
    try:
        use_smtp(monkeypatch, server.env(DOZOR_SMTP_TLS="starttls", DOZOR_SMTP_TIMEOUT="5"))
        _, new_ids = stored_corpus(store)
        report = notify(store, rules_file(tmp_path, RECRUITMENT_RULES), new_ids, Config.from_env())
        assert "CERTIFICATE_VERIFY_FAILED" in report.failed[0].detail
        assert server.received == []
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DOZOR_SMTP_TLS": "tls1.3"}, "DOZOR_SMTP_TLS must be one of none, starttls, ssl"),
        ({"DOZOR_SMTP_PORT": "smtp"}, "DOZOR_SMTP_PORT"),
        ({"DOZOR_SMTP_USER": "dozor"}, "DOZOR_SMTP_PASSWORD is not"),
    ],
)
def test_bad_smtp_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SmtpSettings.from_env({"DOZOR_SMTP_HOST": "mail.example.org", **env})


def test_smtp_settings_defaults() -> None:
    assert SmtpSettings.from_env({}) is None
    ssl_ = SmtpSettings.from_env({"DOZOR_SMTP_HOST": "mail.example.org", "DOZOR_SMTP_TLS": "ssl"})
    assert ssl_ is not None and ssl_.port == 465
    plain = SmtpSettings.from_env({"DOZOR_SMTP_HOST": "mail.example.org"})
    assert plain is not None and (plain.port, plain.tls) == (25, "none")


def test_cyrillic_recipient_goes_out_with_smtputf8(tmp_path: Path, store: SQLiteStore,
                                                   smtp: SmtpServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    use_smtp(monkeypatch, smtp.env(DOZOR_MAIL_FROM="Дозор <dozor@example.org>"))
    rules = rules_file(tmp_path, """\
        rules:
          - name: desk
            query: 'relevant:true AND lang:uk'
            to: [аналітик@приклад.укр]
    """)
    _, new_ids = stored_corpus(store)
    assert notify(store, rules, new_ids, Config.from_env()).sent
    [envelope] = smtp.received
    assert "SMTPUTF8" in envelope.mail_options
    assert envelope.rcpt_tos == ["аналітик@приклад.укр"]
    [message] = smtp.messages()
    assert message["To"] == "аналітик@приклад.укр"
    assert message["From"] == "Дозор <dozor@example.org>"

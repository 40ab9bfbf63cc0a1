"""Handing a digest over: to an SMTP server, or to `.eml` files in the outbox folder.

SMTP comes from the environment, as the Config read it (DOZOR_SMTP_HOST, _PORT, _TLS
none|starttls|ssl, _USER, _PASSWORD, _TIMEOUT, _CAFILE; DOZOR_MAIL_FROM). Without
DOZOR_SMTP_HOST each digest is written to the outbox (`Config.paths.outbox`) instead,
so a machine with no mail set up still keeps every alert.
"""

from __future__ import annotations

import hashlib
import os
import re
import smtplib
import ssl
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol

from pipelines.config.config import Config
from pipelines.errors import ConfigError, DozorError

TLS_MODES = ("none", "starttls", "ssl")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
DEFAULT_FROM = "Dozor <dozor@localhost>"


class DeliveryError(DozorError, RuntimeError):
    """The digest was not handed over; str() says to whom and why."""


class OutcomeUnknown(DeliveryError):
    """The whole message went to the server but no answer came back (the connection
    dropped, or the reply took longer than the timeout): it may be in the mailbox."""


# told each step of a hand-over before it is taken ("data", "end-of-data"): the
# delivery log records it, so a process that dies knows afterwards how far it got
Progress = Callable[[str], None]


def _no_progress(stage: str) -> None:
    """For a caller that keeps no record of the hand-over (health alerts)."""


def mail_from(env: Mapping[str, str]) -> str:
    return env.get("DOZOR_MAIL_FROM") or DEFAULT_FROM


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str = "none"  # one of TLS_MODES
    user: str | None = None
    password: str | None = None
    timeout: float = 60.0
    cafile: str | None = None  # a private CA for the relay's certificate

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings | None:
        host = env.get("DOZOR_SMTP_HOST", "").strip()
        if not host:
            return None
        tls = (env.get("DOZOR_SMTP_TLS") or "none").strip().lower()
        if tls not in TLS_MODES:
            raise ConfigError(f"DOZOR_SMTP_TLS must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        try:
            port = int(env.get("DOZOR_SMTP_PORT") or DEFAULT_PORTS[tls])
            timeout = float(env.get("DOZOR_SMTP_TIMEOUT") or 60)
        except ValueError as exc:
            raise ConfigError(f"DOZOR_SMTP_PORT/DOZOR_SMTP_TIMEOUT: {exc}") from None
        user = env.get("DOZOR_SMTP_USER") or None
        password = env.get("DOZOR_SMTP_PASSWORD") or None
        if user and password is None:
            raise ConfigError("DOZOR_SMTP_USER is set but DOZOR_SMTP_PASSWORD is not")
        return cls(host=host, port=port, tls=tls, user=user, password=password, timeout=timeout,
                   cafile=env.get("DOZOR_SMTP_CAFILE") or None)


class Mailer(Protocol):
    def describe(self) -> str:
        """Where digests go, for the run's summary."""
        ...

    def send(self, message: EmailMessage, progress: Progress = _no_progress) -> str:
        """Hand the message over or raise DeliveryError (OutcomeUnknown when it may have
        been delivered); returns where it went. `progress` is told each step before it
        is taken; whatever it raises aborts the hand-over before that step."""
        ...


class _StagedData(smtplib.SMTP):
    """smtplib's DATA command split where the outcome changes: before the final dot the
    server cannot have accepted the message, after it nobody here knows until its reply."""

    progress: Progress = _no_progress

    def data(self, msg: bytes | str) -> tuple[int, bytes]:
        self._step("data")
        code, reply = self.docmd("data")
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        raw = msg.encode("ascii") if isinstance(msg, str) else msg
        body = re.sub(rb"(?m)^\.", b"..", raw)  # dot-stuffing, RFC 5321 4.5.2
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.send(body)
        self._step("end-of-data")
        try:
            self.send(b".\r\n")
            return self.getreply()  # sendmail turns a refusal into SMTPDataError
        except smtplib.SMTPServerDisconnected as exc:
            # smtplib reports a read timeout as a disconnection, "timed out" in its text
            raise OutcomeUnknown(str(exc)) from None

    def _step(self, stage: str) -> None:
        try:
            self.progress(stage)
        except BaseException:
            # mid-DATA a QUIT would be read as message text: the server must see the
            # connection end without the final dot, and drop what it has
            self.close()
            raise


class _StagedSMTPSSL(_StagedData, smtplib.SMTP_SSL):
    pass


class SmtpMailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def describe(self) -> str:
        s = self.settings
        return f"SMTP {s.host}:{s.port} ({s.tls})"

    def _connect(self) -> _StagedData:
        s = self.settings
        context = ssl.create_default_context(cafile=s.cafile)
        if s.tls == "ssl":
            return _StagedSMTPSSL(s.host, s.port, timeout=s.timeout, context=context)
        smtp = _StagedData(s.host, s.port, timeout=s.timeout)
        if s.tls == "starttls":
            smtp.starttls(context=context)
        return smtp

    def send(self, message: EmailMessage, progress: Progress = _no_progress) -> str:
        s = self.settings
        where = f"{s.host}:{s.port}"
        smtp: _StagedData | None = None
        try:
            smtp = self._connect()
            smtp.progress = progress
            if s.user:
                smtp.login(s.user, s.password or "")
            refused = smtp.send_message(message)
        except OutcomeUnknown as exc:
            what = (f"did not answer within {s.timeout:g}s" if "timed out" in str(exc)
                    else "closed the connection")
            raise OutcomeUnknown(f"{where} {what} after the end of the message: it may "
                                 "have been delivered") from None
        except smtplib.SMTPRecipientsRefused as exc:
            answers = "; ".join(f"{rcpt}: {code} {_text(msg)}"
                                for rcpt, (code, msg) in exc.recipients.items())
            raise DeliveryError(f"{where} refused every recipient ({answers})") from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except smtplib.SMTPServerDisconnected as exc:
            # smtplib reports a read timeout as a disconnection
            if "timed out" in str(exc):
                raise DeliveryError(f"{where} did not answer within {s.timeout:g}s") from None
            raise DeliveryError(f"{where} closed the connection: {exc or 'no reason'}") from None
        except OSError as exc:
            # refused connection, timeout, DNS, TLS handshake or certificate...
            raise DeliveryError(f"cannot reach {where}: {exc}") from None
        except smtplib.SMTPException as exc:
            # e.g. no AUTH or STARTTLS offered by the server
            raise DeliveryError(f"{where}: {exc}") from None
        finally:
            if smtp is not None:
                # Once the message is accepted nothing after it may turn into a failure
                # (that would send it again next run): QUIT problems are ignored.
                with suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
                smtp.close()
        if refused:
            # accepted for the others: sending again would duplicate it for them
            return f"{where}; refused: " + ", ".join(sorted(refused))
        return where


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


class OutboxMailer:
    """Digests as `.eml` files: open them with any mail client, or forward them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self) -> str:
        return f"outbox {self.directory} (no DOZOR_SMTP_HOST set)"

    def send(self, message: EmailMessage, progress: Progress = _no_progress) -> str:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / eml_name(message)
            tmp = path.with_suffix(".tmp")
            # written aside then renamed: the outbox never holds half a message
            progress("data")
            tmp.write_bytes(message.as_bytes(policy=SMTP_POLICY))
            progress("end-of-data")
            os.replace(tmp, path)
        except OSError as exc:
            raise DeliveryError(f"cannot write to the outbox {self.directory}: {exc}") from None
        return str(path)


def eml_name(message: EmailMessage) -> str:
    """'20260125-0930-recruitment-uk-1a2b3c4d.eml': sorts by time, names the rule."""
    stamp = parsedate_to_datetime(message["Date"]).strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha1(str(message["Message-ID"]).encode()).hexdigest()[:8]
    rule = message.get("X-Dozor-Rule", "digest")
    return f"{stamp}-{rule}-{digest}.eml"


def mailer_for(config: Config) -> Mailer:
    """SMTP when DOZOR_SMTP_HOST is set, else the outbox folder."""
    settings = SmtpSettings.from_env(config.env)
    if settings is None:
        return OutboxMailer(config.paths.outbox)
    return SmtpMailer(settings)

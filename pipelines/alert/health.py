"""Health alerts: one e-mail when a source's URL enters a bad state, one when it
recovers; never one per run.

The state a record last announced (`HealthRecord.notified`) is stored before the
message goes to the mail server, as a digest's deliveries are marked sending first:
a crash in between loses that one e-mail rather than sending it again on every run. A
message the server refuses puts the previous mark back, so the next run tries again.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from pipelines.alert.mailer import DeliveryError, Mailer
from pipelines.alert.rules import HealthAlerts
from pipelines.article import utcnow
from pipelines.health import BAD_STATES, HealthRecord
from pipelines.store import SourceHealth

REASONS = {
    "blocked": "is blocked (an HTTP refusal, an anti-bot page or a 429 storm)",
    "moved": "has moved (a permanent redirect, or HTML where a feed was)",
    "unavailable": "is unavailable (a Telegram channel without its public preview)",
    "failing": "fails on every attempt",
    "silent": "answers but has published nothing for several times its usual interval",
}


def transitions(records: Sequence[HealthRecord]) -> list[HealthRecord]:
    """The records whose state differs from what was last announced: a new bad state,
    or `ok` after an announced bad one."""
    return [r for r in records if r.state != r.notified
            and (r.state in BAD_STATES or r.notified in BAD_STATES)]


def message(record: HealthRecord, settings: HealthAlerts, sender: str) -> EmailMessage:
    recovered = record.state == "ok"
    what = "recovered" if recovered else record.state
    subject = f"{settings.subject_prefix} " if settings.subject_prefix else ""
    subject += f"Dozor source {record.source}: {what}"
    lines = [f"{record.source}: {record.kind} {record.url}",
             "is working again" if recovered else REASONS.get(record.state, record.state)]
    if record.error:
        lines.append(f"last answer: {record.error}")
    if record.final_url:
        lines.append(f"now at: {record.final_url}")
    if record.last_success:
        lines.append(f"last success: {record.last_success:%Y-%m-%d %H:%M} UTC")
    if record.last_new:
        lines.append(f"last new item: {record.last_new:%Y-%m-%d %H:%M} UTC")
    lines.append(f"consecutive failures: {record.failures}")
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(settings.to)
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = make_msgid("health")
    msg.set_content("\n".join(lines) + "\n")
    return msg


def notify_health(store: SourceHealth, records: Sequence[HealthRecord],
                  settings: HealthAlerts | None, mailer: Mailer, sender: str) -> list[str]:
    """Announce every transition of `records` (already stored); one line per e-mail."""
    if settings is None:
        return []
    out = []
    for record in transitions(records):
        announced = record.notified
        record.notified = record.state
        store.put_health([record])
        try:
            where = mailer.send(message(record, settings, sender))
        except DeliveryError as exc:
            record.notified = announced
            store.put_health([record])
            out.append(f"health alert for {record.source} ({record.state}) NOT sent: {exc}")
            continue
        out.append(f"health alert: {record.source} {record.url} {record.state} -> {where}")
    return out

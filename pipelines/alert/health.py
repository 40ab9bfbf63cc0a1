"""Health alerts: one e-mail when a source's URL enters a bad state, one when it
recovers; never one per run.

Each transition is a notice in the digests' delivery log, under its own key
(`HEALTH_LOG`), numbered per record (`HealthRecord.transition`): the notice is recorded
pending before its record says it was queued, so a crash in between queues the same
notice again, which the log records only once. Notices then go out exactly as digests
do (pipelines.alert.delivery): each step of the hand-over recorded first, a refusal
left pending for the next run, and a hand-over cut off after the end of the message
(no reply, or the sender killed) sent again with the same Message-ID, marked
`X-Dozor-Possible-Repeat: yes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from pipelines.alert.delivery import hand_over, resume_interrupted, sending_lock
from pipelines.alert.digest import REPEAT_HEADER
from pipelines.alert.mailer import Mailer
from pipelines.alert.rules import HealthAlerts
from pipelines.article import utcnow
from pipelines.health import BAD_STATES, HealthRecord
from pipelines.store import Store
from pipelines.store.base import DeliveryLogBusy, StoreError

# the delivery log's key for health notices: no rule name (a-z0-9 first) looks like it
HEALTH_LOG = "#health"

REASONS = {
    "blocked": "is blocked (an HTTP refusal, an anti-bot page or a 429 storm)",
    "moved": "has moved (a permanent redirect, or HTML where a feed was)",
    "unavailable": "is unavailable (a Telegram channel without its public preview)",
    "failing": "fails on every attempt",
    "silent": "answers but has published nothing for several times its usual interval",
}
REPEAT_NOTE = ("This notice may be a repeat: an earlier attempt to send it was cut off after "
               "the mail server had the whole message (same Message-ID).")


@dataclass(frozen=True)
class Notice:
    """One transition of one (source, URL): its number and the state it announces."""

    source: str
    url: str
    number: int
    state: str

    @property
    def id(self) -> str:
        # source names have no spaces and canonical URLs none either: split back at
        # the first three
        return f"{self.source} {self.number} {self.state} {self.url}"

    @classmethod
    def parse(cls, notice_id: str) -> Notice:
        source, number, state, url = notice_id.split(" ", 3)
        return cls(source, url, int(number), state)


def transitions(records: Sequence[HealthRecord]) -> list[HealthRecord]:
    """The records whose state differs from what was last announced: a new bad state,
    or `ok` after an announced bad one."""
    return [r for r in records if r.state != r.notified
            and (r.state in BAD_STATES or r.notified in BAD_STATES)]


def message(notice: Notice, record: HealthRecord | None, settings: HealthAlerts, sender: str,
            repeat_of: str | None = None) -> EmailMessage:
    """The notice's e-mail; the details of `record` while it is still in that state."""
    recovered = notice.state == "ok"
    what = "recovered" if recovered else notice.state
    subject = f"{settings.subject_prefix} " if settings.subject_prefix else ""
    subject += f"Dozor source {notice.source}: {what}"
    kind = record.kind if record else "URL"
    lines = [f"{notice.source}: {kind} {notice.url}",
             "is working again" if recovered else REASONS.get(notice.state, notice.state)]
    if record is not None and record.state == notice.state:
        if record.error:
            lines.append(f"last answer: {record.error}")
        if record.final_url:
            lines.append(f"now at: {record.final_url}")
        if record.last_success:
            lines.append(f"last success: {record.last_success:%Y-%m-%d %H:%M} UTC")
        if record.last_new:
            lines.append(f"last new item: {record.last_new:%Y-%m-%d %H:%M} UTC")
        lines.append(f"consecutive failures: {record.failures}")
    if repeat_of is not None:
        lines += ["", REPEAT_NOTE]
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(settings.to)
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = repeat_of or make_msgid("health")
    msg["Auto-Submitted"] = "auto-generated"
    if repeat_of is not None:
        msg[REPEAT_HEADER] = "yes"
    msg.set_content("\n".join(lines) + "\n")
    return msg


def queue_notices(store: Store, records: Sequence[HealthRecord]) -> None:
    """Every transition of `records` recorded in the delivery log, then on its record."""
    for record in transitions(records):
        notice = Notice(record.source, record.url, record.transition + 1, record.state)
        store.add_deliveries(HEALTH_LOG, [notice.id])
        record.transition, record.notified = notice.number, record.state
        store.put_health([record])


def notify_health(store: Store, records: Sequence[HealthRecord],
                  settings: HealthAlerts | None, mailer: Mailer, sender: str) -> list[str]:
    """Queue every transition of `records` (already stored), then send every pending
    notice, oldest first; one line per e-mail."""
    if settings is None:
        return []
    out: list[str] = []
    try:
        queue_notices(store, records)
        with sending_lock(store):
            _send_notices(store, settings, mailer, sender, out)
    except DeliveryLogBusy as exc:
        out.append(f"health alerts not sent now: {exc}; they stay pending")
    except StoreError as exc:
        out.append(f"health alerts: the delivery log could not be written: {exc}; "
                   "the notices stay pending")
    return out


def _send_notices(store: Store, settings: HealthAlerts, mailer: Mailer, sender: str,
                  out: list[str]) -> None:
    pending = store.pending_deliveries(HEALTH_LOG)
    if resume_interrupted(store, HEALTH_LOG, "health notice",
                          [d for d in pending if d.status == "sending"], out,
                          lambda n: "its contents"):
        pending = store.pending_deliveries(HEALTH_LOG)
    records = {r.key: r for r in store.health_records()} if pending else {}
    for delivery in pending:
        notice = Notice.parse(delivery.article_id)
        repeat_of = delivery.message_id if delivery.possible_repeat else None
        msg = message(notice, records.get((notice.source, notice.url)), settings, sender,
                      repeat_of)
        status, detail = hand_over(store, HEALTH_LOG, [notice.id], str(msg["Message-ID"]),
                                   lambda on_stage, m=msg: mailer.send(m, on_stage),
                                   f"the health notice for {notice.source}")
        if status == "sent":
            line = f"health alert: {notice.source} {notice.url} {notice.state} -> {detail}"
            if repeat_of:
                line += " (again, marked as a possible repeat: an earlier attempt's outcome " \
                        "is unknown)"
        else:
            line = (f"health alert for {notice.source} ({notice.state}) NOT sent, "
                    f"{'outcome unknown' if status == 'unknown' else 'pending'}: {detail}")
        out.append(line)

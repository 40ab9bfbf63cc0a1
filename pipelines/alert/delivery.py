"""Matching new articles to rules and sending each rule's digest, at most once per story.

The delivery log in the Store drives everything. For each rule:

    unmatched articles --match--> add_deliveries (pending) --> mark_matched
    all pending --digest--> mark_sending(message id) --mark_stage(data, end-of-data)-->
        (the server's 250) mark_delivered
        (refused, or never reached the end of the message) mark_delivery_failed (pending)
        (no reply after the end of the message) mark_delivery_failed(outcome_unknown)

"New" is what Dozor stored for the first time, whatever its publication date: the
store marks each such article "unmatched" in the write that stores it, and the mark is
cleared only after its matches are in the log. So the stories of a run killed before
its alert step are matched by the next one, and nothing older ever is. A crash between
recording matches and clearing the mark only means matching again: add_deliveries
records a (rule, article) pair only once, so nothing is queued twice.

One story per near-duplicate cluster and rule: the first match of a cluster carries
the story; a syndicated copy (same `cluster_id`), in the same batch or any later run,
is logged "folded" into it and never sent on its own. While the story is still
pending, its digest lists the copies folded into it ("also in: ...").

How far each hand-over got is written to the delivery log before each step, so a
process that dies (or a disk that fills) mid-way leaves a record of it: deliveries
"sending" at stage "connecting" or "data" never reached the end of the message, so the
server cannot have accepted it: they are sent again like any pending story. At stage
"end-of-data" (the final dot sent, no reply recorded) nobody knows: the server may have
the message. No story may be lost, so they are sent again, with the same Message-ID (a
mail system that has the first can recognise the second) and marked as a possible
repeat in a header (X-Dozor-Possible-Repeat: yes), the body and the delivery log. A
reply lost after the end of the message (the connection dropped before the 250, or a
reply slower than the timeout) is the same unknown outcome. Only the server's 250 makes
a delivery final. A delivery log that cannot be written stops the hand-over before the
step it could not record, and is reported as such; the stories stay pending.

On a backend other processes can reach without a file lock (Elasticsearch), the
digests are sent holding the delivery log's own lock (DeliveryLock), so two senders
never both send a story.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from pipelines.alert.chat import send_chat
from pipelines.alert.digest import REPEAT_HEADER, Digest, build_digest, render
from pipelines.alert.mailer import (
    DeliveryError,
    Mailer,
    OutcomeUnknown,
    Progress,
    mail_from,
    mailer_for,
)
from pipelines.alert.rules import Rule, enabled, load_rules
from pipelines.article import Article, utcnow
from pipelines.config.config import Config
from pipelines.matching import AlertMatcher
from pipelines.store import AlertStore, Delivery, DeliveryLog, History, StoreError
from pipelines.store.base import UNKNOWN_OUTCOME, DeliveryLogBusy
from pipelines.store.roles import DeliveryLease, DeliveryLock

log = logging.getLogger(__name__)

# articles read from the store, matched and recorded at a time: each batch's record is
# one write of the delivery log, which costs about as much for 500 articles as for
# 2,000 (its rows are spread over every rule's part of the log)
MATCH_BATCH = 2000
# how long a sender's hold on a shared delivery log lasts unless renewed (before each
# rule's digests): past it, a killed sender's lock is taken over
LOCK_TTL = 600.0


@dataclass
class DigestOutcome:
    rule: str
    message_id: str
    stories: int
    articles: int
    status: str  # sent | failed | unknown (may have been delivered) | unrecorded (log)
    detail: str  # where it went, or why not
    waiting: int = 0
    possible_repeat: bool = False  # sent again after an earlier unknown outcome


@dataclass
class AlertReport:
    rules: int = 0
    queued: dict[str, int] = field(default_factory=dict)  # new matches per rule, this run
    folded: dict[str, int] = field(default_factory=dict)  # of them, copies of a story
    digests: list[DigestOutcome] = field(default_factory=list)
    via: str = ""  # the mailer's description
    interrupted: list[str] = field(default_factory=list)  # hand-overs a dead process left
    busy: str = ""  # another process holds the delivery log's lock: why nothing was sent
    # stories of rules whose schedule is not due yet, kept for their next digest
    held: dict[str, int] = field(default_factory=dict)

    @property
    def sent(self) -> list[DigestOutcome]:
        return [d for d in self.digests if d.status == "sent"]

    @property
    def failed(self) -> list[DigestOutcome]:
        """Every digest not known to be delivered and recorded."""
        return [d for d in self.digests if d.status != "sent"]

    def lines(self) -> list[str]:
        """One line each, for the analyst."""
        head = f"alerts: {self.rules} rule(s)"
        if self.queued:  # only when this run matched new articles
            head += f", {sum(self.queued.values())} new match(es)"
            if folded := sum(self.folded.values()):
                head += f" ({folded} syndicated cop{'y' if folded == 1 else 'ies'} of a story)"
        out = [f"{head}; {len(self.sent)} digest(s) sent via {self.via or 'nothing'}"]
        out += [f"  {line}" for line in self.interrupted]
        if self.busy:
            out.append(f"  not sending now: {self.busy}; the stories stay pending")
        for rule, n in self.held.items():
            out.append(f"  {rule}: {_stories(n)} held for the rule's next scheduled digest")
        for d in self.digests:
            if d.status == "sent":
                line = f"  {d.rule}: {_stories(d.stories)} -> {d.detail}"
                if d.possible_repeat:
                    line += (f" (again as {d.message_id}, marked as a possible repeat: an "
                             "earlier attempt's outcome is unknown)")
                if d.waiting:
                    line += f" ({d.waiting} more waiting for the next digest)"
            elif d.status == "failed":
                line = (f"  {d.rule}: NOT sent, {_stories(d.stories)} stay pending for the "
                        f"next run: {d.detail}")
            elif d.status == "unknown":
                line = (f"  {d.rule}: outcome unknown for {_stories(d.stories)}: {d.detail}; "
                        f"the next run sends {d.message_id} again, marked as a possible "
                        "repeat")
            else:
                line = f"  {d.rule}: the delivery log could not be written: {d.detail}"
            out.append(line)
        return out


def _stories(n: int) -> str:
    return f"{n} {'story' if n == 1 else 'stories'}"


def queue_matches(store: AlertStore, rules: Sequence[Rule], new_ids: Sequence[str],
                  report: AlertReport) -> None:
    """Record every match of the articles awaiting the rules (those the store marks
    unmatched, and `new_ids`) in the delivery log, then clear their mark."""
    matcher = store.alert_matcher()
    for rule in rules:
        report.queued.setdefault(rule.name, 0)
        report.folded.setdefault(rule.name, 0)
    by_name = {rule.name: rule for rule in rules}
    ids = list(dict.fromkeys([*store.unmatched_ids(), *new_ids]))
    for start in range(0, len(ids), MATCH_BATCH):
        chunk = ids[start:start + MATCH_BATCH]
        articles = {a.id: a for a in store.iter_articles(chunk)}
        matches: dict[str, list[Article]] = {}  # per channel's log key
        counted: dict[str, str] = {}  # the log key a rule's matches are counted under
        for rule_name, matched in matcher.match(rules, articles.values()).items():
            if matched:
                for n, channel in enumerate(by_name[rule_name].channels()):
                    matches[channel.log_key] = [articles[i] for i in matched]
                    if n == 0:
                        counted[channel.log_key] = rule_name
        _record(store, matches, counted, report)
        # only once every match of the chunk is in the log
        store.mark_matched(chunk)
    if isinstance(store, History):
        queue_events(store, matcher, [r for r in rules if r.query.on_events], report)


def queue_events(store: History, matcher: AlertMatcher, rules: Sequence[Rule],
                 report: AlertReport) -> None:
    """Queue each event a revisit recorded (edited, removed...) to the rules on `event:`
    it matches, once per event: the article is matched as it is now, with that event's
    kind as its only one, so an old event never matches again."""
    for event in store.unmatched_events():
        article = store.get(event.article_id) if rules else None
        matched: list[str] = []
        if article is not None:
            view = replace(article, events=[event.kind])
            matched = [name for name, ids in matcher.match(rules, [view]).items() if ids]
        keys = {c.log_key: r.name for r in rules if r.name in matched for c in r.channels()}
        queued = store.queue_event(event.n, event.article_id, list(keys))
        for name in dict.fromkeys(keys[key] for key in queued):
            report.queued[name] += 1


def _record(store: DeliveryLog, matches: dict[str, list[Article]], counted: dict[str, str],
            report: AlertReport) -> None:
    """Log the matches of each channel (keyed by its log key): pending, or folded into
    the story their cluster already has for it (queued or sent, in this batch or
    before), in one read and one write for all of them. The report counts them under
    the rule `counted` names for the key: once per rule, not per channel."""
    if not matches:
        return
    leads = store.many_cluster_deliveries(
        {key: {a.cluster_id for a in matched} for key, matched in matches.items()})
    folded: dict[str, dict[str, str]] = {}
    for key, matched in matches.items():
        folded[key] = {}
        # within the batch, the article that founded its cluster carries the story
        for article in sorted(matched, key=lambda a: a.id != a.cluster_id):
            if article.cluster_id:
                lead = leads[key].setdefault(article.cluster_id, article.id)
                if lead != article.id:
                    folded[key][article.id] = lead
    added = store.add_many_deliveries(
        {key: [a.id for a in matched] for key, matched in matches.items()}, folded)
    for key, name in counted.items():
        report.queued[name] += len(added[key])
        report.folded[name] += sum(1 for i in added[key] if i in folded[key])


def send_pending(store: AlertStore, rules: Sequence[Rule], mailer: Mailer,
                 report: AlertReport, config: Config, now: datetime | None = None) -> None:
    """One digest per rule from all its pending deliveries, after the possible repeats
    of hand-overs whose outcome is unknown (`config` gives the From address). While
    another process sends from a shared delivery log, nothing: `report.busy` says so,
    and the stories stay pending for it or the next run. A rule whose schedule is not
    due at `now` keeps its new stories pending (`report.held`)."""
    report.rules = len(rules)
    report.via = mailer.describe()
    sender = mail_from(config.env)
    try:
        with sending_lock(store) as lease:
            for rule in rules:
                if lease is not None:
                    lease.renew()
                for channel in rule.channels():
                    _send_rule(store, channel, mailer, report, sender, now or utcnow())
    except DeliveryLogBusy as exc:
        report.busy = str(exc)


def sending_lock(store: DeliveryLog) -> AbstractContextManager[DeliveryLease | None]:
    """The delivery log's lock while sending from it, when other processes share it
    without a file lock (DeliveryLock); raises DeliveryLogBusy while another holds it."""
    if isinstance(store, DeliveryLock):
        return store.delivery_lock(f"{socket.gethostname()} pid {os.getpid()}", LOCK_TTL)
    return nullcontext(None)


def _send_rule(store: AlertStore, rule: Rule, mailer: Mailer, report: AlertReport,
               sender: str, now: datetime) -> None:
    deliveries = store.pending_deliveries(rule.log_key)
    if resume_interrupted(store, rule.log_key, f"{rule.label}: digest",
                          [d for d in deliveries if d.status == "sending"], report.interrupted):
        deliveries = store.pending_deliveries(rule.log_key)
    repeats: dict[str, list[str]] = {}
    for d in deliveries:
        if d.possible_repeat and d.message_id:
            repeats.setdefault(d.message_id, []).append(d.article_id)
    for msgid, ids in repeats.items():
        # every story of the earlier attempt, whatever digest_limit says now
        digest = build_digest(rule, story_articles(store, rule, ids), limit=len(ids))
        if digest is not None:
            _hand_over(store, rule, mailer, digest, render(digest, sender, repeat_of=msgid),
                       report)
    fresh = [d for d in deliveries if not (d.possible_repeat and d.message_id)]
    # due from the last digest sent, or (none yet) from when the oldest story was queued
    since = store.last_sent(rule.log_key) or (fresh[0].created_at if fresh else None)
    if fresh and not rule.due(now, since):
        report.held[rule.label] = len(fresh)
        return
    pending = [d.article_id for d in fresh]
    digest = build_digest(rule, story_articles(store, rule, pending))
    if digest is not None:
        _hand_over(store, rule, mailer, digest, render(digest, sender), report)


def _hand_over(store: AlertStore, rule: Rule, mailer: Mailer, digest: Digest,
               message: EmailMessage, report: AlertReport) -> None:
    msgid = str(message["Message-ID"])
    ids = digest.article_ids
    outcome = DigestOutcome(rule.label, msgid, len(digest.stories), len(ids), "sent", "",
                            digest.waiting, possible_repeat=REPEAT_HEADER in message)
    report.digests.append(outcome)
    outcome.status, outcome.detail = hand_over(
        store, rule.log_key, ids, msgid,
        lambda on_stage: (send_chat(rule.channel, digest, on_stage, outcome.possible_repeat)
                          if rule.channel else mailer.send(message, on_stage)),
        f"the digest for rule {rule.name!r}")
    if outcome.status == "unrecorded" and outcome.detail.endswith("; nothing was sent"):
        outcome.detail += f", {_stories(outcome.stories)} stay pending"


def hand_over(store: DeliveryLog, key: str, ids: list[str], msgid: str,
              send: Callable[[Progress], str], what: str) -> tuple[str, str]:
    """One message for the deliveries `ids` of `key`, handed over by `send` (told each
    step, which the log records first): its status (sent, failed, unknown, unrecorded)
    and where it went or why not. Only a hand-over that ends in the server's answer
    marks the deliveries sent; every other end leaves them pending, as far as they got."""
    try:
        store.mark_sending(key, ids, msgid)
        detail = send(lambda stage: store.mark_stage(key, ids, stage))
    except StoreError as exc:
        # The hand-over stopped before the step the log could not record: the message
        # never reached its end, and the next run sends it again. Recording that may
        # fail the same way; the stage written last says the same.
        with suppress(StoreError):
            store.mark_delivery_failed(key, ids, f"delivery log not written: {exc}")
        return "unrecorded", f"{exc}; nothing was sent"
    except OutcomeUnknown as exc:
        return _failed(store, key, ids, str(exc), "unknown", outcome_unknown=True)
    except DeliveryError as exc:
        return _failed(store, key, ids, str(exc), "failed")
    except Exception as exc:
        # Not a mail-server answer but a fault on this side (the mailers map every
        # network and SMTP error to DeliveryError), raised before the end of the
        # message: pending again, and this run goes on with the other messages.
        log.exception("sending %s failed", what)
        return _failed(store, key, ids, f"{type(exc).__name__}: {exc}", "failed")
    try:
        store.mark_delivered(key, ids)
    except StoreError as exc:
        # delivered, but the log still says end-of-data: the next run sends it again,
        # marked as a possible repeat, rather than risk losing it
        return "unrecorded", (f"{detail} accepted it, but {exc}; the next run sends it "
                              "again marked as a possible repeat")
    return "sent", detail


def _failed(store: DeliveryLog, key: str, ids: list[str], error: str, status: str,
            outcome_unknown: bool = False) -> tuple[str, str]:
    try:
        store.mark_delivery_failed(key, ids, error, outcome_unknown=outcome_unknown)
    except StoreError as exc:
        return "unrecorded", f"{error}; and {exc}"
    return status, error


def resume_interrupted(store: DeliveryLog, key: str, label: str, deliveries: list[Delivery],
                       lines: list[str], what: Callable[[int], str] = lambda n: f"its {_stories(n)}"
                       ) -> bool:
    """Deliveries a dead process left "sending", back to pending: sent again normally
    when the hand-over never reached the end of the message, as possible repeats when
    it did. Whether there were any."""
    by_message: dict[tuple[str, bool], list[str]] = {}
    for d in deliveries:
        group = (d.message_id or "(unknown)", d.stage == UNKNOWN_OUTCOME)
        by_message.setdefault(group, []).append(d.article_id)
    for (msgid, unknown), ids in by_message.items():
        if unknown:
            error = ("the process sending it stopped after the end of the message, before "
                     "the server's reply was recorded: it may have been delivered")
            lines.append(
                f"{label} {msgid} was cut off after the end of the message "
                f"(outcome unknown): {what(len(ids))} go again as a possible repeat")
        else:
            error = ("the process sending it stopped before the end of the message: not "
                     "delivered")
            lines.append(
                f"{label} {msgid} was cut off before the end of the message (not "
                f"delivered): {what(len(ids))} are sent again")
        store.mark_delivery_failed(key, ids, error, outcome_unknown=unknown)
    return bool(by_message)


def _articles(store: AlertStore, ids: Sequence[str]) -> list[Article]:
    """The stored articles of `ids`, in that order (a deleted article is skipped)."""
    found = {a.id: a for a in store.iter_articles(ids)} if ids else {}
    return [found[i] for i in ids if i in found]


def story_articles(store: AlertStore, rule: Rule, ids: Sequence[str]) -> list[Article]:
    """The articles of `ids` (deliveries carrying stories, in order) followed by the
    copies folded into them, for `build_digest` to list under their story."""
    if not ids:
        return []
    leads = _articles(store, ids)
    clusters = {a.cluster_id for a in leads}
    copies = _articles(store, [d.article_id for d in store.folded_deliveries(rule.log_key, ids)])
    # a copy listed only beside its story, never as a story of its own
    return leads + [c for c in copies if c.cluster_id in clusters]


def notify(store: AlertStore, rules_file: Path, new_ids: Sequence[str], config: Config,
           mailer: Mailer | None = None) -> AlertReport:
    """Queue the matches of every article awaiting the rules, then send every rule's
    pending digest.

    The store knows which articles await the rules (this run's, and those of a run that
    died before this step); `new_ids`, the ids the caller stored for the first time, are
    matched with them. A rules file that does not load raises ConfigError before
    anything is queued or sent.
    """
    rules = enabled(load_rules(rules_file))
    report = AlertReport()
    queue_matches(store, rules, new_ids, report)
    now = utcnow()
    send_pending(store, [r for r in rules if r.sends(now)], mailer or mailer_for(config),
                 report, config, now)
    return report

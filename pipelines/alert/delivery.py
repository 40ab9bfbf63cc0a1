"""Matching new articles to rules and sending each rule's digest, at most once per story.

The delivery log in the Store drives everything. For each rule:

    unmatched articles --match--> add_deliveries (pending) --> mark_matched
    all pending --digest--> mark_sending(message id) --send--> mark_delivered
                                        (send failed) --> mark_delivery_failed (pending)

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

A crash can land between handing a digest to the mail server and recording it as
sent. Those deliveries are then found in the "sending" state with the digest's
Message-ID. Dozor cannot know whether that message reached the mailbox, and it
promises at most one email per story, so it settles them as sent without sending
again, says so, and keeps a copy of the digest in the outbox as `unconfirmed-*.eml`
so the stories are not lost to the analyst. The opposite choice (send again) would
risk a second email for every story of the digest on every such crash.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.alert.digest import build_digest, render
from pipelines.alert.mailer import DeliveryError, Mailer, OutboxMailer, mail_from, mailer_for
from pipelines.alert.rules import Rule, load_rules
from pipelines.article import Article
from pipelines.config.config import Config
from pipelines.store import AlertStore, Delivery, DeliveryLog

log = logging.getLogger(__name__)

MATCH_BATCH = 500  # articles read from the store at a time


@dataclass
class DigestOutcome:
    rule: str
    message_id: str
    stories: int
    articles: int
    status: str  # sent | failed | unconfirmed
    detail: str  # where it went, or why not
    waiting: int = 0


@dataclass
class AlertReport:
    rules: int = 0
    queued: dict[str, int] = field(default_factory=dict)  # new matches per rule, this run
    folded: dict[str, int] = field(default_factory=dict)  # of them, copies of a story
    digests: list[DigestOutcome] = field(default_factory=list)
    via: str = ""  # the mailer's description

    @property
    def sent(self) -> list[DigestOutcome]:
        return [d for d in self.digests if d.status == "sent"]

    @property
    def failed(self) -> list[DigestOutcome]:
        return [d for d in self.digests if d.status == "failed"]

    def lines(self) -> list[str]:
        """One line each, for the analyst."""
        head = f"alerts: {self.rules} rule(s)"
        if self.queued:  # only when this run matched new articles
            head += f", {sum(self.queued.values())} new match(es)"
            if folded := sum(self.folded.values()):
                head += f" ({folded} syndicated cop{'y' if folded == 1 else 'ies'} of a story)"
        out = [f"{head}; {len(self.sent)} digest(s) sent via {self.via or 'nothing'}"]
        for d in self.digests:
            if d.status == "sent":
                line = f"  {d.rule}: {_stories(d.stories)} -> {d.detail}"
                if d.waiting:
                    line += f" ({d.waiting} more waiting for the next digest)"
            elif d.status == "failed":
                line = (f"  {d.rule}: NOT sent, {_stories(d.stories)} stay pending for the "
                        f"next run: {d.detail}")
            else:
                line = (f"  {d.rule}: digest {d.message_id} was interrupted by a crash while "
                        f"being sent; not sent again (at most once per story); {d.detail}")
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
    ids = list(dict.fromkeys([*store.unmatched_ids(), *new_ids]))
    for start in range(0, len(ids), MATCH_BATCH):
        chunk = ids[start:start + MATCH_BATCH]
        articles = {a.id: a for a in store.iter_articles(chunk)}
        for rule_name, matched in matcher.match(rules, articles.values()).items():
            if matched:
                _record(store, rule_name, [articles[i] for i in matched], report)
        # only once every match of the chunk is in the log
        store.mark_matched(chunk)


def _record(store: DeliveryLog, rule: str, matched: list[Article], report: AlertReport) -> None:
    """Log the matches of one rule: pending, or folded into the story their cluster
    already has for the rule (queued or sent, in this batch or before)."""
    leads = store.cluster_deliveries(rule, {a.cluster_id for a in matched})
    folded: dict[str, str] = {}
    # within the batch, the article that founded its cluster carries the story
    for article in sorted(matched, key=lambda a: a.id != a.cluster_id):
        if article.cluster_id:
            lead = leads.setdefault(article.cluster_id, article.id)
            if lead != article.id:
                folded[article.id] = lead
    added = store.add_deliveries(rule, [a.id for a in matched], folded)
    report.queued[rule] += len(added)
    report.folded[rule] += sum(1 for i in added if i in folded)


def send_pending(store: AlertStore, rules: Sequence[Rule], mailer: Mailer,
                 report: AlertReport, config: Config) -> None:
    """One digest per rule from all its pending deliveries; settle interrupted ones
    (`config` gives the From address and the outbox their copies are kept in)."""
    report.rules = len(rules)
    report.via = mailer.describe()
    sender = mail_from(config.env)
    for rule in rules:
        deliveries = store.pending_deliveries(rule.name)
        _settle_interrupted(store, rule, [d for d in deliveries if d.status == "sending"],
                            sender, config.paths.outbox, report)
        pending = [d.article_id for d in deliveries if d.status == "pending"]
        digest = build_digest(rule, story_articles(store, rule, pending))
        if digest is None:
            continue
        message = render(digest, sender)
        msgid = str(message["Message-ID"])
        ids = digest.article_ids
        outcome = DigestOutcome(rule.name, msgid, len(digest.stories), len(ids), "sent", "",
                                digest.waiting)
        store.mark_sending(rule.name, ids, msgid)
        try:
            outcome.detail = mailer.send(message)
        except DeliveryError as exc:
            store.mark_delivery_failed(rule.name, ids, str(exc))
            outcome.status, outcome.detail = "failed", str(exc)
        except Exception as exc:
            # Not a mail-server answer but a fault on this side (the mailers map every
            # network and SMTP error to DeliveryError), raised before the message was
            # handed over: pending again, and this run goes on with the other rules.
            # Only the death of the process leaves a digest in "sending".
            log.exception("sending the digest for rule %r failed", rule.name)
            error = f"{type(exc).__name__}: {exc}"
            store.mark_delivery_failed(rule.name, ids, error)
            outcome.status, outcome.detail = "failed", error
        else:
            store.mark_delivered(rule.name, ids)
        report.digests.append(outcome)


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
    copies = _articles(store, [d.article_id for d in store.folded_deliveries(rule.name, ids)])
    # a copy listed only beside its story, never as a story of its own
    return leads + [c for c in copies if c.cluster_id in clusters]


def _settle_interrupted(store: AlertStore, rule: Rule, deliveries: list[Delivery], sender: str,
                        outbox: Path, report: AlertReport) -> None:
    by_message: dict[str, list[str]] = {}
    for d in deliveries:
        by_message.setdefault(d.message_id or "", []).append(d.article_id)
    for msgid, ids in by_message.items():
        store.mark_delivered(rule.name, ids)
        # every story of the interrupted digest, whatever digest_limit says now
        digest = build_digest(rule, story_articles(store, rule, ids), limit=len(ids))
        detail = "its articles are no longer stored"
        if digest is not None:
            copy = OutboxMailer(outbox)
            try:
                detail = "copy kept at " + copy.send(render(digest, sender), prefix="unconfirmed-")
            except DeliveryError as exc:
                detail = f"no copy kept: {exc}"
        report.digests.append(DigestOutcome(rule.name, msgid or "(unknown)", len(ids), len(ids),
                                            "unconfirmed", detail))


def notify(store: AlertStore, rules_file: Path, new_ids: Sequence[str], config: Config,
           mailer: Mailer | None = None) -> AlertReport:
    """Queue the matches of every article awaiting the rules, then send every rule's
    pending digest.

    The store knows which articles await the rules (this run's, and those of a run that
    died before this step); `new_ids`, the ids the caller stored for the first time, are
    matched with them. A rules file that does not load raises ConfigError before
    anything is queued or sent.
    """
    rules = load_rules(rules_file)
    report = AlertReport()
    queue_matches(store, rules, new_ids, report)
    send_pending(store, rules, mailer or mailer_for(config), report, config)
    return report

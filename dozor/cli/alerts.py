"""`dozor alerts list | test RULE | send`: the alert rules and their pending digests."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer
from rich.table import Table

from dozor.cli.app import DbOption, EsOption, app, config_of, console, fail, store_from
from dozor.cli.options import AlertsOption, SourcesOption
from dozor.cli.rulefiles import alert_rules
from dozor.lock import LOCK_BUSY_EXIT, run_lock
from pipelines.alert import (
    AlertReport,
    mailer_for,
    queue_matches,
    send_pending,
)
from pipelines.alert.delivery import story_articles
from pipelines.alert.digest import build_digest, render
from pipelines.alert.health import HEALTH_LOG
from pipelines.alert.mailer import mail_from
from pipelines.alert.review import stored_matches
from pipelines.alert.rules import enabled
from pipelines.article import utcnow
from pipelines.config.backend import store_options
from pipelines.store.base import Delivery

alerts_app = typer.Typer(help="Alert rules and their email digests.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")



@alerts_app.command("list")
def list_rules(ctx: typer.Context, alerts: AlertsOption = None, db: DbOption = None,
               es: EsOption = None, sources: SourcesOption = None) -> None:
    """The rules, their recipients and how many stories wait for each."""
    config = config_of(ctx)
    rules = alert_rules(alerts, sources)
    with store_from(config, db, es, read_only=True) as store:
        # one pending delivery per story: syndicated copies are folded into theirs
        waiting = Counter(d.rule for d in store.pending_deliveries())
        unmatched = len(store.unmatched_ids())
    table = Table(expand=True)
    for column in ("rule", "query", "to", "limit", "pending"):
        table.add_column(column, overflow="fold")
    for rule in rules:
        table.add_row(f"{rule.name}\n[dim]{rule.title}[/]", rule.query.text,
                      "\n".join(rule.spec.to), str(rule.spec.digest_limit),
                      str(waiting.pop(rule.name, 0)))
    console.print(table)
    if notices := waiting.pop(HEALTH_LOG, 0):
        console.print(f"[yellow]{notices} health notice(s) not delivered yet: the next "
                      "`dozor run` sends them[/]")
    for name, count in sorted(waiting.items()):
        console.print(f"[yellow]{count} pending stories for {name!r}, which is no longer "
                      "in the rules file: they wait until a rule of that name returns[/]")
    if unmatched:
        console.print(f"[yellow]{unmatched} stored article(s) not matched against the rules "
                      "yet (a run stopped before its alert step): `dozor alerts send` or the "
                      "next `dozor run` matches them[/]")
    console.print(f"digests go to: {mailer_for(config).describe()}", highlight=False)


@alerts_app.command("test")
def test_rule(
    ctx: typer.Context,
    rule_name: Annotated[str, typer.Argument(metavar="RULE", help="The rule's name.")],
    alerts: AlertsOption = None,
    db: DbOption = None,
    es: EsOption = None,
    sources: SourcesOption = None,
    limit: Annotated[int, typer.Option(help="Matching stories to list (newest first).")] = 20,
    preview: Annotated[
        bool, typer.Option("--preview", help="Print the digest `alerts send` would send now.")
    ] = False,
) -> None:
    """What RULE matches among the stored articles now, and its pending digest. Sends nothing."""
    config = config_of(ctx)
    rules = {r.name: r for r in alert_rules(alerts, sources)}
    rule = rules.get(rule_name)
    if rule is None:
        raise fail(f"no rule {rule_name!r}; the rules are: {', '.join(rules) or 'none'}")
    with store_from(config, db, es, read_only=True) as store:
        matched = stored_matches(store, rule)
        pending = {d.article_id: d for d in store.pending_deliveries(rule.name)}
        queued = story_articles(store, rule, list(pending))
        sent = {d.article_id: d for d in store.sent_deliveries(rule.name,
                                                                [a.id for a in matched])}

    console.print(f"[bold]{rule.name}[/]: {rule.query.text}", highlight=False)
    copies = len(queued) - len(pending)
    console.print(f"{len(matched)} stored article(s) match; {len(pending)} story(ies) wait "
                  "to be sent" + (f", with {copies} syndicated copy(ies) listed under them"
                                  if copies else "") + ".", soft_wrap=True)
    matched.sort(key=lambda a: a.stored_at or a.fetched_at, reverse=True)
    if matched:
        table = Table(expand=True)
        for column in ("stored", "lang", "source", "title", "matched", "delivery"):
            table.add_column(column, overflow="fold")
        for a in matched[:limit]:
            d = pending.get(a.id) or sent.get(a.id)
            table.add_row(f"{a.stored_at or a.fetched_at:%Y-%m-%d %H:%M}", a.lang, a.source,
                          a.title, ", ".join(rule.matched_terms(a)), _delivery(d))
        console.print(table)
    digest = build_digest(rule, queued)
    if preview and sent:
        console.print(f"Already sent ({len(sent)}), not in the next digest:")
        for a in matched:
            if a.id in sent:
                published = f"{a.published_at:%Y-%m-%d}" if a.published_at else "undated"
                console.print(f"  [sent {_delivery(sent[a.id])[5:]}] {published} {a.source}: "
                              f"{a.title}", highlight=False, markup=False, soft_wrap=True)
    if digest is None:
        console.print("Nothing is pending: `dozor alerts send` would send nothing.")
        return
    console.print(f"`dozor alerts send` would send: [bold]{digest.subject}[/] "
                  f"to {', '.join(rule.spec.to)}", highlight=False, soft_wrap=True)
    if preview:
        message = render(digest, mail_from(config.env))
        text = message.get_body(("plain",))
        console.print(text.get_content() if text else "", highlight=False, markup=False,
                      soft_wrap=True)


def _delivery(d: Delivery | None) -> str:
    if d is None:
        return ""
    if d.status == "sent" and d.sent_at:
        return f"sent {d.sent_at:%Y-%m-%d %H:%M}"
    return d.status


@alerts_app.command("send")
def send(ctx: typer.Context, alerts: AlertsOption = None, db: DbOption = None,
         es: EsOption = None, sources: SourcesOption = None) -> None:
    """Send every rule's pending digest now: what a failed send left for the next run,
    and the matches of stories a stopped run stored but never matched.

    Exit status: 0 when every digest went out (or nothing was pending), 1 when one could
    not be sent (its stories stay pending), 2 for a bad rules file or database, 75 when
    a run holds the lock, or another process the delivery log's lock (Elasticsearch).
    """
    config = config_of(ctx)
    rules = alert_rules(alerts, sources)
    report = AlertReport()
    with run_lock(config.paths.data, "dozor alerts send", store_options(config, db, es)["db"]), \
            store_from(config, db, es) as store:
        queue_matches(store, enabled(rules), [], report)
        now = utcnow()
        send_pending(store, [r for r in rules if r.sends(now)], mailer_for(config), report,
                     config)
    for line in report.lines():
        console.print(line, highlight=False, markup=False)
    if report.busy:
        raise typer.Exit(LOCK_BUSY_EXIT)
    if report.failed:
        raise typer.Exit(1)

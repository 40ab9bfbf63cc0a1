"""Source health, conditional requests, the frontier's memory and health alerts, through
`dozor run` against a real server on 127.0.0.1, a real SQLite file and aiosmtpd.

Each state happens for real: a feed that starts answering 403 (then recovers), one that
starts serving HTML, one behind a permanent redirect, a channel without its preview, a
source that stops publishing (its history of publishing hourly is in the store).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import yaml

from dozor.demo.telegram import contact_page
from dozor.ui.app import AnalystUI
from pipelines.health import HealthRecord
from pipelines.store import open_store
from tests.support.cli import run_dozor
from tests.support.httpserver import NewsServer
from tests.support.smtpserver import SmtpServer

RUN_TIMEOUT = 180
BODY = ("<p>Вербовщики приезжают в колонии и обещают заключённым помилование через шесть "
        "месяцев контракта, пишут правозащитники.</p>") * 6


def an_hour_ago() -> datetime:
    """Taken when a feed is built, not at import: a long suite runs a module minutes later."""
    return datetime.now(UTC) - timedelta(hours=1)


def article(title: str) -> str:
    return (f"<html lang='ru'><head><title>{title}</title></head><body><article>"
            f"<h1>{title}</h1>{BODY}</article></body></html>")


def rss(base: str, links: list[str]) -> str:
    items = "".join(f"<item><title>{link}</title><link>{base}{link}</link>"
                    f"<pubDate>{format_datetime(an_hour_ago())}</pubDate></item>"
                    for link in links)
    return ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>t</title>{items}</channel></rss>")


def serve_first_run(server: NewsServer) -> None:
    base = server.base
    feed = "application/rss+xml"
    server.add("/steady/rss.xml", rss(base, ["/steady/a1.html"]), feed,
               headers={"ETag": '"v1"', "Last-Modified": "Tue, 01 Dec 2026 10:00:00 GMT"})
    server.add("/steady/a1.html", article("Устойчивый источник"))
    # a link that redirects to the article, and one that is gone
    server.add("/frontier/rss.xml", rss(base, ["/frontier/r1", "/frontier/gone.html"]), feed)
    server.redirect("/frontier/r1", f"{base}/frontier/final.html", status=302)
    server.add("/frontier/final.html", article("Статья после переадресации"))
    server.add("/walled/rss.xml", rss(base, ["/walled/w1.html"]), feed)
    server.add("/walled/w1.html", article("Источник за стеной"))
    server.add("/htmlfeed/rss.xml", rss(base, ["/htmlfeed/h1.html"]), feed)
    server.add("/htmlfeed/h1.html", article("Лента, ставшая страницей"))
    server.redirect("/old/rss.xml", f"{base}/new/rss.xml", status=301)
    server.add("/new/rss.xml", rss(base, ["/new/n1.html"]), feed)
    server.add("/new/n1.html", article("Переехавшая лента"))
    server.add("/quiet/rss.xml", rss(base, ["/quiet/q1.html"]), feed)
    server.add("/quiet/q1.html", article("Тихий источник"))
    server.redirect("/s/closed_chan", f"{base}/closed_chan", status=302)
    server.add("/closed_chan", contact_page("closed_chan", "Closed Channel"))


def states(db: Path) -> dict[str, HealthRecord]:
    store = open_store(db=db)
    try:
        return {r.source: r for r in store.health_records()}
    finally:
        store.close()


def subjects(smtp: SmtpServer) -> list[str]:
    return sorted(str(m["Subject"]) for m in smtp.messages())


def test_states_alerts_conditional_requests_and_the_frontier(tmp_path: Path,
                                                             smtp: SmtpServer) -> None:
    server = NewsServer().start()
    try:
        serve_first_run(server)
        base = server.base
        sources = [
            {"name": "steady", "feeds": [f"{base}/steady/rss.xml"]},
            {"name": "frontier", "feeds": [f"{base}/frontier/rss.xml"]},
            {"name": "walled", "feeds": [f"{base}/walled/rss.xml"]},
            {"name": "htmlfeed", "feeds": [f"{base}/htmlfeed/rss.xml"]},
            {"name": "movedfeed", "feeds": [f"{base}/old/rss.xml"]},
            {"name": "quiet", "feeds": [f"{base}/quiet/rss.xml"]},
            {"name": "channel", "telegram": ["closed_chan"]},
        ]
        sources_file = tmp_path / "sources.yaml"
        sources_file.write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
        alerts = tmp_path / "alerts.yaml"
        alerts.write_text(yaml.safe_dump({"rules": [], "health": {
            "to": ["analyst@example.org"], "failing_after": 2, "subject_prefix": "[Dozor]"}}),
            encoding="utf-8")
        config = tmp_path / "dozor.yaml"
        config.write_text("crawl:\n  telegram_delay: 0\n  retry_times: 0\n"
                          "  autothrottle: false\n", encoding="utf-8")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DOZOR_") and k != "ELASTICSEARCH_URL"}
        env.update(DOZOR_DATA_DIR=str(tmp_path / "data"), DOZOR_ALLOWED_NETWORKS="127.0.0.1/32",
                   DOZOR_TELEGRAM_URL=base, DOZOR_CONFIG=str(config),
                   DOZOR_OUTBOX=str(tmp_path / "outbox"), **smtp.env())
        db = tmp_path / "dozor.db"
        args = ["run", "--sources", str(sources_file), "--db", str(db), "--alerts", str(alerts)]

        first = run_dozor(args, env, RUN_TIMEOUT)
        health = states(db)
        assert health["steady"].state == "ok" and health["steady"].etag == '"v1"'
        assert health["movedfeed"].state == "moved"
        assert health["movedfeed"].final_url == f"{base}/new/rss.xml"
        assert health["channel"].state == "unavailable"
        assert health["walled"].state == "ok" and health["walled"].last_new is not None
        assert subjects(smtp) == ["[Dozor] Dozor source channel: unavailable",
                                  "[Dozor] Dozor source movedfeed: moved"]
        assert "Traceback" not in first.stdout + first.stderr

        # nothing is due right after a run: --due crawls nothing
        before = len(server.requests)
        due = run_dozor([*args, "--due"], env, RUN_TIMEOUT)
        assert "0 source(s) crawled, 7 not due yet" in due.stdout
        assert len(server.requests) == before

        # the second run: a wall, HTML where the feed was, a source gone quiet (it used
        # to publish hourly), the frontier feed listing its links again
        server.add("/walled/rss.xml", "<html><body>Forbidden</body></html>", status=403)
        server.add("/htmlfeed/rss.xml", "<html><head><title>Home</title></head>"
                   "<body><p>Our new site</p></body></html>")
        server.add("/frontier/rss.xml", rss(base, ["/frontier/r1", "/frontier/gone.html"]) + " ",
                   "application/rss+xml")
        store = open_store(db=db)
        try:
            quiet = health["quiet"]
            quiet.items_per_day, quiet.last_new = 24.0, datetime.now(UTC) - timedelta(days=2)
            store.put_health([quiet])
        finally:
            store.close()
        fetched = len(server.requests)
        second = run_dozor(args, env, RUN_TIMEOUT)
        health = states(db)
        assert health["walled"].state == "blocked" and health["walled"].error == "HTTP 403"
        assert health["htmlfeed"].state == "moved"
        assert health["quiet"].state == "silent"
        assert health["movedfeed"].state == "moved" and health["channel"].state == "unavailable"
        # conditional request: the unchanged feed answered 304 and cost no parsing
        assert server.not_modified == ["/steady/rss.xml"]
        assert health["steady"].not_modified == 1 and health["steady"].state == "ok"
        assert "feeds/sitemaps/channels unchanged (304)" in second.stdout
        # the redirecting link and the 404 are not fetched again
        again = server.requests[fetched:]
        assert "/frontier/rss.xml" in again
        assert "/frontier/r1" not in again and "/frontier/gone.html" not in again
        assert "failed: walled: feed" in second.stdout and "HTTP 403" in second.stdout
        assert "Traceback" not in second.stdout + second.stderr
        assert subjects(smtp) == ["[Dozor] Dozor source channel: unavailable",
                                  "[Dozor] Dozor source htmlfeed: moved",
                                  "[Dozor] Dozor source movedfeed: moved",
                                  "[Dozor] Dozor source quiet: silent",
                                  "[Dozor] Dozor source walled: blocked"]

        # the wall comes down: one recovery e-mail, no repeat of the persisting states
        server.add("/walled/rss.xml", rss(base, ["/walled/w1.html"]), "application/rss+xml")
        run_dozor(args, env, RUN_TIMEOUT)
        health = states(db)
        assert health["walled"].state == "ok" and health["walled"].failures == 0
        sent = subjects(smtp)
        assert len(sent) == 6 and sent.count("[Dozor] Dozor source walled: recovered") == 1
        recovery = next(m for m in smtp.messages() if "walled: recovered" in str(m["Subject"]))
        assert "is working again" in recovery.get_content()

        status = run_dozor(["sources", "status", "--json", "--db", str(db)], env, expect=1)
        rows = [json.loads(line) for line in status.stdout.splitlines()]
        assert rows[0]["state"] in ("moved", "unavailable") and rows[-1]["state"] == "ok"
        assert {r["source"]: r["state"] for r in rows}["walled"] == "ok"
        steady = next(r for r in rows if r["source"] == "steady")
        assert steady["not_modified_share"] > 0

        # the UI: a marker on the home page, the Sources page with states and timings
        store = open_store(db=db)
        try:
            ui = AnalystUI(store, ["ru"])
            front = ui.respond({"PATH_INFO": "/"}).body.decode()
            page = ui.respond({"PATH_INFO": "/sources"}).body.decode()
        finally:
            store.close()
        assert '<a href="/sources">4 source URLs not ok</a>' in front
        assert page.count('<tr class="state-moved">') == 2 and "HTML instead of a feed" in page
        assert "Time to alert" in page and "all sources" in page
        latency = json.loads(run_dozor(["stats", "latency", "--json", "--db", str(db)],
                                       env).stdout)
        assert latency["*"]["seen_to_stored"]["n"] >= 6
    finally:
        server.stop()


def test_the_run_exits_3_when_every_source_fails(tmp_path: Path) -> None:
    server = NewsServer().start()
    try:
        server.add("/a/rss.xml", "<html>no</html>", status=403)
        sources = tmp_path / "sources.yaml"
        sources.write_text(yaml.safe_dump({"sources": [
            {"name": "a", "feeds": [server.url("/a/rss.xml")]},
            {"name": "b", "feeds": [server.url("/b/missing.xml")]}]}), encoding="utf-8")
        (tmp_path / "alerts.yaml").write_text("rules: []\n", encoding="utf-8")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DOZOR_") and k != "ELASTICSEARCH_URL"}
        env.update(DOZOR_DATA_DIR=str(tmp_path / "data"), DOZOR_ALLOWED_NETWORKS="127.0.0.1/32",
                   DOZOR_OUTBOX=str(tmp_path / "outbox"))
        result = run_dozor(["run", "--sources", str(sources), "--db", str(tmp_path / "d.db"),
                            "--alerts", str(tmp_path / "alerts.yaml")], env, RUN_TIMEOUT,
                           expect=3)
        out = result.stdout
        assert "failed: a: feed" in out and "HTTP 403" in out
        assert "failed: b: feed" in out and "HTTP 404" in out
        assert "every source failed (2)" in out
        assert "Traceback" not in out + result.stderr
    finally:
        server.stop()


def test_status_table_keeps_every_column_readable_beside_a_long_error() -> None:
    """A DNS or TLS error is a long line: its cell wraps instead of taking the width of
    every other column (on an 80-column terminal they were squeezed to nothing)."""
    from rich.console import Console

    from dozor.cli.sources_status import status_table

    error = ("CannotResolveHostError: DNS lookup failed: no results for hostname lookup: "
             "www.example-outlet.org.")
    console = Console(width=80, record=True)
    console.print(status_table([HealthRecord("outlet", "https://www.example-outlet.org/rss",
                                             "feed", "failing", error=error, failures=3)]))
    lines = console.export_text().splitlines()
    header = next(line for line in lines if "state" in line)
    assert all(cell.strip() for cell in header.strip("┃").split("┃")), header
    body = [line for line in lines if line.startswith("│")]
    assert body[0].split("│")[1].strip() == "failing"
    assert "".join(line.split("│")[5].strip() for line in body) == error.replace(" ", "")

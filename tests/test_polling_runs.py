"""Polling over real `dozor run`s against 127.0.0.1 and a real SQLite file: a URL listed
by both a feed and a sitemap of one source is fetched once per run, a feed that errors
run after run becomes `failing`, and a real 429's Retry-After holds the next poll back."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from pipelines.health import HealthRecord
from pipelines.store import open_store
from tests.support.cli import run_dozor
from tests.support.httpserver import NewsServer
from tests.support.smtpserver import SmtpServer
from tests.test_source_health import an_hour_ago, article, rss

RUN_TIMEOUT = 180
FEED = "application/rss+xml"




def sitemap(base: str, links: list[str]) -> str:
    day = an_hour_ago().strftime("%Y-%m-%dT%H:%M:%S+00:00")
    urls = "".join(f"<url><loc>{base}{link}</loc><lastmod>{day}</lastmod></url>"
                   for link in links)
    return ("<?xml version='1.0' encoding='UTF-8'?>"
            f"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{urls}</urlset>")


def setup(tmp_path: Path, sources: list[dict[str, object]], failing_after: int = 2,
          mail: dict[str, str] | None = None) -> tuple[list[str], dict[str, str], Path]:
    sources_file = tmp_path / "sources.yaml"
    sources_file.write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(yaml.safe_dump({"rules": [], "health": {
        "to": ["analyst@example.org"], "failing_after": failing_after}}), encoding="utf-8")
    config = tmp_path / "dozor.yaml"
    config.write_text("crawl:\n  retry_times: 0\n  autothrottle: false\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DOZOR_") and k != "ELASTICSEARCH_URL"}
    env.update(DOZOR_DATA_DIR=str(tmp_path / "data"), DOZOR_ALLOWED_NETWORKS="127.0.0.1/32",
               DOZOR_CONFIG=str(config), DOZOR_OUTBOX=str(tmp_path / "outbox"), **(mail or {}))
    db = tmp_path / "dozor.db"
    return (["run", "--sources", str(sources_file), "--db", str(db), "--alerts", str(alerts)],
            env, db)


def records(db: Path) -> dict[str, HealthRecord]:
    store = open_store(db=db)
    try:
        return {r.url: r for r in store.health_records()}
    finally:
        store.close()


def test_a_url_in_the_feed_and_the_sitemap_is_fetched_once_per_run(tmp_path: Path) -> None:
    server = NewsServer().start()
    try:
        base = server.base
        links = ["/both/a1.html", "/both/a2.html"]
        server.add("/both/rss.xml", rss(base, links), FEED)
        server.add("/both/sitemap.xml", sitemap(base, [*links, "/both/a3.html"]),
                   "application/xml")
        for n, link in enumerate([*links, "/both/a3.html"]):
            server.add(link, article(f"Статья номер {n} о вербовке"))
        args, env, db = setup(tmp_path, [{"name": "both", "feeds": [f"{base}/both/rss.xml"],
                                          "sitemaps": [f"{base}/both/sitemap.xml"]}])
        run_dozor(args, env, RUN_TIMEOUT)
        assert server.fetched("/both/rss.xml") == 1 and server.fetched("/both/sitemap.xml") == 1
        # each article once, though two of them are listed twice
        assert [server.fetched(p) for p in [*links, "/both/a3.html"]] == [1, 1, 1]
        store = open_store(db=db)
        try:
            articles = list(store.iter_articles())
        finally:
            store.close()
        assert len(articles) == 3
        # first seen when the feed or sitemap listed it, before the page itself was fetched
        for a in articles:
            assert a.first_seen_at is not None and a.stored_at is not None
            assert a.published_at is not None
            assert a.published_at < a.first_seen_at <= a.fetched_at <= a.stored_at
        latency = json.loads(run_dozor(["stats", "latency", "--json", "--db", str(db)],
                                       env).stdout)
        spans = latency["both"]
        assert spans["publication_to_seen"]["n"] == 3 and spans["seen_to_stored"]["n"] == 3
        # the entries were published an hour before they were listed
        assert 3500 < spans["publication_to_seen"]["p50"] < 3700
        assert 0 <= spans["seen_to_stored"]["p95"] < 120
    finally:
        server.stop()


def test_a_feed_erroring_run_after_run_becomes_failing_then_recovers(tmp_path: Path) -> None:
    server = NewsServer().start()
    try:
        base = server.base
        feed = f"{base}/flaky/rss.xml"
        server.add("/flaky/rss.xml", "<html><body>oops</body></html>", status=500)
        args, env, db = setup(tmp_path, [{"name": "flaky", "feeds": [feed]}], failing_after=3)
        # every source failed: exit 3, one line for the URL, no traceback
        states = []
        for _ in range(3):
            run = run_dozor(args, env, RUN_TIMEOUT, expect=3)
            assert f"failed: flaky: feed {feed}" in run.stdout and "HTTP 500" in run.stdout
            assert "Traceback" not in run.stdout + run.stderr
            record = records(db)[feed]
            states.append((record.state, record.failures))
        assert states == [("ok", 1), ("ok", 2), ("failing", 3)]
        assert server.fetched("/flaky/rss.xml") == 3
        # backed off exponentially: the next poll is further off than the usual interval
        assert record.next_due is not None and record.next_due > datetime.now(UTC) + timedelta(
            seconds=300)
        server.add("/flaky/rss.xml", rss(base, ["/flaky/f1.html"]), FEED)
        server.add("/flaky/f1.html", article("Лента снова работает"))
        run_dozor(args, env, RUN_TIMEOUT)
        record = records(db)[feed]
        assert (record.state, record.failures) == ("ok", 0) and record.last_new is not None
    finally:
        server.stop()


def test_a_real_429_retry_after_holds_the_next_poll_back(tmp_path: Path) -> None:
    server = NewsServer().start()
    try:
        base = server.base
        server.add("/busy/rss.xml", "Too many requests", "text/plain", status=429,
                   headers={"Retry-After": "7200"})
        server.add("/calm/rss.xml", rss(base, ["/calm/c1.html"]), FEED)
        server.add("/calm/c1.html", article("Спокойный источник"))
        args, env, db = setup(tmp_path, [{"name": "busy", "feeds": [f"{base}/busy/rss.xml"]},
                                         {"name": "calm", "feeds": [f"{base}/calm/rss.xml"]}])
        before = datetime.now(UTC)
        run_dozor(args, env, RUN_TIMEOUT)
        busy = records(db)[f"{base}/busy/rss.xml"]
        assert busy.state == "blocked" and busy.status == 429
        # without Retry-After the first error backs off 2 x 300 s; the server asked 2 h
        assert busy.next_due is not None and busy.next_due >= before + timedelta(seconds=7200)
        assert server.fetched("/busy/rss.xml") == 1
        # a due-only run leaves it alone until then
        run_dozor([*args, "--due"], env, RUN_TIMEOUT)
        assert server.fetched("/busy/rss.xml") == 1
    finally:
        server.stop()


def test_a_refused_health_e_mail_goes_at_the_next_run_even_when_nothing_is_due(
        tmp_path: Path, smtp: SmtpServer) -> None:
    server = NewsServer().start()
    try:
        base = server.base
        server.redirect("/old/rss.xml", f"{base}/new/rss.xml", status=301)
        server.add("/new/rss.xml", rss(base, ["/new/n1.html"]), FEED)
        server.add("/new/n1.html", article("Переехавшая лента"))
        args, env, db = setup(tmp_path, [{"name": "movedfeed", "feeds": [f"{base}/old/rss.xml"]}],
                              mail=smtp.env())
        smtp.mode = "451 4.3.0 Mail server temporarily busy"
        first = run_dozor(args, env, RUN_TIMEOUT)
        assert "health alert for movedfeed (moved) NOT sent" in first.stdout
        assert smtp.messages() == []
        smtp.mode = "accept"
        fetched = len(server.requests)
        # nothing is due a moment later, yet the pending notice goes, once
        for _ in range(2):
            run_dozor([*args, "--due"], env, RUN_TIMEOUT)
        assert len(server.requests) == fetched
        assert [str(m["Subject"]) for m in smtp.messages()] == [
            "Dozor source movedfeed: moved"]
    finally:
        server.stop()

"""`dozor demo` runs the whole cycle offline against the bundled site and says what it found."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
import yaml
from lxml import etree

from dozor.demo.render import render_site
from dozor.demo.server import SITE_ROOT, DemoServer
from pipelines.store import open_store
from tests.conftest import REPO
from tests.support.smtpserver import closed_port

# The bundled site's on-topic stories; every other story is off topic, traps included
# (Wagner the composer, "вербовка" of programmers, a colony's welding course, a prison
# book club, a graduate recruitment drive).
ON_TOPIC = {
    "/volga/news/5231-sizo-kontrakty.html",
    "/volga/news/5226-mat-osuzhdennogo.html",
    "/volga/news/5218-pomilovannyi-razboi.html",
    "/dnipro/novyny/8812-poloneni-shtorm-z.html",
    "/dnipro/novyny/8806-koloniyi-porozhniyut.html",
    "/herald/world/russia-penal-colonies-emptied.html",
    "/herald/world/storm-z-pardon-homecoming.html",
}
STORIES = yaml.safe_load((SITE_ROOT / "site.yaml").read_text(encoding="utf-8"))["stories"]
LANG = {"volga": "ru", "dnipro": "uk", "herald": "en"}
# The demo's Telegram posts (dozor/demo/site/_telegram) and their languages; a service
# message, a poll and a sticker are not posts. 2053 forwards 417; 2054 is off topic.
POSTS = {"/zavolzhye_pravo/415": "ru", "/zavolzhye_pravo/417": "ru", "/dnipro_vistky/2051": "uk",
         "/dnipro_vistky/2053": "ru", "/dnipro_vistky/2054": "uk", "/northgate_wire/90": "en"}
ON_TOPIC_POSTS = set(POSTS) - {"/dnipro_vistky/2054"}


def test_demo_site_is_served_with_correct_content_types() -> None:
    with DemoServer() as server:
        def get(path: str) -> tuple[int, str, bytes]:
            with urllib.request.urlopen(server.url(path), timeout=5) as response:
                return response.status, response.headers["Content-Type"], response.read()

        assert get("/volga/rss.xml")[1] == "application/rss+xml"
        assert get("/dnipro/atom.xml")[1] == "application/atom+xml"
        status, ctype, body = get("/herald/news-sitemap.xml")
        assert ctype == "application/xml" and b"<news:publication_date>" in body
        assert get("/robots.txt")[1].startswith("text/plain")
        status, ctype, body = get(STORIES[0]["path"] + "?utm_source=rss")
        assert (status, ctype) == (200, "text/html; charset=utf-8")
        assert STORIES[0]["title"] in body.decode("utf-8")
        # feeds name this server, whatever port it got
        assert server.base.encode() in get("/volga/rss.xml")[2]
        with pytest.raises(urllib.error.HTTPError) as missing:
            get("/volga/news/no-such-story.html")
        assert missing.value.code == 404


def test_feeds_and_sitemap_list_every_story() -> None:
    site = render_site(SITE_ROOT, "http://127.0.0.1:1")
    listed: list[str] = []
    for outlet in site.outlets.values():
        for feed in outlet.feeds:
            parsed = feedparser.parse(site.pages[feed].body)
            assert not parsed.bozo, f"{feed}: {parsed.get('bozo_exception')}"
            listed += [urlsplit(entry.link).path for entry in parsed.entries]
        for sitemap in outlet.sitemaps:
            root = etree.fromstring(site.pages[sitemap].body)
            ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9",
                  "n": "http://www.google.com/schemas/sitemap-news/0.9"}
            assert len(root.findall(".//n:publication_date", ns)) == len(root)
            listed += [urlsplit(loc.text or "").path for loc in root.findall(".//s:loc", ns)]
    assert sorted(listed) == sorted(s["path"] for s in STORIES)


def test_dozor_demo_end_to_end(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOZOR_")}
    # SMTP configured in the environment must not take the demo's email: were it used,
    # sending to this closed port would fail and the outbox would stay empty
    env.update(DOZOR_DATA_DIR=str(tmp_path / "data"), DOZOR_SMTP_HOST="127.0.0.1",
               DOZOR_SMTP_PORT=str(closed_port()), COLUMNS="400")
    result = subprocess.run([sys.executable, "-m", "dozor", "demo", "--keep", str(keep),
                             "--progress-interval", "0.5"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]  # the progress lines too

    assert "Serving the demo news site at http://127.0.0.1:" in out
    found, _, rest = out.partition("dozor search")
    search, _, email = rest.partition("Alert email")
    assert "Stored articles per language" in found and email, out

    # per-language counts as stored, and the stored relevance itself
    store = open_store(db=keep / "demo.db")
    try:
        articles = list(store.iter_articles())
    finally:
        store.close()
    web = [a for a in articles if a.channel is None]
    by_path = {urlsplit(a.canonical_url).path: a for a in web}
    assert sorted(by_path) == sorted(s["path"] for s in STORIES)
    assert {p for p, a in by_path.items() if a.relevant} == ON_TOPIC
    assert all(a.lang == LANG[a.source] for a in web)
    # the demo's crawl reports its progress as dozor run does; its last line is the tally
    # of what the demo stored
    done = [line for line in result.stderr.splitlines()
            if line.startswith("progress: crawl done: ")]
    n = len(articles)
    assert len(done) == 1 and done[0].startswith(
        f"progress: crawl done: fetched {n} pages, processed {n} of {n}, translated "), \
        result.stderr[-3000:]
    posts = {urlsplit(a.canonical_url).path: a for a in articles if a.channel}
    assert {p: a.lang for p, a in posts.items()} == POSTS
    assert {p for p, a in posts.items() if a.relevant} == ON_TOPIC_POSTS
    forward = posts["/dnipro_vistky/2053"]
    assert forward.cluster_id == posts["/zavolzhye_pravo/417"].cluster_id
    counts = Counter(a.lang for a in articles)
    on_topic = Counter(a.lang for a in articles if a.relevant)
    for lang in ("ru", "uk", "en"):
        assert any(line.split()[:4] == ["│", lang, "│", str(counts[lang])]
                   and line.split()[5] == str(on_topic[lang]) for line in found.splitlines()), \
            found

    # the on-topic table and the email list exactly the on-topic stories
    for story in STORIES:
        shown = story["title"] in found
        assert shown == (story["path"] in ON_TOPIC), story["title"]
        assert (story["title"] in email) == (story["path"] in ON_TOPIC), story["title"]
    # the forward is folded into the post it forwards: one story
    assert f"Subject: {len(ON_TOPIC) + len(ON_TOPIC_POSTS) - 1} new stories" in email
    # the search example finds colonies in all three languages, inflected forms included
    assert {"ru", "uk", "en"} <= {a.lang for a in articles if a.title in search}
    assert list(keep.glob("outbox/*.eml")), "the digest was not written to the outbox"

    # a second demo into the same folder would store every story again under new URLs
    again = subprocess.run([sys.executable, "-m", "dozor", "demo", "--keep", str(keep)],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "already holds a demo database" in again.stderr

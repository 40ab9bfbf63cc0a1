"""Stories in the UI over HTTP on 127.0.0.1, on SQLite and the loopback Elasticsearch: copies
collapsed under their story, the cluster page and its JSON, the event facet, and any search
as an Atom feed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import urlencode

import feedparser
import pytest

from pipelines import dedup
from pipelines.article import Article
from pipelines.query import parse_query
from pipelines.store.sqlite import SQLiteStore
from tests.fakes.elasticsearch import FakeElasticsearch, fast_store
from tests.support.articles import corpus
from tests.test_ui import Reply, fetch, hit_ids, running_ui

Served = tuple[str, dict[str, Article]]


@pytest.fixture(scope="module", params=["sqlite", "elasticsearch"])
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp(request.param)
    docs = corpus()
    docs["ru_wire"].events = ["edited", "title_changed"]
    docs["uk"].events = ["edited"]
    docs["ru_other"].title = 'Вернувшиеся <script>alert("x")</script> под судом'
    if request.param == "sqlite":
        with SQLiteStore(tmp / "ui.db") as store:
            store.write(dedup.dedup(list(docs.values()), store))
            with running_ui(store) as base:
                yield base, docs
    else:
        with FakeElasticsearch() as fake, fast_store(fake.url, tmp / "spool") as store:
            store.write(dedup.dedup(list(docs.values()), store))
            with running_ui(store) as base:
                yield base, docs
            assert fake.problems == []


def get(base: str, path: str, **params: str) -> Reply:
    return fetch(f"{base}{path}?{urlencode(params)}" if params else base + path)


def test_search_counts_stories_and_lists_copies_under_them(served: Served) -> None:
    base, docs = served
    text = "колония OR colony OR колонія"
    matching = [a for a in docs.values() if parse_query(text).matches(a)]
    clusters = {a.cluster_id for a in matching}
    reply = get(base, "/search", q=text)
    assert reply.status == 200
    assert f'<span class="total">{len(clusters)}</span>' in reply.body
    assert f'<span class="articles">{len(matching)}</span>' in reply.body
    shown = hit_ids(reply)
    assert len(shown) == len(clusters) and docs["ru_copy"].id not in shown
    under = re.findall(r'<li id="copy-([0-9a-f]{40})">', reply.body)
    assert sorted(shown + under) == sorted(a.id for a in matching)
    assert docs["ru_copy"].id in under and docs["en_copy"].id in under
    assert reply.body.count("<summary>1 copy</summary>") == 2
    assert "<details class=\"copies\" id=\"copies-1\" open" not in reply.body  # collapsed


def test_cluster_page_and_json_list_every_member(served: Served) -> None:
    base, docs = served
    wire, copy = docs["en_wire"], docs["en_copy"]
    page = get(base, f"/cluster/{wire.id}")
    assert page.status == 200
    rows = re.findall(r'<tr class="member( founder)?" id="member-([0-9a-f]{40})">', page.body)
    assert sorted(rows) == sorted([(" founder", wire.id), ("", copy.id)])
    assert f'href="/article/{copy.id}"' in page.body and copy.source in page.text
    assert "English" in page.text and f'href="/cluster/{wire.id}.json"' in page.body
    doc = json.loads(get(base, f"/cluster/{wire.id}.json").body)
    assert doc["cluster_id"] == wire.id and doc["articles"] == 2
    members = {m["id"]: m for m in doc["members"]}
    assert set(members) == {wire.id, copy.id}
    assert members[copy.id]["source"] == copy.source and members[copy.id]["lang"] == "en"
    assert members[copy.id]["page"] == f"/article/{copy.id}"
    assert members[copy.id]["fetched_at"] and members[copy.id]["stored_at"]
    # the copy's article page links its cluster
    assert f'<a href="/cluster/{wire.id}">' in get(base, f"/article/{copy.id}").body
    assert get(base, f"/cluster/{'0' * 40}").status == 404
    assert get(base, f"/cluster/{'0' * 40}.json").status == 404
    assert get(base, "/cluster/../etc").status == 404


def test_event_facet_counts_and_narrows(served: Served) -> None:
    base, docs = served
    page = json.loads(get(base, "/search.json", q="fetched:<now").body)
    assert page["facets"]["event"] == {"edited": 2, "title_changed": 1}
    html = get(base, "/search", q="fetched:<now")
    facet = html.body.split('data-facet="event"', 1)[1].split("</section>", 1)[0]
    assert re.findall(r'>(\w+)</a> <span class="count">(\d+)</span>', facet) == [
        ("edited", "2"), ("title_changed", "1")]
    narrowed = re.search(r'href="([^"]+)">title_changed</a>', facet)
    assert narrowed is not None
    reply = fetch(base + narrowed.group(1).replace("&amp;", "&"))
    assert hit_ids(reply) == [docs["ru_wire"].id]
    # a search with no changed article shows no event facet
    assert 'data-facet="event"' not in get(base, "/search", q="lang:en").body


def test_any_search_is_an_atom_feed(served: Served) -> None:
    base, docs = served
    params = {"q": "колония OR Вернувшиеся", "lang": "ru", "sort": "oldest"}
    page = get(base, "/search", **params)
    link = re.search(r'<link rel="alternate" type="application/atom\+xml" '
                     r'title="This search as a feed" href="([^"]+)">', page.body)
    assert link is not None
    href = link.group(1).replace("&amp;", "&")
    assert href.startswith("/search.atom?") and "sort" not in href
    assert f'class="feed" type="application/atom+xml" href="{link.group(1)}"' in page.body
    reply = fetch(base + href)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith(
        "application/atom+xml")
    feed = feedparser.parse(reply.body)
    assert not feed.bozo, feed.get("bozo_exception")
    expected = [a for a in docs.values() if a.lang == "ru"
                and parse_query(params["q"]).matches(a)]
    ids = [e.id.removeprefix("urn:dozor:article:") for e in feed.entries]
    assert sorted(ids) == sorted(a.id for a in expected)  # every match, copies too
    published = [e.published_parsed for e in feed.entries]
    assert published == sorted(published, reverse=True)  # newest first
    assert feed.feed.title == "Dozor search: колония OR Вернувшиеся"
    titles = {e.title for e in feed.entries}
    assert docs["ru_other"].title in titles  # markup escaped, read back as text
    assert "<script>" not in reply.body
    assert get(base, "/search.atom", q="(bad").status == 400

"""The UI's search over HTTP on 127.0.0.1, on SQLite and the loopback Elasticsearch: date
inputs, the sort menu, the total and facet counts, paging with no fixed last page, the
JSON of a search and of an article, and the export of the current search."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

from pipelines import dedup
from pipelines.article import Article
from pipelines.query import parse_query
from pipelines.store import Store
from pipelines.store.sqlite import SQLiteStore
from tests.fakes.elasticsearch import FakeElasticsearch, fast_store
from tests.support.articles import FETCHED, corpus
from tests.test_ui import fetch, hit_ids, running_ui


@pytest.fixture(params=["sqlite", "elasticsearch"])
def served(request: pytest.FixtureRequest,
           tmp_path: Path) -> Iterator[tuple[str, dict[str, Article]]]:
    docs = corpus()
    docs["en_other"].published_at = FETCHED - timedelta(days=5)
    docs["ru_it"].title = 'Вербовка <script>alert("x")</script> айтишников'

    def serve(store: Store) -> Iterator[tuple[str, dict[str, Article]]]:
        store.write(dedup.dedup(list(docs.values()), store))
        with running_ui(store) as base:
            yield base, docs

    if request.param == "sqlite":
        with SQLiteStore(tmp_path / "ui.db") as store:
            yield from serve(store)
    else:
        with FakeElasticsearch() as fake, fast_store(fake.url, tmp_path / "spool") as store:
            yield from serve(store)
            assert fake.problems == []


def _get(base: str, path: str, **params: str) -> tuple[int, str]:
    reply = fetch(f"{base}{path}?{urlencode(params)}")
    return reply.status, reply.body


def test_search_json_totals_facets_sort_dates(served: tuple[str, dict[str, Article]]) -> None:
    base, docs = served
    text = "convicts OR заключённых OR prison*"
    matching = [a for a in docs.values() if parse_query(text).matches(a)]
    status, body = _get(base, "/search.json", q=text)
    assert status == 200
    page = json.loads(body)
    stories = {a.cluster_id for a in matching}
    assert page["total"] == len(stories) == len(page["hits"]) < len(matching)
    assert page["articles"] == len(matching) == sum(1 + len(h["copies"]) for h in page["hits"])
    assert page["copies"] == len(matching) - len(stories)
    wire = next(h for h in page["hits"] if h["id"] == docs["ru_wire"].id)
    assert [c["id"] for c in wire["copies"]] == [docs["ru_copy"].id]
    assert wire["copies"][0]["page"] == f"/article/{docs['ru_copy'].id}"
    assert wire["cluster"] == f"/cluster/{docs['ru_wire'].id}"
    assert page["facets"]["source"] == dict(Counter(a.source for a in matching))
    assert page["facets"]["lang"] == dict(Counter(a.lang for a in matching))
    assert sum(page["facets"]["relevance"].values()) == page["articles"]  # facets: articles
    assert page["next"] is None
    assert all(h["id"] and "warc_record_id" in h for h in page["hits"])
    oldest = json.loads(_get(base, "/search.json", q=text, sort="oldest")[1])["hits"]
    assert oldest[0]["source"] == "guardian"
    dated = json.loads(_get(base, "/search.json", q=text, until="2026-05-07")[1])
    assert [h["source"] for h in dated["hits"]] == ["guardian"] and dated["total"] == 1
    bad = _get(base, "/search.json", q="title:(")
    assert bad[0] == 400 and "syntax error" in json.loads(bad[1])["error"]
    assert _get(base, "/search.json", q="x", sort="best")[0] == 400


def test_search_page_shows_total_facets_export(served: tuple[str, dict[str, Article]]) -> None:
    base, docs = served
    status, html = _get(base, "/search", since="2026-05-01")  # the dates alone: a search
    assert status == 200
    dated = [a for a in docs.values() if a.published_at]
    assert f'<span class="total">{len({a.cluster_id for a in dated})}</span>' in html
    assert f'<span class="articles">{len(dated)}</span>' in html
    assert '<input type="date" name="since" value="2026-05-01"' in html
    assert '<option value="relevance" selected>' in html
    assert '<section class="facet" data-facet="translation_status">' in html
    assert "&lt;script&gt;" in html and "<script>alert" not in html  # escaped
    status, exported = _get(base, "/export.csv", q="title:Вербовка")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert status == 200 and [r["id"] for r in rows] == [docs["ru_it"].id]
    assert rows[0]["title"] == docs["ru_it"].title
    status, lines = _get(base, "/export.jsonl", q="lang:uk")
    assert [json.loads(line)["id"] for line in lines.splitlines()] == [docs["uk"].id]


def test_paging_has_no_fixed_last_page(served: tuple[str, dict[str, Article]]) -> None:
    base, docs = served
    seen: list[str] = []
    url = "/search.json?" + urlencode({"q": "fetched:<now", "sort": "newest"})
    while url:
        page = json.loads(fetch(base + url).body)
        seen += [h["id"] for h in page["hits"]] + [c["id"] for h in page["hits"]
                                                    for c in h["copies"]]
        url = page["next"]
    assert sorted(seen) == sorted(a.id for a in docs.values())
    status, html = _get(base, "/search", q="fetched:<now", page="30")
    assert status == 200 and "No results" in html and hit_ids(fetch(base + "/search?q=x")) == []


def test_article_json(served: tuple[str, dict[str, Article]]) -> None:
    base, docs = served
    wire = docs["ru_wire"]
    status, body = _get(base, f"/article/{wire.id}.json")
    doc = json.loads(body)
    assert status == 200 and doc["id"] == wire.id and doc["title"] == wire.title
    assert docs["ru_copy"].id in doc["same_story"]
    assert _get(base, f"/article/{'0' * 40}.json")[0] == 404


def test_each_request_has_an_access_log_line(served: tuple[str, dict[str, Article]],
                                             caplog: pytest.LogCaptureFixture) -> None:
    base, _ = served
    with caplog.at_level("INFO", logger="dozor.ui.access"):
        fetch(base + "/search.json?q=prison")
        fetch(base + "/nowhere")
    lines = [r.getMessage() for r in caplog.records if r.name == "dozor.ui.access"]
    assert len(lines) == 2
    assert lines[0].startswith("127.0.0.1 - - [") and '"GET /search.json?q=prison HTTP/1.1" 200' \
        in lines[0]
    assert '"GET /nowhere HTTP/1.1" 404' in lines[1]

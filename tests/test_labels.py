"""Analysts' labels: kept in the store (SQLite and the loopback Elasticsearch),
reversible, exported in both formats, and set from the UI's article page over HTTP."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPRedirectHandler, Request, build_opener

import pytest

from dozor.export import Format, write_export
from pipelines.store import Store
from pipelines.store.sqlite import SQLiteStore
from tests.fakes.elasticsearch import FakeElasticsearch, fast_store
from tests.support.alerts import backend_store, store_articles
from tests.support.articles import corpus
from tests.support.cli import wait_until_serving
from tests.support.smtpserver import free_port
from tests.test_ui import fetch, running_ui


@pytest.fixture(params=["sqlite", "elasticsearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with backend_store(request.param, tmp_path) as s:
        yield s


def test_labels_are_kept_changed_cleared_and_exported(store: Store) -> None:
    docs = corpus()
    store_articles(store, list(docs.values()))
    wire, other, copy = docs["ru_wire"], docs["ru_other"], docs["ru_copy"]
    assert store.labels() == {}
    store.set_label(wire.id, True)
    store.set_label(other.id, False)
    assert store.labels() == {wire.id: True, other.id: False}
    store.set_label(other.id, True)  # changed
    assert store.labels([other.id, copy.id]) == {other.id: True}
    store.set_label(wire.id, None)  # cleared
    store.set_label(copy.id, None)  # clearing what was never set is no error
    assert store.labels() == {other.id: True}
    store.set_label(copy.id, False)

    out = io.StringIO()
    write_export(out, store.iter_articles(), None, Format.jsonl, labels=store.labels())
    rows = {r["id"]: r["label"] for r in map(json.loads, out.getvalue().splitlines())}
    assert rows[other.id] == "relevant" and rows[copy.id] == "not_relevant"
    assert rows[wire.id] is None and len(rows) == len(docs)
    out = io.StringIO()
    write_export(out, store.iter_articles(), None, Format.csv, labels=store.labels())
    cells = {r["id"]: r["label"] for r in csv.DictReader(io.StringIO(out.getvalue()))}
    assert cells[other.id] == "relevant" and cells[copy.id] == "not_relevant"
    assert cells[wire.id] == ""


def _post(base: str, article_id: str, label: str, origin: str | None) -> tuple[int, str]:
    """The article page's form posted as a browser does (no redirect followed)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if origin is not None:
        headers["Origin"] = origin
    request = Request(f"{base}/article/{article_id}/label", method="POST",
                      data=urlencode({"label": label}).encode(), headers=headers)
    try:
        with build_opener(_NoRedirect).open(request, timeout=10) as reply:
            return reply.status, reply.headers.get("Location", "")
    except HTTPError as exc:
        return exc.code, exc.headers.get("Location", "") or exc.read().decode()


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _label_over_http(base: str, store: Store, article_id: str) -> None:
    page = fetch(f"{base}/article/{article_id}").body
    assert f'action="/article/{article_id}/label"' in page and 'value="relevant"' in page
    assert "Analyst's label: <strong class=\"label-value\">none</strong>" in page
    # another site's form, or a request naming no origin, cannot label
    assert _post(base, article_id, "relevant", "http://evil.example")[0] == 403
    assert _post(base, article_id, "relevant", None)[0] == 403
    assert store.labels() == {}
    assert _post(base, article_id, "maybe", base)[0] == 400
    assert _post(base, "0" * 16, "relevant", base)[0] == 404
    assert _post(base, article_id, "not_relevant", base) == (303, f"/article/{article_id}")
    assert store.labels() == {article_id: False}
    assert "<strong class=\"label-value\">not_relevant</strong>" in \
        fetch(f"{base}/article/{article_id}").body
    rows = [json.loads(line) for line in fetch(f"{base}/export.jsonl").body.splitlines()]
    assert {r["id"]: r["label"] for r in rows}[article_id] == "not_relevant"
    assert _post(base, article_id, "clear", base)[0] == 303
    assert store.labels() == {}
    cells = list(csv.DictReader(io.StringIO(fetch(f"{base}/export.csv").body)))
    assert {r["label"] for r in cells} == {""}


def test_dozor_serve_labels_a_story_from_its_page(tmp_path: Path) -> None:
    """A real `dozor serve` on SQLite: the UI reads through a read-only connection and
    records the label through a writable one."""
    db = tmp_path / "dozor.db"
    docs = corpus()
    with SQLiteStore(db) as store:
        store_articles(store, list(docs.values()))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "dozor", "serve", "--db", str(db), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "DOZOR_DATA_DIR": str(tmp_path / "data")})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{base}/", server)
        with SQLiteStore(db, read_only=True) as reader:
            _label_over_http(base, reader, docs["ru_wire"].id)
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_ui_labels_on_elasticsearch(tmp_path: Path) -> None:
    with FakeElasticsearch() as fake, fast_store(fake.url, tmp_path / "spool") as store:
        docs = corpus()
        store_articles(store, list(docs.values()))
        with running_ui(store, labeller=lambda: nullcontext(store)) as base:
            _label_over_http(base, store, docs["ru_wire"].id)
        assert fake.problems == []

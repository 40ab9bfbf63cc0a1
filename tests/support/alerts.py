"""Shared set-up for the alert and mail tests: a real SQLite store holding the sample
news corpus (deduplicated by the real stage, so syndicated copies share a cluster), and
rules files written the way an analyst writes them."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines import dedup
from pipelines.article import Article
from pipelines.store import Store
from pipelines.store.sqlite import SQLiteStore
from tests.fakes.elasticsearch import FakeElasticsearch, fast_store
from tests.support.articles import corpus

# the relevant stories of the corpus; the copies fold into their wire story
RELEVANT = ("ru_wire", "ru_copy", "ru_other", "uk", "en_wire", "en_copy", "en_other")
LEADS = ("ru_wire", "ru_other", "uk", "en_wire", "en_other")  # one per story
COPIES = ("ru_copy", "en_copy")  # syndicated: ru_wire's and en_wire's
OFF_TOPIC = ("ru_composer", "ru_it", "en_prison_reform")


@contextmanager
def backend_store(kind: str, tmp_path: Path) -> Iterator[Store]:
    """A real SQLite file ("sqlite") or a store on the loopback Elasticsearch, which must
    have seen no protocol problem."""
    if kind == "sqlite":
        with SQLiteStore(tmp_path / "dozor.db") as s:
            yield s
        return
    with FakeElasticsearch() as fake:
        with fast_store(fake.url, tmp_path / "spool") as s:
            yield s
        assert fake.problems == []


def store_articles(store: Store, articles: list[Article]) -> list[str]:
    """Run dedup and write, as the pipeline does; the ids stored for the first time."""
    return store.write(dedup.dedup(articles, store)).new


def stored_corpus(store: SQLiteStore) -> tuple[dict[str, Article], list[str]]:
    docs = corpus()
    new_ids = store_articles(store, list(docs.values()))
    return {name: store.get(a.id) for name, a in docs.items()}, new_ids  # type: ignore[misc]


def rules_file(tmp_path: Path, text: str, name: str = "alerts.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


RECRUITMENT_RULES = """\
    rules:
      - name: recruitment
        title: Prisoner recruitment
        query: 'relevant:true'
        to: [desk@example.org, "Night Desk <night@example.org>"]
"""

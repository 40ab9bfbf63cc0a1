"""Against a real Elasticsearch cluster, when ELASTICSEARCH_URL is set (credentials from
ELASTIC_PASSWORD / ELASTIC_API_KEY, CA from ELASTIC_CA_CERTS); skipped otherwise.
`.github/workflows/live-es.yml` runs them with an Elasticsearch service container.

Everything lives under a random index prefix and is deleted afterwards. KIBANA_URL
also set adds the saved-objects import against that Kibana.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import index_config as cfg
from index_config.install import import_kibana, install_elasticsearch
from pipelines import dedup
from pipelines.alert import load_rules
from pipelines.article import Article
from pipelines.matching import PythonMatcher
from pipelines.store.elastic import ALERT_STATE, BulkSettings, Credentials, ElasticStore, connect
from pipelines.store.elastic.percolator import PercolatorMatcher
from pipelines.store.spool import Spool
from tests.support.alerts import rules_file
from tests.support.articles import corpus, search
from tests.support.live_es import LIVE_CREDENTIALS, LIVE_ES_URL, NO_LIVE_ES, live_names
from tests.support.smtpserver import closed_port
from tests.test_es_percolator import RULES

pytestmark = [
    pytest.mark.live_es,
    pytest.mark.skipif(not LIVE_ES_URL, reason=NO_LIVE_ES),
]
KIBANA_URL = os.environ.get("KIBANA_URL")


@pytest.fixture(scope="module")
def names() -> Iterator[cfg.IndexNames]:
    with live_names() as names:
        yield names


@pytest.fixture
def store(names: cfg.IndexNames, tmp_path: Path) -> Iterator[ElasticStore]:
    with ElasticStore(LIVE_ES_URL, prefix=names.prefix, spool=Spool(tmp_path / "spool"),
                      credentials=LIVE_CREDENTIALS, bulk=BulkSettings(initial_backoff=0.5)) as s:
        yield s


def test_setup_then_setup_again(names: cfg.IndexNames) -> None:
    client = connect(LIVE_ES_URL, credentials=LIVE_CREDENTIALS)
    first = install_elasticsearch(client, names)
    assert {c.action for c in first} <= {"created", "unchanged"}
    again = install_elasticsearch(client, names)
    assert {c.action for c in again} == {"unchanged"}, again
    print("Ukrainian analyzer:", first[0].detail)
    # the mapping the cluster made from the templates covers every Article field
    (index,) = client.indices.get_alias(name=names.articles)
    props = client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert set(props) == set(Article.__dataclass_fields__) | {ALERT_STATE}
    assert props["terms"]["analyzer"] == "dozor_terms"


def test_analyzers_keep_letters_apart(names: cfg.IndexNames) -> None:
    client = connect(LIVE_ES_URL, credentials=LIVE_CREDENTIALS)
    install_elasticsearch(client, names)
    (index,) = client.indices.get_alias(name=names.articles)

    def tokens(analyzer: str, text: str) -> list[str]:
        answer = client.indices.analyze(index=index, analyzer=analyzer, text=text)
        return [t["token"] for t in answer["tokens"]]

    assert tokens("dozor_text", "Йод иод Її ії Ёж ежи") == ["йод", "иод", "її", "ії", "ёж",
                                                            "ежи"]
    assert tokens("dozor_terms", "ув'язнений шторм z") == ["ув'язнений", "шторм", "z"]
    for analyzer in ("dozor_ru", "dozor_uk", "dozor_en"):
        assert tokens(analyzer, "колонії колонии")  # defined and working


def test_store_on_a_live_cluster(store: ElasticStore) -> None:
    docs = corpus()
    stored = dedup.dedup(list(docs.values()), store)
    result = store.write(stored)
    assert sorted(result.new) == sorted(a.id for a in stored)
    assert store.count() == len(stored)
    # the alert mark is indexed: a real cluster finds the stories by it
    assert sorted(store.unmatched_ids()) == sorted(result.new)
    store.mark_matched(result.new[:2])
    assert sorted(store.unmatched_ids()) == sorted(result.new[2:])
    # after a rollover, an update lands in the index that holds the story
    old = set(store.client.indices.get_alias(name=store.names.articles))
    store.client.indices.rollover(alias=store.names.articles)
    wire = docs["ru_wire"]
    updated = store.write([replace(stored[0], title_en="Convicts sent to the front",
                                   translation_status="done")])
    assert updated.updated == [stored[0].id]
    hits = store.client.search(index=store.names.articles,
                               query={"ids": {"values": [stored[0].id]}})["hits"]["hits"]
    assert len(hits) == 1 and hits[0]["_index"] in old
    assert store.count() == len(stored)
    # search: the query language's semantics, ranked, with highlighted snippets
    found = search(store, "колонии")
    assert {h.article.source for h in found} >= {"ria", "meduza"}
    assert all("[" in h.snippet for h in found)
    assert {h.article.lang for h in search(store, "колонии", lang="ru")} == {"ru"}
    # frontier, dedup, translation paging, delivery log
    store.mark_seen(["https://example.org/off-topic"])
    assert store.seen([wire.canonical_url, "https://example.org/off-topic",
                       "https://example.org/new"]) == {wire.canonical_url,
                                                       "https://example.org/off-topic"}
    first = store.get(wire.id)
    assert [c.id for c in store.dup_candidates([first.content_hash], [])] == [wire.id]
    assert store.add_deliveries("desk", [wire.id]) == [wire.id]
    assert store.add_deliveries("desk", [wire.id]) == []
    copy = next(a for a in stored if a.cluster_id == first.cluster_id and a.id != wire.id)
    assert store.add_deliveries("desk", [copy.id], {copy.id: wire.id}) == [copy.id]
    assert store.cluster_deliveries("desk", [first.cluster_id]) == {first.cluster_id: wire.id}
    assert [d.article_id for d in store.folded_deliveries("desk", [wire.id])] == [copy.id]
    store.mark_sending("desk", [wire.id], "<m@dozor>")
    store.mark_delivered("desk", [wire.id])
    store.mark_delivery_failed("desk", [wire.id], "late")
    assert store.pending_deliveries("desk") == []


def test_percolator_on_a_live_cluster(store: ElasticStore, tmp_path: Path) -> None:
    articles = dedup.dedup(list(corpus().values()), store)
    rules = load_rules(rules_file(tmp_path, RULES))
    assert PercolatorMatcher(store, batch=4).match(rules, articles) == PythonMatcher().match(
        rules, articles)


def test_spool_replays_into_a_live_cluster(store: ElasticStore, tmp_path: Path) -> None:
    spool_dir = tmp_path / "replay"
    docs = list(corpus().values())
    extra = [replace(docs[0], id="", canonical_url=f"https://example.org/live/{n}",
                     url=f"https://example.org/live/{n}") for n in range(3)]
    extra = [Article.from_dict({**a.to_dict(), "id": ""}) for a in extra]
    down = f"http://127.0.0.1:{closed_port()}"
    with ElasticStore(down, client=connect(down, max_retries=1), prefix=store.names.prefix,
                      spool=Spool(spool_dir)) as offline:
        assert offline.write(extra).spooled == 3
    with ElasticStore(LIVE_ES_URL, prefix=store.names.prefix, spool=Spool(spool_dir),
                      credentials=LIVE_CREDENTIALS) as up:
        assert sorted(up.write([]).new) == sorted(a.id for a in extra)
        assert sorted(up.write([]).new) == []
        assert [a.id for a in up.iter_articles([a.id for a in extra])] == [a.id for a in extra]


@pytest.mark.skipif(not KIBANA_URL, reason="KIBANA_URL is not set: no live Kibana")
def test_kibana_import_on_a_live_kibana(names: cfg.IndexNames) -> None:
    credentials = Credentials.from_environ(os.environ)
    change = import_kibana(KIBANA_URL, names, headers=credentials.http_headers(),
                           ca_certs=credentials.ca_certs)
    assert change.action == "imported"
    again = import_kibana(KIBANA_URL, names, headers=credentials.http_headers(),
                          ca_certs=credentials.ca_certs)
    assert again.detail.endswith(f"{len(cfg.kibana_objects())} overwritten")

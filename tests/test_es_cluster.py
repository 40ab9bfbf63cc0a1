"""What a real cluster does and the loopback fake long hid: template dates answered by
GET (9.2+), least-privilege runtime accounts, Elasticsearch 8.x refusing the 9.x client,
Kibana saved objects of two prefixes side by side. Each test failed before its fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import ApiError
from typer.testing import CliRunner

import index_config as cfg
from dozor.cli import app
from index_config.install import OLD_SERVER, import_kibana, install_elasticsearch
from pipelines.store import StoreError
from pipelines.store.elastic import ElasticStore, connect
from pipelines.store.elastic.connection import Credentials
from pipelines.store.spool import Spool
from tests.fakes.elasticsearch import FakeElasticsearch, Role
from tests.fakes.kibana import FakeKibana
from tests.support.articles import corpus
from tests.test_es_setup import _as_set_up_before_the_alert_mark

NAMES = cfg.IndexNames()
# The runtime role README.md documents: Dozor's indices only, no cluster privilege.
RUNTIME = Role("dozor_runtime", indices=(
    ("dozor-*", frozenset({"read", "write", "view_index_metadata"})),))


@pytest.fixture
def fake() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch() as server:
        yield server
        assert server.problems == []


def _store(fake: FakeElasticsearch, tmp_path: Path, user: str | None = None) -> ElasticStore:
    credentials = Credentials(username=user, password="pw") if user else None
    return ElasticStore(fake.url, client=connect(fake.url, credentials=credentials,
                                                 max_retries=0),
                        spool=Spool(tmp_path / "spool"))


def test_a_component_template_read_back_is_put_with_only_what_a_put_takes(
        fake: FakeElasticsearch, tmp_path: Path) -> None:
    """GET answers created_date_millis/modified_date_millis since 9.2; a PUT carrying
    them is refused, so before the fix every command failed on such a cluster."""
    _as_set_up_before_the_alert_mark(fake)
    got = connect(fake.url).cluster.get_component_template(name=NAMES.article_component)
    assert "created_date_millis" in got["component_templates"][0]["component_template"]
    with _store(fake, tmp_path) as store:
        assert store.count() == 1
    (put,) = fake.requests_to("PUT", f"/_component_template/{NAMES.article_component}$")[-1:]
    assert set(put.json()) <= {"template", "version", "_meta", "deprecated"}
    assert "alert_state" in put.json()["template"]["mappings"]["properties"]


def test_the_fake_refuses_what_elasticsearch_refuses_in_a_template_put(
        fake: FakeElasticsearch) -> None:
    client = connect(fake.url)
    with pytest.raises(ApiError, match="unknown field \\[created_date_millis\\]"):
        client.cluster.put_component_template(
            name="x", body={"template": {}, "created_date_millis": 1})


def test_runtime_commands_need_only_read_and_write_on_dozors_indices(
        fake: FakeElasticsearch, tmp_path: Path) -> None:
    install_elasticsearch(connect(fake.url))  # `dozor setup`, as the superuser
    fake.users["dozor"] = ("pw", RUNTIME)
    restricted = connect(fake.url, credentials=Credentials(username="dozor", password="pw"))
    with pytest.raises(ApiError) as refused:  # the fake checks the role for real
        restricted.cluster.get_component_template(name=NAMES.article_component)
    assert refused.value.status_code == 403
    docs = corpus()
    before = len(fake.requests)
    with _store(fake, tmp_path, user="dozor") as store:
        stored = store.write([docs["uk"], docs["ru_wire"]])
        assert sorted(stored.new) == sorted([docs["uk"].id, docs["ru_wire"].id])
        assert store.count() == 2
        assert sorted(store.unmatched_ids()) == sorted(stored.new)
        store.mark_matched(stored.new)
        store.mark_seen(["https://example.org/seen"])
        assert store.seen(["https://example.org/seen"]) == {"https://example.org/seen"}
        assert store.add_deliveries("desk", [docs["uk"].id]) == [docs["uk"].id]
        store.mark_sending("desk", [docs["uk"].id], "<m@dozor>")
        store.mark_delivered("desk", [docs["uk"].id])
        assert store.pending_deliveries() == []
    assert not [r.path for r in fake.requests[before:]
                if r.path.startswith(("/_component_template", "/_index_template", "/_ilm"))]


def test_a_runtime_account_on_a_cluster_never_set_up_is_told_to_run_setup(
        fake: FakeElasticsearch, tmp_path: Path) -> None:
    fake.users["dozor"] = ("pw", RUNTIME)
    with _store(fake, tmp_path, user="dozor") as store, \
            pytest.raises(StoreError, match="dozor setup") as refused:
        store.count()
    assert "\n" not in str(refused.value) and "403" in str(refused.value)


def test_elasticsearch_8_is_refused_at_first_contact_in_one_line(tmp_path: Path) -> None:
    with FakeElasticsearch(version="8.19.3") as old:
        with _store(old, tmp_path) as store, pytest.raises(StoreError) as refused:
            store.count()
        assert OLD_SERVER in str(refused.value) and "\n" not in str(refused.value)
        result = CliRunner().invoke(app, ["setup", "--es", old.url])
        assert result.exit_code == 2  # as for any cluster that refuses the set-up
        assert OLD_SERVER in " ".join(result.output.split())
        assert "Traceback" not in result.output


def test_two_prefixes_keep_their_own_kibana_objects(tmp_path: Path) -> None:
    with FakeKibana() as kibana:
        first = import_kibana(kibana.url, cfg.IndexNames("news"), retries=0)
        second = import_kibana(kibana.url, cfg.IndexNames("desk"), retries=0)
        assert first.detail.endswith("0 overwritten") and second.detail.endswith(
            "0 overwritten")
        views = {o["id"]: o["attributes"]["title"] for (kind, _), o in kibana.objects.items()
                 if kind == "index-pattern"}
        assert views == {"news-articles": "news-articles", "desk-articles": "desk-articles"}
        assert len(kibana.objects) == 2 * len(cfg.kibana_objects())
        assert kibana.problems == []
    # the default prefix keeps the ids of earlier releases
    assert {o["id"] for o in cfg.kibana_objects()} >= {cfg.DATA_VIEW_ID, "dozor-overview"}


def test_live_teardown_deletes_by_name_as_elasticsearch_requires(
        fake: FakeElasticsearch) -> None:
    from tests.support.live_es import delete_indices

    names = cfg.IndexNames("dozor-test-1234abcd")
    client = connect(fake.url)
    install_elasticsearch(client, names)
    with pytest.raises(ApiError, match="Wildcard expressions"):
        client.indices.delete(index=f"{names.prefix}-*")
    delete_indices(client, names)
    assert not [i for i in fake.indices if i.startswith(names.prefix)]


def test_a_create_race_lost_to_a_writer_not_yet_visible_ends(
        fake: FakeElasticsearch, tmp_path: Path) -> None:
    """Another writer created the article and no refresh has happened: search cannot see
    it, so looking it up again by search would loop on the 409; a real-time get ends it."""
    first = corpus()["uk"]
    with _store(fake, tmp_path) as store:
        store.ensure_indices()
        other = first.to_dict() | {"stored_at": "2026-01-01T00:00:00+00:00",
                                   "alert_state": None}
        connect(fake.url).bulk(operations=[{"create": {"_index": NAMES.articles,
                                                       "_id": first.id}}, other])
        assert store.count() == 0  # not visible to search yet
        first.title_en = "translated later"
        result = store.write([first])
    assert result.updated == [first.id] and result.new == []
    assert fake.doc_index(first.id, NAMES.articles) == [next(iter(fake.aliases[NAMES.articles]))]
    stored = fake.docs(NAMES.articles)[first.id]
    assert stored["stored_at"] == "2026-01-01T00:00:00+00:00"  # the first writer's
    assert stored["title_en"] == "translated later" and stored["alert_state"] is None
    assert len(fake.requests_to("POST", "_bulk$")) < 6


def test_a_vanished_write_alias_never_auto_creates_an_index(
        fake: FakeElasticsearch, tmp_path: Path) -> None:
    docs = corpus()
    original = fake._bulk_item

    def alias_removed_meanwhile(op, meta, source, default_index):
        if op == "create" and meta["_id"] == docs["ru_wire"].id:
            fake.aliases.pop(NAMES.articles, None)  # removed by someone between lookup and write
        return original(op, meta, source, default_index)

    with _store(fake, tmp_path) as store:
        store.write([docs["uk"]])
        fake._bulk_item = alias_removed_meanwhile
        with pytest.raises(StoreError, match="write alias dozor-articles is missing") as refused:
            store.write([docs["ru_wire"]])
    assert "dozor setup" in str(refused.value) and "\n" not in str(refused.value)
    assert NAMES.articles not in fake.indices  # no untemplated index took its name
    assert [a.id for b in Spool(tmp_path / "spool").batches() for a in b.articles] == [
        docs["ru_wire"].id]


def test_a_text_longer_than_the_highlight_limit_still_highlights(
        fake: FakeElasticsearch, tmp_path: Path) -> None:
    from dataclasses import replace

    from tests.support.articles import search

    wire = corpus()["ru_wire"]
    # past index.highlight.max_analyzed_offset (1,000,000 characters by default)
    long = replace(wire, text=wire.text + " продолжение" * 90_000)
    assert len(long.text) > 1_000_000
    with _store(fake, tmp_path) as store:
        store.write([long])
        (hit,) = search(store, "колонии")
    assert "[" in hit.snippet and hit.article.id == wire.id


def test_paging_past_the_result_window_is_a_clear_error(
        fake: FakeElasticsearch, tmp_path: Path) -> None:
    from tests.support.articles import search

    with _store(fake, tmp_path) as store:
        store.write([corpus()["ru_wire"]])
        with pytest.raises(ApiError, match="Result window is too large"):
            connect(fake.url).search(index=NAMES.articles, from_=9_995, size=10)
        assert len(search(store, "колонии", offset=9_990, limit=10)) == 0
        with pytest.raises(StoreError, match="stop at number 10000") as refused:
            search(store, "колонии", offset=9_995, limit=10)
    assert "\n" not in str(refused.value)


def test_the_fake_validates_template_puts_as_elasticsearch_does(
        fake: FakeElasticsearch) -> None:
    client = connect(fake.url)

    def put(analysis: dict, properties: dict | None = None) -> None:
        client.cluster.put_component_template(name="t", template={
            "settings": {"analysis": analysis},
            "mappings": {"properties": properties or {}}})

    with pytest.raises(ApiError, match="failed to find filter under name \\[nofilter\\]"):
        put({"analyzer": {"a": {"type": "custom", "tokenizer": "standard",
                                "filter": ["nofilter"]}}})
    with pytest.raises(ApiError, match="failed to find tokenizer"):
        put({"analyzer": {"a": {"type": "custom", "tokenizer": "notokenizer"}}})
    with pytest.raises(ApiError, match="Unknown stemmer language"):
        put({"filter": {"s": {"type": "stemmer", "language": "klingon"}},
             "analyzer": {"a": {"type": "custom", "tokenizer": "standard", "filter": ["s"]}}})
    with pytest.raises(ApiError, match="No handler for type \\[string\\]"):
        put({}, {"title": {"type": "string"}})
    put({"analyzer": {"a": {"type": "custom", "tokenizer": "standard",
                            "filter": ["lowercase"]}}}, {"title": {"type": "text"}})
    client.indices.put_index_template(name="one", index_patterns=["logs-*"], priority=7)
    with pytest.raises(ApiError, match="same priority \\[7\\]"):
        client.indices.put_index_template(name="two", index_patterns=["logs-app-*"], priority=7)
    client.indices.put_index_template(name="two", index_patterns=["logs-app-*"], priority=8)


def test_the_fake_answers_as_elasticsearch_does(fake: FakeElasticsearch) -> None:
    client = connect(fake.url)
    client.indices.create(index="t", mappings={"properties": {
        "body": {"type": "text"}, "at": {"type": "date"}, "n": {"type": "long"}}})
    client.bulk(refresh=True, operations=[
        {"index": {"_index": "t", "_id": "1"}},
        {"body": "one two three", "at": "2026-01-02T03:04:05+00:00", "n": 1},
        {"index": {"_index": "t", "_id": "2"}}, {"body": "three two one", "n": 2}])

    def found(query: dict) -> list[str]:
        return sorted(h["_id"] for h in client.search(index="t", query=query)["hits"]["hits"])

    # Lucene's sloppy phrase: swapped neighbours need a slop of 2, not 1
    assert found({"match_phrase": {"body": {"query": "two one", "slop": 1}}}) == ["2"]
    assert found({"match_phrase": {"body": {"query": "two one", "slop": 2}}}) == ["1", "2"]
    assert found({"match_phrase": {"body": {"query": "one three", "slop": 1}}}) == ["1"]
    # dates sort as epoch milliseconds; a missing one as the extreme long of the order
    hits = client.search(index="t", sort=[{"at": "asc"}])["hits"]["hits"]
    assert [h["sort"] for h in hits] == [[1767323045000], [2**63 - 1]]
    # _count reports its shards; an update that changes nothing is a noop
    assert client.count(index="t")["_shards"]["total"] == 1
    (item,) = client.bulk(operations=[{"update": {"_index": "t", "_id": "1"}},
                                      {"doc": {"n": 1}}])["items"]
    assert item["update"]["result"] == "noop" and item["update"]["_version"] == 1
    assert client.indices.exists_alias(name="nothing").body is False


def test_the_fake_kibana_checks_attributes_against_the_types_schemas() -> None:
    import json

    import urllib3

    def imported(change: dict) -> dict:
        objects = cfg.kibana_objects()
        search = next(o for o in objects if o["type"] == "search")
        search["attributes"].update(change)
        ndjson = "\n".join(json.dumps(o) for o in objects).encode()
        body, content_type = urllib3.encode_multipart_formdata(
            {"file": ("x.ndjson", ndjson, "application/ndjson")})
        answer = urllib3.request("POST", f"{kibana.url}/api/saved_objects/_import",
                                 body=body, headers={"kbn-xsrf": "1",
                                                     "Content-Type": content_type})
        return json.loads(answer.data)

    with FakeKibana() as kibana:
        assert imported({})["success"] is True
        assert imported({"colums": ["title"]})["success"] is False  # not in the schema
        assert imported({"hideChart": "no"})["success"] is False  # wrong type
        assert any("colums" in p for p in kibana.problems)

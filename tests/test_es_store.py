"""ElasticStore against the loopback Elasticsearch, what only it does: bulk writes
(NDJSON framing, chunking by size, 429 retries), in-place updates after a rollover, the
search request, the delivery log's documents and optimistic concurrency, credentials and
TLS. Every role's contract runs on both backends in tests/contracts/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines import dedup
from pipelines.article import Article
from pipelines.config.backend import store_options
from pipelines.config.config import Config
from pipelines.query import parse_query
from pipelines.store import StoreError
from pipelines.store.elastic import (
    ALERT_STATE,
    Credentials,
    ElasticStore,
    connect,
)
from pipelines.store.elastic.core import UNMATCHED
from pipelines.store.spool import Spool
from tests.fakes.elasticsearch import NDJSON_TYPE, FakeElasticsearch, fast_store
from tests.support.articles import corpus, search
from tests.support.smtpserver import self_signed_tls


@pytest.fixture
def store(fake: FakeElasticsearch, tmp_path: Path) -> Iterator[ElasticStore]:
    with fast_store(fake.url, tmp_path / "spool") as s:
        yield s


@pytest.fixture
def articles() -> dict[str, Article]:
    return corpus()


def _bulk_lines(fake: FakeElasticsearch) -> list[list[dict]]:
    return [[json.loads(line) for line in r.body.decode().splitlines()]
            for r in fake.requests_to("PUT", r"/_bulk$")]


def test_new_documents_created_through_the_alias_updates_in_place(
        store: ElasticStore, fake: FakeElasticsearch, articles: dict[str, Article]) -> None:
    batch = list(articles.values())
    store.write(batch)
    store.write([replace(articles["uk"], title="Оновлений заголовок")])
    # (what the writes report and store: tests/contracts/test_articles_writer.py)
    # new documents are created through the alias, existing ones rewritten where they are
    first_bulk, second_bulk = _bulk_lines(fake)
    actions = [line for line in first_bulk if len(line) == 1 and "create" in line]
    assert len(actions) == len(batch)
    assert {a["create"]["_index"] for a in actions} == {"dozor-articles"}
    (action, source) = second_bulk
    (write_index,) = fake.aliases["dozor-articles"]
    assert action == {"index": {"_index": write_index, "_id": articles["uk"].id}}
    assert source["title"] == "Оновлений заголовок"


def test_bulk_requests_are_ndjson_with_ids_and_wait_for_refresh(
        store: ElasticStore, fake: FakeElasticsearch, articles: dict[str, Article]) -> None:
    store.write(list(articles.values()))
    (request,) = fake.requests_to("PUT", r"/_bulk$")
    assert request.headers["content-type"] == NDJSON_TYPE
    assert request.query.get("refresh") == "wait_for"
    body = request.body.decode()
    assert body.endswith("\n")
    lines = body.splitlines()
    assert len(lines) == 2 * len(articles)
    for action, source in zip(lines[::2], lines[1::2], strict=True):
        meta = json.loads(action)["create"]
        doc = json.loads(source)
        assert meta["_id"] == doc["id"] == Article.from_dict(doc).id
    # every request carried the compatibility headers; the fake checked each one
    assert all(r.headers["accept"].endswith("compatible-with=9") for r in fake.requests)


def test_chunked_by_size(fake: FakeElasticsearch, tmp_path: Path,
                         articles: dict[str, Article]) -> None:
    limit = 6000
    with fast_store(fake.url, tmp_path / "spool", max_chunk_bytes=limit) as store:
        result = store.write(list(articles.values()))
    assert len(result.new) == len(articles)
    requests = fake.requests_to("PUT", r"/_bulk$")
    assert len(requests) > 2
    # a chunk only exceeds the limit when one document alone is bigger
    for r in requests:
        assert len(r.body) <= limit or len(r.body.decode().splitlines()) == 2


def test_documents_rejected_with_429_are_retried(store: ElasticStore, fake: FakeElasticsearch,
                                                 articles: dict[str, Article]) -> None:
    fake.reject_items = 3  # the first three documents: es_rejected_execution_exception
    result = store.write(list(articles.values()))
    assert sorted(result.new) == sorted(a.id for a in articles.values())
    assert result.spooled == 0
    first, retry = _bulk_lines(fake)
    retried_ids = [line["create"]["_id"] for line in retry if "create" in line]
    assert retried_ids == [line["create"]["_id"] for line in first if "create" in line][:3]
    assert store.count() == len(articles)


def test_whole_requests_answered_429_or_503_are_retried(
        store: ElasticStore, fake: FakeElasticsearch, articles: dict[str, Article]) -> None:
    fake.fail("PUT", r"/_bulk$", 429, times=2)
    fake.fail("POST", r"/_search$", 503, times=1)
    result = store.write(list(articles.values()))
    assert len(result.new) == len(articles) and result.spooled == 0
    assert len(fake.requests_to("PUT", r"/_bulk$")) == 3


def test_update_after_rollover_goes_to_the_index_holding_the_article(
        store: ElasticStore, fake: FakeElasticsearch, articles: dict[str, Article]) -> None:
    ru, uk = articles["ru_wire"], articles["uk"]
    store.write([ru])
    (old_index,) = fake.aliases["dozor-articles"]
    rolled = store.client.indices.rollover(alias="dozor-articles")
    new_index = rolled["new_index"]
    # the translation arrives later: the story is rewritten in place, not duplicated
    translated = replace(ru, title_en="Convicts sent to the front", translation_status="done")
    result = store.write([translated, uk])
    assert result.updated == [ru.id] and result.new == [uk.id]
    assert fake.doc_index(ru.id, "dozor-articles") == [old_index]
    assert fake.doc_index(uk.id, "dozor-articles") == [new_index]
    assert store.get(ru.id).title_en == "Convicts sent to the front"
    # mark_translation finds it in the old index too
    again = replace(translated, title_en="Prisoners sent to the front")
    store.mark_translation([again])
    assert fake.doc_index(ru.id, "dozor-articles") == [old_index]
    assert store.get(ru.id).title_en == "Prisoners sent to the front"
    assert store.count() == 2


def test_stats_from_one_aggregation_request(store: ElasticStore, fake: FakeElasticsearch,
                                           articles: dict[str, Article]) -> None:
    store.write(list(articles.values()))
    assert store.stats().total == len(articles)  # the counts: tests/contracts
    (request,) = [r for r in fake.requests_to("POST", r"/dozor-articles/_search$")
                  if b"aggs" in r.body]
    assert request.json()["size"] == 0


def test_search_uses_the_query_semantics_and_ranks_and_highlights(
        store: ElasticStore, fake: FakeElasticsearch, articles: dict[str, Article]) -> None:
    store.write(dedup.dedup(list(articles.values()), store))
    hits = search(store, "колонии")
    assert hits  # what is found and how it ranks: tests/contracts/test_articles_reader.py
    (request,) = fake.requests_to("POST", r"/dozor-articles/_search$")[-1:]
    body = request.json()
    must = body["query"]["bool"]["must"]
    assert must == [parse_query("колонии").to_es()]
    assert body["highlight"]["pre_tags"] == ["["]
    # the language is the request's filter, beside the query's own clauses
    search(store, "колонии", lang="ru")
    body = fake.requests_to("POST", r"/dozor-articles/_search$")[-1].json()
    assert body["query"]["bool"]["filter"] == [{"term": {"lang": "ru"}}]
    assert body["query"]["bool"]["must"] == [parse_query("колонии").to_es()]


def test_search_page_two_starts_where_page_one_ended(
        store: ElasticStore, fake: FakeElasticsearch, articles: dict[str, Article]) -> None:
    store.write(dedup.dedup(list(articles.values()), store))
    search(store, "relevant:true", offset=3)  # the pages themselves: tests/contracts
    (request,) = fake.requests_to("POST", r"/dozor-articles/_search$")[-1:]
    assert request.json()["from"] == 3


def test_search_snippet_from_the_highlight(store: ElasticStore,
                                           articles: dict[str, Article]) -> None:
    """A word the text holds as written is highlighted by the cluster; the fake cluster
    has no stemmer, so an inflected hit falls back to the lemma-aware snippet."""
    store.write([articles["en_wire"]])
    (hit,) = search(store, "convicts")
    assert "[convicts]" in hit.snippet.lower()
    (hit,) = search(store, "convict")
    assert "[" in hit.snippet


def test_new_articles_carry_the_alert_mark_until_matched(
        store: ElasticStore, fake: FakeElasticsearch, articles: dict[str, Article]) -> None:
    ru, uk, en = articles["ru_wire"], articles["uk"], articles["en_wire"]
    store.write([ru, uk])
    # the mark is in the documents the create actions carried
    creates = [lines[i + 1] for lines in _bulk_lines(fake) for i, line in enumerate(lines)
               if "create" in line]
    assert {doc[ALERT_STATE] for doc in creates} == {UNMATCHED}
    assert store.unmatched_ids() == sorted([ru.id, uk.id])  # same stored_at: by id
    (old_index,) = fake.aliases["dozor-articles"]
    store.client.indices.rollover(alias="dozor-articles")
    store.mark_matched([ru.id])
    assert fake.docs("dozor-articles")[ru.id][ALERT_STATE] is None
    assert store.unmatched_ids() == [uk.id]
    # rewritten in place (a re-crawl, a spool replay) or translated: the mark stays as it is
    store.write([replace(ru, title="Новый заголовок"), replace(uk, title="Новий")])
    store.mark_translation([replace(uk, title_en="Recruited", translation_status="done")])
    assert store.write([en]).new == [en.id]
    assert store.unmatched_ids() == [uk.id, en.id]
    assert fake.doc_index(ru.id, "dozor-articles") == [old_index]
    store.mark_matched([uk.id, en.id, "f" * 40])  # an unknown id is ignored
    assert store.unmatched_ids() == []
    assert store.get(uk.id).title_en == "Recruited"
    # the mark is the store's: articles read back do not carry it
    assert ALERT_STATE not in store.get(uk.id).to_dict()


def test_delivery_log_in_its_side_index(store: ElasticStore, fake: FakeElasticsearch) -> None:
    """The life of a delivery on every backend: tests/contracts/test_delivery_log.py; here
    the documents, and no article needs to be stored first (no foreign key)."""
    assert store.add_deliveries("desk", ["a1", "a2", "a2"]) == ["a1", "a2"]
    creates = [line for lines in _bulk_lines(fake) for line in lines if "create" in line]
    assert {c["create"]["_index"] for c in creates} == {"dozor-deliveries"}
    assert {c["create"]["_id"] for c in creates} == {"desk:a1", "desk:a2"}
    store.mark_sending("desk", ["a1"], "<digest-1@dozor>")
    store.mark_delivered("desk", ["a1"])
    sent = fake.docs("dozor-deliveries")["desk:a1"]
    assert sent["status"] == "sent" and sent["sent_at"]


def test_delivery_update_retries_on_a_concurrent_change(
        store: ElasticStore, fake: FakeElasticsearch) -> None:
    store.add_deliveries("desk", ["a1"])
    # another writer changes the document between our read and our write: the
    # conditional update (if_seq_no) is refused, re-read, and applied to the new state
    original = fake._bulk_item

    def interfering(op, meta, source, default_index):
        if op == "update" and not getattr(interfering, "done", False):
            interfering.done = True
            index = fake.indices["dozor-deliveries"]
            doc = index.docs[meta["_id"]]
            index.seq += 1
            doc.source = {**doc.source, "attempts": 5}
            doc.seq_no = index.seq
        return original(op, meta, source, default_index)

    fake._bulk_item = interfering
    store.mark_delivery_failed("desk", ["a1"], "timeout")
    (delivery,) = store.pending_deliveries("desk")
    assert delivery.attempts == 6


def test_refused_document_kept_aside_others_stored(store: ElasticStore, tmp_path: Path,
                                                   articles: dict[str, Article]) -> None:
    bad = replace(articles["uk"], relevant="yes")  # not a boolean: a mapping error
    result = store.write([bad, articles["en_wire"]])
    assert result.new == [articles["en_wire"].id] and result.spooled == 0
    (kept,) = (tmp_path / "spool" / "rejected").glob("*.jsonl")
    lines = [json.loads(line) for line in kept.read_text(encoding="utf-8").splitlines()]
    assert lines[1]["article"]["id"] == bad.id
    assert "boolean" in lines[1]["error"]
    assert store.get(bad.id) is None


def test_errors_name_the_cluster_without_credentials(tmp_path: Path) -> None:
    with FakeElasticsearch(basic_auth=("elastic", "right")) as fake:
        client = connect(fake.url.replace("http://", "http://elastic:wrong@"))
        store = ElasticStore(fake.url.replace("http://", "http://elastic:wrong@"),
                             client=client, spool=Spool(tmp_path / "spool"))
        with pytest.raises(StoreError) as err:
            store.count()
        assert "401" in str(err.value) and "wrong" not in str(err.value)
        assert "http://127.0.0.1:" in str(err.value)


def test_tls_with_the_ca_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              articles: dict[str, Article]) -> None:
    context, ca_file = self_signed_tls(tmp_path)
    with FakeElasticsearch(tls=context, basic_auth=("elastic", "pw")) as fake:
        monkeypatch.setenv("ELASTIC_PASSWORD", "pw")
        # without the CA the certificate is refused: an error, never a silent spool
        untrusted = ElasticStore(fake.url, spool=Spool(tmp_path / "spool"),
                                 client=connect(fake.url, backoff_base=0.01, backoff_cap=0.02))
        with pytest.raises(StoreError, match="(?i)certificate"):
            untrusted.write([articles["uk"]])
        monkeypatch.setenv("ELASTIC_CA_CERTS", str(ca_file))
        secrets = store_options(Config.from_env(), es=fake.url)["es_secrets"]
        with ElasticStore(fake.url, spool=Spool(tmp_path / "spool"),
                          credentials=Credentials.from_environ(secrets)) as store:
            result = store.write([articles["en_wire"]])
            # the batch the untrusted attempt kept is stored first
            assert result.new == [articles["uk"].id, articles["en_wire"].id]
        assert fake.problems == []

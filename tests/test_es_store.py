"""ElasticStore against the loopback Elasticsearch: the Store contract, bulk writes
(NDJSON framing, chunking by size, 429 retries), in-place updates after a rollover,
search, the frontier, dedup look-ups, translation paging and the delivery log."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines import dedup
from pipelines.article import Article
from pipelines.store import Store, StoreError
from pipelines.config.backend import store_options
from pipelines.store.roles import Store as StoreProtocol
from pipelines.store.elastic import (
    ALERT_STATE,
    Credentials,
    ElasticStore,
    connect,
)
from pipelines.store.elastic.core import UNMATCHED
from pipelines.store.spool import Spool
from pipelines.store.sqlite import SQLiteStore
from tests.fake_es import NDJSON_TYPE, FakeElasticsearch, fast_store
from tests.sample_articles import check_search_pages, corpus
from tests.smtpserver import self_signed_tls


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


def test_implements_the_store_protocol_exactly(store: ElasticStore) -> None:
    assert isinstance(store, Store)
    for name, member in inspect.getmembers(StoreProtocol, inspect.isfunction):
        if name.startswith("_"):
            continue
        ours = inspect.signature(getattr(ElasticStore, name))
        theirs = inspect.signature(member)
        assert list(ours.parameters) == list(theirs.parameters), name
        for p in theirs.parameters.values():
            assert ours.parameters[p.name].default == p.default, (name, p.name)


def test_write_new_then_update_keeps_stored_at(store: ElasticStore, fake: FakeElasticsearch,
                                               articles: dict[str, Article]) -> None:
    batch = list(articles.values())
    first = store.write(batch)
    assert sorted(first.new) == sorted(a.id for a in batch) and first.updated == []
    stored_at = {a.id: store.get(a.id).stored_at for a in batch}
    again = store.write([replace(articles["uk"], title="Оновлений заголовок")])
    assert again.new == [] and again.updated == [articles["uk"].id]
    updated = store.get(articles["uk"].id)
    assert updated.title == "Оновлений заголовок"
    assert updated.stored_at == stored_at[articles["uk"].id]
    assert store.count() == len(batch)
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


def test_round_trip_keeps_every_field(store: ElasticStore, articles: dict[str, Article]) -> None:
    original = dedup.dedup([articles["ru_wire"]], store)[0]
    original.minhash = original.minhash or [1, 2, 4294967295]
    store.write([original])
    back = store.get(original.id)
    assert back.to_dict() == original.to_dict()
    assert store.get("0" * 40) is None


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


def test_iter_articles_in_stored_order_and_by_ids(store: ElasticStore,
                                                  articles: dict[str, Article]) -> None:
    first, second = list(articles.values())[:3], list(articles.values())[3:]
    store.write(first)
    store.write(second)
    ordered = [a.id for a in store.iter_articles()]
    assert ordered[:3] == sorted(a.id for a in first)
    assert set(ordered[3:]) == {a.id for a in second}
    wanted = [second[0].id, "missing", first[1].id]
    assert [a.id for a in store.iter_articles(wanted)] == [second[0].id, first[1].id]


def test_iter_articles_pages_through_more_than_one_page(store: ElasticStore,
                                                        articles: dict[str, Article]) -> None:
    template = articles["en_other"]
    many = [replace(template, id="", canonical_url=f"https://example.org/story/{n}",
                    url=f"https://example.org/story/{n}") for n in range(1100)]
    many = [Article.from_dict({**a.to_dict(), "id": ""}) for a in many]
    store.write(many)
    assert len({a.id for a in store.iter_articles()}) == 1100


def test_stats_agree_with_the_sqlite_store(store: ElasticStore, fake: FakeElasticsearch,
                                          tmp_path: Path,
                                          articles: dict[str, Article]) -> None:
    batch = [replace(a, translation_status="pending") if a.lang != "en" else a
             for a in articles.values()]
    store.write(batch)
    with SQLiteStore(tmp_path / "same.db") as sqlite:
        sqlite.write([replace(a) for a in batch])
        expected = sqlite.stats()
    assert expected.total == len(batch) and expected.by_translation
    assert store.stats() == expected
    (request,) = [r for r in fake.requests_to("POST", r"/dozor-articles/_search$")
                  if b"aggs" in r.body]
    assert request.json()["size"] == 0


def test_cluster_members_in_the_same_order_as_sqlite(store: ElasticStore, tmp_path: Path,
                                                    articles: dict[str, Article]) -> None:
    batch = dedup.dedup(list(articles.values()), store)
    undated = replace(articles["ru_copy"], id="", canonical_url="https://copy.example/x",
                      url="https://copy.example/x", published_at=None)
    batch.append(replace(Article.from_dict({**undated.to_dict(), "id": ""}),
                         cluster_id=batch[0].cluster_id))
    store.write(batch)
    with SQLiteStore(tmp_path / "same.db") as sqlite:
        sqlite.write([replace(a) for a in batch])
        clusters = {a.cluster_id for a in batch}
        shared = [c for c in clusters if sum(a.cluster_id == c for a in batch) > 1]
        assert shared
        for cluster in clusters:
            expected = [a.id for a in sqlite.cluster_members(cluster)]
            assert [a.id for a in store.cluster_members(cluster)] == expected
        biggest = max(shared, key=lambda c: sum(a.cluster_id == c for a in batch))
        first = [a.id for a in sqlite.cluster_members(biggest, limit=1)]
        assert [a.id for a in store.cluster_members(biggest, limit=1)] == first
        # the undated copy comes after the dated members
        assert store.cluster_members(batch[0].cluster_id)[-1].published_at is None
    assert store.cluster_members("no-such-cluster") == []


def test_search_uses_the_query_semantics_and_ranks_and_highlights(
        store: ElasticStore, fake: FakeElasticsearch, articles: dict[str, Article]) -> None:
    store.write(dedup.dedup(list(articles.values()), store))
    hits = store.search("колонии")
    assert {h.article.source for h in hits} == {"ria", "ural-news", "meduza"}
    assert all(h.matched_terms == ["колонии"] for h in hits)
    assert all("[" in h.snippet for h in hits)
    (request,) = fake.requests_to("POST", r"/dozor-articles/_search$")[-1:]
    body = request.json()
    must = body["query"]["bool"]["must"]
    from pipelines.query import parse_query

    assert must == [parse_query("колонии").to_es()]
    assert body["highlight"]["pre_tags"] == ["["]
    # the language filter and a field-only query (no words: newest first)
    assert {h.article.lang for h in store.search("колонии", lang="ru")} == {"ru"}
    recent = store.search("relevant:true AND lang:en")
    assert recent and {h.article.lang for h in recent} == {"en"}
    assert all(h.article.relevant for h in recent)
    assert [h.article.published_at for h in recent] == sorted(
        (h.article.published_at for h in recent), reverse=True)


def test_search_page_two_starts_where_page_one_ended(
        store: ElasticStore, fake: FakeElasticsearch, articles: dict[str, Article]) -> None:
    store.write(dedup.dedup(list(articles.values()), store))
    check_search_pages(store)
    store.search("relevant:true", offset=3)
    (request,) = fake.requests_to("POST", r"/dozor-articles/_search$")[-1:]
    assert request.json()["from"] == 3
    with pytest.raises(ValueError, match="offset"):
        store.search("колонии", offset=-1)


def test_search_snippet_from_the_highlight(store: ElasticStore,
                                           articles: dict[str, Article]) -> None:
    """A word the text holds as written is highlighted by the cluster; the fake cluster
    has no stemmer, so an inflected hit falls back to the lemma-aware snippet."""
    store.write([articles["en_wire"]])
    (hit,) = store.search("convicts")
    assert "[convicts]" in hit.snippet.lower()
    (hit,) = store.search("convict")
    assert "[" in hit.snippet


def test_seen_answers_from_articles_and_marked_urls(store: ElasticStore,
                                                    articles: dict[str, Article]) -> None:
    wire = articles["ru_wire"]
    store.write([wire])
    store.mark_seen(["https://example.org/off-topic", "https://example.org/off-topic"])
    store.mark_seen(["https://example.org/off-topic"])  # again: harmless
    asked = [wire.canonical_url, "https://example.org/off-topic", "https://example.org/new"]
    assert store.seen(asked) == {wire.canonical_url, "https://example.org/off-topic"}


def test_dup_candidates_by_hash_and_band(store: ElasticStore,
                                         articles: dict[str, Article]) -> None:
    stored = dedup.dedup([articles["ru_wire"], articles["en_wire"]], store)
    store.write(stored)
    wire = store.get(articles["ru_wire"].id)
    assert wire.minhash and wire.lsh_bands
    by_hash = store.dup_candidates([wire.content_hash], [])
    assert [c.id for c in by_hash] == [wire.id]
    by_band = store.dup_candidates([], wire.lsh_bands[:1])
    assert [(c.id, c.cluster_id, c.minhash) for c in by_band] == [
        (wire.id, wire.cluster_id, wire.minhash)]
    assert store.dup_candidates(["nothing"], ["nothing"]) == []
    assert store.dup_candidates([], []) == []


def test_syndicated_copy_joins_its_cluster_through_the_store(
        store: ElasticStore, articles: dict[str, Article]) -> None:
    """The dedup stage, run across two batches against this store."""
    store.write(dedup.dedup([articles["ru_wire"]], store))
    copy = dedup.dedup([articles["ru_copy"]], store)[0]
    assert copy.cluster_id == store.get(articles["ru_wire"].id).cluster_id


def test_pending_translation_pages_by_id(store: ElasticStore,
                                         articles: dict[str, Article]) -> None:
    batch = [replace(a, translation_status="pending") for a in list(articles.values())[:5]]
    batch.append(replace(list(articles.values())[5], translation_status="done"))
    store.write(batch)
    pending_ids = sorted(a.id for a in batch[:5])
    page = store.pending_translation(limit=2)
    assert [a.id for a in page] == pending_ids[:2]
    rest = store.pending_translation(limit=10, after_id=page[-1].id)
    assert [a.id for a in rest] == pending_ids[2:]
    done = replace(page[0], title_en="English", text_en="Text", translation_status="done",
                   title="must not be written")
    store.mark_translation([done])
    back = store.get(done.id)
    assert back.translation_status == "done" and back.title_en == "English"
    assert back.title == page[0].title  # only the translation fields and terms change
    assert [a.id for a in store.pending_translation(limit=10)] == pending_ids[1:]


def test_bad_translation_status_is_refused(store: ElasticStore,
                                           articles: dict[str, Article]) -> None:
    with pytest.raises(StoreError, match="translation_status 'maybe'"):
        store.write([replace(articles["uk"], translation_status="maybe")])
    with pytest.raises(StoreError, match="translation_status"):
        store.mark_translation([replace(articles["uk"], translation_status="maybe")])


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


def test_delivery_log_at_most_once(store: ElasticStore, fake: FakeElasticsearch) -> None:
    assert store.add_deliveries("desk", ["a1", "a2", "a2"]) == ["a1", "a2"]
    assert store.add_deliveries("desk", ["a2", "a3"]) == ["a3"]
    assert store.add_deliveries("other", ["a1"]) == ["a1"]
    creates = [line for lines in _bulk_lines(fake) for line in lines if "create" in line]
    assert {c["create"]["_index"] for c in creates} == {"dozor-deliveries"}
    pending = store.pending_deliveries("desk")
    assert [(d.article_id, d.status, d.attempts) for d in pending] == [
        ("a1", "pending", 0), ("a2", "pending", 0), ("a3", "pending", 0)]
    store.mark_sending("desk", ["a1", "a2"], "<digest-1@dozor>")
    store.mark_delivered("desk", ["a1"])
    store.mark_delivery_failed("desk", ["a2", "a3"], "451 try later")
    store.mark_delivery_failed("desk", ["a3"], "451 again")
    store.mark_delivery_failed("desk", ["a1"], "too late: already sent")
    left = {d.article_id: d for d in store.pending_deliveries("desk")}
    assert set(left) == {"a2", "a3"}
    assert (left["a2"].status, left["a2"].attempts, left["a2"].last_error) == (
        "pending", 1, "451 try later")
    assert left["a2"].message_id == "<digest-1@dozor>"
    assert left["a3"].attempts == 2
    assert {(d.rule, d.article_id) for d in store.pending_deliveries()} == {
        ("desk", "a2"), ("desk", "a3"), ("other", "a1")}
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
        secrets = store_options(es=fake.url)["es_secrets"]
        with ElasticStore(fake.url, spool=Spool(tmp_path / "spool"),
                          credentials=Credentials.from_environ(secrets)) as store:
            result = store.write([articles["en_wire"]])
            # the batch the untrusted attempt kept is stored first
            assert result.new == [articles["uk"].id, articles["en_wire"].id]
        assert fake.problems == []

"""Nothing lost, nothing doubled: ElasticStore with the cluster down (connection
refused on a real closed port), failing half-way, or refusing credentials; the disk
spool is replayed by the next write."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines.article import Article
from pipelines.store import StoreError
from pipelines.store.elastic import ElasticStore, connect
from pipelines.store.spool import Spool
from tests.fakes.elasticsearch import FakeElasticsearch, fast_store
from tests.support.articles import corpus, search
from tests.support.smtpserver import closed_port


def make_store(url: str, spool_dir: Path, **bulk: int) -> ElasticStore:
    # one client retry: a down cluster is given up on at once, then spooled
    return fast_store(url, spool_dir, client_retries=1, **bulk)


@pytest.fixture
def articles() -> list[Article]:
    return list(corpus().values())


def _down_url() -> str:
    return f"http://127.0.0.1:{closed_port()}"


def test_unreachable_cluster_spools_then_next_write_replays(
        fake: FakeElasticsearch, tmp_path: Path, articles: list[Article],
        caplog: pytest.LogCaptureFixture) -> None:
    spool_dir = tmp_path / "spool"
    first, second = articles[:6], articles[6:]
    with caplog.at_level(logging.WARNING), make_store(_down_url(), spool_dir) as down:
        result = down.write(first)
        assert (result.new, result.updated, result.spooled) == ([], [], len(first))
        # what is spooled counts as fetched: the crawler does not fetch it again
        assert down.seen([first[0].canonical_url, "https://example.org/x"]) == {
            first[0].canonical_url}
        # near-duplicate look-ups degrade instead of failing the batch
        assert down.dup_candidates([first[0].content_hash], []) == []
        down.mark_seen(["https://example.org/off-topic"])
    assert "kept in" in caplog.text and "ConnectionError" in caplog.text
    assert Spool(spool_dir).count() == len(first)
    assert len(list(spool_dir.glob("*.jsonl"))) == 2

    with make_store(fake.url, spool_dir) as up:
        result = up.write(second)
        # the spooled batch is stored first and reported new in this run, for the alerts
        assert result.new == [a.id for a in first] + [a.id for a in second]
        assert result.spooled == 0
        assert up.count() == len(articles)
        assert up.seen(["https://example.org/off-topic"]) == {"https://example.org/off-topic"}
    assert list(spool_dir.glob("*.jsonl")) == []
    stored = fake.docs("dozor-articles")
    assert {i: Article.from_dict(d).title for i, d in stored.items()} == {
        a.id: a.title for a in articles}


def test_any_command_opening_the_store_replays_and_the_next_write_reports_it(
        fake: FakeElasticsearch, tmp_path: Path, articles: list[Article]) -> None:
    """The run after an outage may fetch nothing new (the spooled URLs count as seen):
    the first contact stores the spool anyway, and the stories it stored for the first
    time are reported new by the next write, in this process or a later one."""
    spool_dir = tmp_path / "spool"
    with make_store(_down_url(), spool_dir) as down:
        down.write(articles[:3])
    with make_store(fake.url, spool_dir) as searching:
        assert search(searching, "колонии") is not None  # e.g. `dozor search`
        assert searching.count() == 3
    assert list(spool_dir.glob("*.jsonl")) == []
    with make_store(fake.url, spool_dir) as later:
        assert later.seen([articles[0].canonical_url]) == {articles[0].canonical_url}
        first = later.write([articles[3]])
        assert first.new == [a.id for a in articles[:4]]
        assert later.write([articles[4]]).new == [articles[4].id]  # reported once


def test_spooled_articles_await_the_alert_rules_once_stored(
        fake: FakeElasticsearch, tmp_path: Path, articles: list[Article]) -> None:
    """Whatever command replays the spool, the stories it stores are marked in the same
    documents, so the next alert step matches them even if the replay's report is lost."""
    spool_dir = tmp_path / "spool"
    with make_store(_down_url(), spool_dir) as down:
        down.write(articles[:3])
        assert down.unmatched_ids() == []  # the cluster is down: nothing to ask
    with make_store(fake.url, spool_dir) as searching:
        searching.count()  # the first contact replays the spool
        assert sorted(searching.unmatched_ids()) == sorted(a.id for a in articles[:3])
        searching.mark_matched([articles[0].id])
    # replayed again (a crash before its file was deleted): the cleared mark stays cleared
    with make_store(_down_url(), spool_dir) as down:
        down.write([articles[0]])
    with make_store(fake.url, spool_dir) as later:
        later.count()
        assert sorted(later.unmatched_ids()) == sorted(a.id for a in articles[1:3])


def test_spooled_versions_are_replayed_before_newer_ones(
        fake: FakeElasticsearch, tmp_path: Path, articles: list[Article]) -> None:
    spool_dir = tmp_path / "spool"
    story = articles[0]
    with make_store(_down_url(), spool_dir) as down:
        down.write([replace(story, title="first version")])
    with make_store(fake.url, spool_dir) as up:
        result = up.write([replace(story, title="second version")])
        assert result.new == [story.id] and result.updated == [story.id]
        assert up.get(story.id).title == "second version"


def test_replaying_twice_duplicates_nothing(fake: FakeElasticsearch, tmp_path: Path,
                                            articles: list[Article]) -> None:
    """A crash after the cluster took a spooled batch but before its file was deleted:
    the file is replayed again and every document is written over itself."""
    spool_dir = tmp_path / "spool"
    with make_store(_down_url(), spool_dir) as down:
        down.write(articles)
    (spooled,) = spool_dir.glob("*.jsonl")
    saved = tmp_path / "saved.jsonl"
    shutil.copy(spooled, saved)
    with make_store(fake.url, spool_dir) as up:
        assert len(up.write([]).new) == len(articles)
        shutil.copy(saved, spooled)  # as if the deletion never happened
        again = up.write([])
        assert again.new == [] and sorted(again.updated) == sorted(a.id for a in articles)
        assert up.count() == len(articles)
    for article in articles:
        assert len(fake.doc_index(article.id, "dozor-articles")) == 1


def test_cluster_failing_half_way_spools_only_what_it_did_not_take(
        fake: FakeElasticsearch, tmp_path: Path, articles: list[Article]) -> None:
    spool_dir = tmp_path / "spool"
    with make_store(fake.url, spool_dir, chunk_size=4) as store:
        store.ensure_indices()
        # the first chunk goes through, every later request is answered 503
        fake.fail("PUT", r"/_bulk$", 503, times=100, after=1)
        result = store.write(articles)
        taken = [a.id for a in articles[:4]]
        assert result.new == taken
        assert result.spooled == len(articles) - 4
        assert Spool(spool_dir).count() == len(articles) - 4
    fake.faults = []
    with make_store(fake.url, spool_dir) as next_run:
        result = next_run.write([])
        assert sorted(result.new) == sorted(a.id for a in articles[4:])
        assert next_run.count() == len(articles)


def test_still_overloaded_after_every_retry_is_spooled(
        fake: FakeElasticsearch, tmp_path: Path, articles: list[Article]) -> None:
    spool_dir = tmp_path / "spool"
    with make_store(fake.url, spool_dir, max_retries=2) as store:
        store.ensure_indices()
        fake.reject_ids = {a.id for a in articles[:3]}  # rejected on every attempt
        result = store.write(articles[:5])
        assert result.new == [a.id for a in articles[3:5]] and result.spooled == 3
        assert len(fake.requests_to("PUT", r"/_bulk$")) == 3  # two retries
    with make_store(fake.url, spool_dir, max_retries=2) as next_run:
        # still overloaded: the spooled batch stays, and what came next waits behind it
        result = next_run.write(articles[5:6])
        assert result.new == [] and result.spooled == 1
    fake.reject_ids = set()
    with make_store(fake.url, spool_dir) as recovered:
        result = recovered.write([])
        assert result.new == [a.id for a in articles[:3]] + [articles[5].id]
        assert recovered.count() == 6


def test_after_one_failure_the_run_stops_asking_the_cluster(
        fake: FakeElasticsearch, tmp_path: Path, articles: list[Article],
        caplog: pytest.LogCaptureFixture) -> None:
    """A crawl during an outage: one failed contact, then every batch goes straight to
    the spool (no retries at each step) and the alert step waits for the next run."""
    spool_dir = tmp_path / "spool"
    with make_store(fake.url, spool_dir) as store:
        store.ensure_indices()
        store.add_deliveries("desk", ["old-story"])
        fake.fail("POST", r"_search$", 503, times=1000)
        assert store.seen([articles[0].canonical_url]) == set()
        asked = len(fake.requests)
        assert store.dup_candidates([articles[0].content_hash], []) == []
        assert store.write(articles[:2]).spooled == 2
        store.mark_seen(["https://example.org/off-topic"])
        assert store.seen([articles[0].canonical_url]) == {articles[0].canonical_url}
        with caplog.at_level(logging.WARNING):
            assert store.pending_deliveries() == []
        assert "pending alerts wait for the next run" in caplog.text
        assert len(fake.requests) == asked
    fake.faults = []
    with make_store(fake.url, spool_dir) as next_run:
        assert [d.article_id for d in next_run.pending_deliveries()] == ["old-story"]
        assert sorted(next_run.write([]).new) == sorted(a.id for a in articles[:2])
        assert next_run.seen(["https://example.org/off-topic"]) == {
            "https://example.org/off-topic"}


def test_refused_credentials_keep_the_batch_and_say_so(tmp_path: Path,
                                                       articles: list[Article]) -> None:
    spool_dir = tmp_path / "spool"
    with FakeElasticsearch(api_key="right") as fake:
        store = ElasticStore(fake.url, client=connect(fake.url), spool=Spool(spool_dir))
        with pytest.raises(StoreError, match=r"401.*kept in .*spool"):
            store.write(articles[:2])
        assert Spool(spool_dir).count() == 2


def test_unreadable_spool_file_is_moved_aside_not_deleted(
        fake: FakeElasticsearch, tmp_path: Path, articles: list[Article]) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    broken = spool_dir / "20260101T000000000000Z-x.jsonl"
    broken.write_text('{"format": 1}\n{"article": {"url": ', encoding="utf-8")
    with make_store(fake.url, spool_dir) as store:
        assert store.write(articles[:1]).new == [articles[0].id]
    assert not broken.exists()
    assert (spool_dir / "unreadable" / broken.name).read_text(encoding="utf-8").startswith(
        '{"format": 1}')


def test_spool_files_are_whole_json_lines(tmp_path: Path, articles: list[Article]) -> None:
    spool = Spool(tmp_path)
    assert spool.put([]) is None
    path = spool.put(articles[:2], seen=["https://example.org/a"], reason="test")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert records[0] == {"format": 1, "reason": "test"}
    assert [Article.from_dict(r["article"]).to_dict() for r in records[1:3]] == [
        a.to_dict() for a in articles[:2]]
    assert records[3] == {"seen": "https://example.org/a"}
    assert list(tmp_path.glob("*.tmp")) == []
    (batch,) = spool.batches()
    assert batch.seen == ["https://example.org/a"] and len(batch.articles) == 2

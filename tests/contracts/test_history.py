"""History on every backend: the revisit schedule (due, never revisited, done, per
source), an article's change written with its versions and events at once, and each
event queued to the alert rules once, a sent delivery made pending again."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from pipelines.article import Article
from pipelines.revisit import due_at
from pipelines.store.history import Event, Version
from tests.contracts.conftest import Backend
from tests.support.articles import FETCHED, article, search

DELAYS = [3600, 6 * 3600]


def _docs() -> list[Article]:
    docs = [article(f"https://h.example/{n}", f"Колония {n}", f"Заключённых колонии {n} "
                    "отправили на фронт по контракту.", lang="ru",
                    source="wire" if n < 3 else "other", warc_file="a.warc.gz",
                    warc_record_id=f"<urn:uuid:{n}>")
            for n in range(4)]
    for n, doc in enumerate(docs):
        doc.fetched_at = FETCHED + timedelta(minutes=n)
    return docs


def test_the_revisit_schedule(backend: Backend) -> None:
    store = backend.store
    docs = _docs()
    store.write(docs)
    ids = [d.id for d in docs]
    early = FETCHED + timedelta(minutes=30)
    assert store.revisit_targets(early, DELAYS) == []  # nothing an hour old yet
    later = FETCHED + timedelta(hours=2)
    assert [t.article_id for t in store.revisit_targets(later, DELAYS)] == ids
    first = store.revisit_targets(later, DELAYS, source="wire")
    assert [t.article_id for t in first] == ids[:3]
    assert first[0].url == docs[0].url and first[0].step == 0 and first[0].etag == ""
    assert first[0].first_seen == docs[0].fetched_at

    # 0 revisited (next due at 6 h), 1 revisited for the last time (schedule done)
    store.record_revisit(ids[0], 1, due_at(docs[0].fetched_at, 1, DELAYS), '"e1"',
                         "Tue, 01 Dec 2026 10:00:00 GMT", later)
    store.record_revisit(ids[1], 2, None, "", "", later)
    store.record_revisit("0" * 40, 1, later, "", "", later)  # no such article: ignored
    assert [t.article_id for t in store.revisit_targets(later, DELAYS)] == ids[2:]
    at_six = FETCHED + timedelta(hours=6, minutes=5)
    due = {t.article_id: t for t in store.revisit_targets(at_six, DELAYS)}
    assert list(due) == [ids[0], ids[2], ids[3]]
    assert due[ids[0]].step == 1 and due[ids[0]].etag == '"e1"'
    assert due[ids[0]].last_modified == "Tue, 01 Dec 2026 10:00:00 GMT"
    # --all: every stored article, its schedule done or not, with its state
    everything = {t.article_id: t for t in store.revisit_targets(early, DELAYS,
                                                                   everything=True)}
    assert list(everything) == ids and everything[ids[1]].step == 2
    assert [t.article_id for t in store.revisit_targets(early, DELAYS, source="other",
                                                        everything=True)] == ids[3:]
    assert store.revisit_targets(later, [], everything=False) == []


def test_changes_versions_events_and_their_alerts(backend: Backend) -> None:
    store = backend.store
    docs = _docs()
    store.write(docs)
    store.mark_matched([d.id for d in docs])
    stored = store.get(docs[0].id)
    assert store.versions(stored.id) == [] and store.events(stored.id) == []
    at = FETCHED + timedelta(hours=1)
    fresh = replace(stored, title="Колония 0: новые данные", fetched_at=at,
                    warc_record_id="<urn:uuid:new>", events=["title_changed"],
                    change={"kinds": ["title_changed"], "old_title": stored.title})
    versions = [Version.of(stored, 1), Version.of(fresh, 2, ["title"])]
    store.record_change(fresh, versions, [Event(stored.id, "title_changed", at, 2, {
        "old_title": stored.title, "new_title": fresh.title})])

    back = store.get(stored.id)
    assert back.title == "Колония 0: новые данные" and back.events == ["title_changed"]
    assert back.stored_at == stored.stored_at and back.change["old_title"] == stored.title
    got = store.versions(stored.id)
    assert [(v.version, v.title, v.changed, v.warc_record_id) for v in got] == [
        (1, "Колония 0", [], "<urn:uuid:0>"),
        (2, "Колония 0: новые данные", ["title"], "<urn:uuid:new>")]
    assert got[0].text == stored.text and got[1].fetched_at == at
    assert got[0].published_at == stored.published_at
    [event] = store.events(stored.id)
    assert (event.kind, event.version, event.at) == ("title_changed", 2, at)
    assert event.detail["new_title"] == fresh.title
    assert [h.article.id for h in search(store, "event:title_changed")] == [stored.id]
    # a change is no new story: the article does not await the rules again
    assert store.unmatched_ids() == []

    # removed: a second event, numbered after the first
    gone = replace(back, removed=True, events=["removed", "title_changed"])
    store.record_change(gone, [], [Event(stored.id, "removed", at + timedelta(hours=5),
                                         detail={"reason": "HTTP 404"})])
    assert [e.kind for e in store.events(stored.id)] == ["title_changed", "removed"]
    assert [v.version for v in store.versions(stored.id)] == [1, 2]
    assert store.get(stored.id).removed

    # each event awaits the rules once; a sent delivery is pending again for the next
    pending = store.unmatched_events()
    assert [(e.article_id, e.kind) for e in pending] == [(stored.id, "title_changed"),
                                                         (stored.id, "removed")]
    assert store.queue_event(pending[0].n, stored.id, ["desk", "other"]) == ["desk", "other"]
    assert [e.kind for e in store.unmatched_events()] == ["removed"]
    store.mark_sending("desk", [stored.id], "<d1@dozor>")
    store.mark_delivered("desk", [stored.id])
    # "other" is still pending: it carries this event too, nothing queued twice
    assert store.queue_event(pending[1].n, stored.id, ["desk", "other"]) == ["desk"]
    assert store.unmatched_events() == []
    assert {d.article_id for d in store.pending_deliveries("desk")} == {stored.id}
    assert {d.article_id for d in store.pending_deliveries("other")} == {stored.id}
    assert store.queue_event(pending[1].n, stored.id, []) == []

    # all of it is kept: a second store over the same data reads it back
    with backend.reopen() as again:
        assert [v.version for v in again.versions(stored.id)] == [1, 2]
        assert [e.kind for e in again.events(stored.id)] == ["title_changed", "removed"]
        assert again.get(stored.id).removed

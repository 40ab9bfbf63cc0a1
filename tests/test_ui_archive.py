"""The archived copies of an article, over HTTP from the UI: each version's WARC record
linked from the timeline, its archived answer served sandboxed (no script of it runs in
the UI's origin), the single record as a `.warc` download; records the store does not
name for the article, and WARC files outside the archive directory, refused."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from html import unescape
from io import BytesIO
from urllib.parse import quote
from urllib.request import urlopen

import pytest
from warcio.archiveiterator import ArchiveIterator

from pipelines.archive import Exchange, WarcArchive
from pipelines.store.history import Event, Version
from pipelines.store.sqlite import SQLiteStore
from tests.support.articles import FETCHED, article
from tests.test_ui import fetch, running_ui

SCRIPTED = ('<html><head><title>Колония</title><script>document.title="owned"</script></head>'
            "<body><p>{}</p></body></html>")


@dataclass
class Archived:
    base: str
    article_id: str
    records: list[str]  # version 1, version 2, the removal's answer
    stray: str  # a record of the archive the article does not name
    outside: str  # a record named by an article whose WARC file is outside the archive


def _exchange(url: str, status: int, body: str) -> Exchange:
    raw = gzip.compress(body.encode("utf-8"))  # as it came off the wire, content-encoded
    return Exchange(url, status, "OK" if status == 200 else "Not Found",
                    [("Content-Type", "text/html; charset=utf-8"), ("Content-Encoding", "gzip")],
                    raw, {"kind": "article", "source": "wire", "url": url})


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archived]:
    work = tmp_path_factory.mktemp("ui-archive")
    url = "https://wire.example/news/1.html"
    archive = WarcArchive(work / "warc")
    first = archive.write(_exchange(url, 200, SCRIPTED.format("Первая версия.")))
    second = archive.write(_exchange(url, 200, SCRIPTED.format("Вторая версия.")))
    gone = archive.write(_exchange(url, 404, "<html><body>Not found</body></html>"))
    stray = archive.write(_exchange("https://wire.example/other.html", 200, "другое"))
    archive.close()
    elsewhere = WarcArchive(work / "elsewhere")
    outside = elsewhere.write(_exchange("https://wire.example/2.html", 200, "вне архива"))
    elsewhere.close()

    with SQLiteStore(work / "d.db") as store:
        doc = article(url, "Колония", "Первая версия.", lang="ru", source="wire",
                      warc_file=first.file, warc_record_id=first.record_id)
        other = article("https://wire.example/2.html", "Другое", "Вне архива.", lang="ru",
                        source="wire", warc_file=outside.file, warc_record_id=outside.record_id)
        store.write([doc, other])
        stored = store.get(doc.id)
        later = replace(stored, text="Вторая версия.", warc_file=second.file,
                        warc_record_id=second.record_id, fetched_at=FETCHED + timedelta(hours=1),
                        removed=True, events=["edited", "removed"])
        store.record_change(later, [Version.of(stored, 1), Version.of(later, 2, ["text"])], [
            Event(doc.id, "edited", later.fetched_at, 2, {"share": 0.5}),
            Event(doc.id, "removed", later.fetched_at + timedelta(hours=1), None, {
                "reason": "HTTP 404", "warc_file": gone.file, "warc_record_id": gone.record_id})])
        with running_ui(store, warc_dir=work / "warc") as base:
            yield Archived(base, doc.id, [first.record_id, second.record_id, gone.record_id],
                           stray.record_id, other.id + " " + outside.record_id)


def _link(a: Archived, record: str, warc: bool = False) -> str:
    return (f"/article/{a.article_id}/archive{'.warc' if warc else ''}"
            f"?record={quote(record, safe='')}")


def test_the_timeline_links_every_archived_copy(archived: Archived) -> None:
    reply = fetch(f"{archived.base}/article/{archived.article_id}")
    page = unescape(reply.body)
    assert reply.status == 200
    for record in archived.records:
        assert _link(archived, record) in page and _link(archived, record, warc=True) in page


def test_an_archived_answer_is_served_as_received_and_sandboxed(archived: Archived) -> None:
    reply = fetch(archived.base + _link(archived, archived.records[1]))
    assert reply.status == 200
    assert reply.body == SCRIPTED.format("Вторая версия.")  # decoded, not gzip
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    # one policy (the UI's own is not added beside it): a sandbox nothing loads into
    policy = reply.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox;") and "default-src 'none'" in policy
    assert "allow-scripts" not in policy and "style-src 'self'" not in policy
    assert reply.headers["Content-Disposition"].startswith("inline; filename=")
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    # the removal's answer too: the 404 page that showed it
    reply = fetch(archived.base + _link(archived, archived.records[2]))
    assert reply.status == 200 and "Not found" in reply.body
    assert "Первая версия." in fetch(archived.base + _link(archived, archived.records[0])).body


def test_the_record_downloads_as_a_warc_file(archived: Archived) -> None:
    # the record as the archive holds it: its payload still content-encoded (binary)
    with urlopen(archived.base + _link(archived, archived.records[1], True)) as reply:
        assert reply.status == 200 and reply.headers["Content-Type"] == "application/warc"
        assert reply.headers["Content-Disposition"].startswith("attachment; filename=")
        assert reply.headers["Content-Disposition"].endswith('.warc"')
        body = BytesIO(reply.read())
    records = [(r.rec_type, r.rec_headers.get_header("WARC-Record-ID"),
                r.content_stream().read().decode("utf-8")) for r in ArchiveIterator(body)]
    assert records == [("response", archived.records[1], SCRIPTED.format("Вторая версия."))]


def test_records_not_named_by_the_article_or_outside_the_archive_are_refused(
        archived: Archived) -> None:
    stray = fetch(archived.base + _link(archived, archived.stray))
    assert stray.status == 404 and "no archived record" in stray.text
    other_id, record = archived.outside.split(" ")
    outside = fetch(f"{archived.base}/article/{other_id}/archive"
                    f"?record={quote(record, safe='')}")
    assert outside.status == 404 and "outside the WARC archive directory" in outside.text
    assert fetch(f"{archived.base}/article/{'0' * 40}/archive?record=x").status == 404
    assert fetch(f"{archived.base}/article/{archived.article_id}/archive").status == 404

"""The analyst UI (`dozor serve`): the real server on 127.0.0.1 over a real SQLite file."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

import pytest

from dozor.ui.app import PER_PAGE, Labeller
from dozor.ui.server import is_loopback, make_ui_server, url_of
from pipelines.article import Article
from pipelines.dedup import dedup
from pipelines.store import Store
from pipelines.store.elastic import ElasticStore, connect
from pipelines.store.spool import Spool
from pipelines.store.sqlite import SQLiteStore
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.support.articles import FETCHED, RU_WIRE_TITLE, UK_TITLE, article, corpus

HOSTILE_TITLE = '<script>alert("title")</script> Колонии & «Шторм-Z»'
HOSTILE_TEXT = (
    "Заключённых колонии [1] вербуют <img src=x onerror=alert(1)> в «Шторм-Z».\n"
    "Второй абзац </p><b>не разметка</b>."
)


def hostile() -> Article:
    """An article whose every shown field is markup, and whose final URL is a script."""
    return article(
        "https://evil.example/news/1", HOSTILE_TITLE, HOSTILE_TEXT, lang="ru",
        source="evil", relevant=True, score=0.5, matched_terms=["<колония>"],
        final_url="javascript:alert(document.cookie)", warc_file="crawl-0001.warc.gz",
        warc_record_id="<urn:uuid:0b6a7e8e-7f0e-4a4f-9d0e-2c1f3e4d5a6b>",
    )


def fillers(n: int) -> list[Article]:
    """Short English reports, one hour apart, all mentioning a colony: enough for pages."""
    return [
        article(
            f"https://wire.example/colony-report-{i}", f"Colony report number {i}",
            f"Inspectors visited penal colony number {i} and found it half empty.",
            lang="en", source="wire", published=FETCHED - timedelta(days=10, hours=i),
        )
        for i in range(n)
    ]


def build_db(path: Path) -> dict[str, Article]:
    """A database filled through the real stages (terms, dedup, store): the sample
    corpus (with two syndicated copies), a hostile article and paging material."""
    docs = corpus()
    docs["hostile"] = hostile()
    docs.update({f"filler{i}": a for i, a in enumerate(fillers(2 * PER_PAGE + 3))})
    with SQLiteStore(path) as store:
        store.write(dedup(list(docs.values()), store))
    return docs


@contextmanager
def running_ui(store: Store, labeller: Labeller | None = None,
               warc_dir: Path | None = None, alerts: Path | None = None) -> Iterator[str]:
    """The UI over `store` on a free port of 127.0.0.1; yields its base URL."""
    server = make_ui_server(store, "127.0.0.1", 0, ["ru", "uk", "en"], alerts,
                            labeller=labeller, warc_dir=warc_dir)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url_of(server).rstrip("/")
    finally:
        server.shutdown()
        thread.join(5)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def text(self) -> str:
        """The visible text, tags removed and entities decoded."""
        return " ".join(unescape(re.sub(r"<[^>]+>", " ", self.body)).split())


def fetch(url: str, method: str = "GET") -> Reply:
    try:
        with urlopen(Request(url, method=method), timeout=10) as response:
            return Reply(response.status, dict(response.headers),
                         response.read().decode("utf-8"))
    except HTTPError as exc:
        return Reply(exc.code, dict(exc.headers), exc.read().decode("utf-8"))


@pytest.fixture(scope="module")
def ui_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Article]]:
    path = tmp_path_factory.mktemp("ui") / "news.db"
    return path, build_db(path)


@pytest.fixture(scope="module")
def ui(ui_db: tuple[Path, dict[str, Article]]) -> Iterator[str]:
    with SQLiteStore(ui_db[0]) as store, running_ui(store) as base:
        yield base


@pytest.fixture(scope="module")
def docs(ui_db: tuple[Path, dict[str, Article]]) -> dict[str, Article]:
    return ui_db[1]


def search(base: str, **params: str) -> Reply:
    return fetch(f"{base}/search?{urlencode(params)}")


def hit_ids(reply: Reply) -> list[str]:
    return re.findall(r'<h2><a href="/article/([0-9a-f]{40})"', reply.body)


# ------------------------------------------------------------------- front page


def test_front_page_counts_backlog_and_latest_relevant(ui: str,
                                                       docs: dict[str, Article]) -> None:
    reply = fetch(ui + "/")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    text = reply.text
    total = len(docs)
    relevant = sum(a.relevant for a in docs.values())
    assert f"{total} articles" in text
    assert f"{relevant} relevant" in text
    assert "1 awaiting translation" in text  # the Ukrainian story
    by_lang = {lang: sum(a.lang == lang for a in docs.values()) for lang in ("ru", "uk", "en")}
    for lang, name in (("ru", "Russian"), ("uk", "Ukrainian"), ("en", "English")):
        assert re.search(rf'href="/search\?lang={lang}">{name}</a></td><td class="num">'
                         rf"{by_lang[lang]}<", reply.body)
    assert re.search(r'href="/search\?source=wire">wire</a></td><td class="num">'
                     rf"{2 * PER_PAGE + 3}<", reply.body)
    latest = reply.body.split("Latest relevant stories", 1)[1].split("</ol>", 1)[0]
    assert f'href="/article/{docs["uk"].id}"' in latest
    assert "Norway" not in latest and "Мариинском" not in latest  # off topic
    # newest first: the story published two days ago comes after those of today
    assert latest.index(docs["uk"].id) < latest.index(docs["ru_other"].id)


def test_empty_database_front_page_says_how_to_fill_it(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "empty.db") as store, running_ui(store) as base:
        reply = fetch(base + "/")
    assert reply.status == 200
    assert "The index is empty" in reply.text and "dozor run" in reply.text


# ----------------------------------------------------------------------- search


def test_search_across_languages_with_inflections_and_highlights(
        ui: str, docs: dict[str, Article]) -> None:
    # a Russian word in the instrumental case and an English word, in one query (on
    # topic only: the paging material mentions colonies too)
    reply = search(ui, q="колонией OR colony", relevant="1")
    assert reply.status == 200
    ids = hit_ids(reply)
    assert docs["ru_wire"].id in ids and docs["ru_other"].id in ids
    assert docs["en_wire"].id in ids
    assert docs["ru_composer"].id not in ids
    # the Russian story's snippet marks the inflected forms as written in its text
    assert re.search(r"<mark>колони[ийя]\w*</mark>", reply.body)
    assert "<mark>colonies</mark>" in reply.body
    # original title, English title, source, language, date, link to the article page
    block = reply.body.split(f'/article/{docs["ru_wire"].id}"', 1)[1].split("</li>", 1)[0]
    assert RU_WIRE_TITLE in unescape(block)
    assert 'class="title-en" lang="en">Convicts from a colony in Kopeysk' in block
    assert '<span class="source">ria</span>' in block
    assert '<span class="lang">Russian</span>' in block
    assert "2026-05-12 06:30 UTC" in block
    assert ('href="https://ria.example/society/kopeisk-storm-z.html" '
            'rel="noopener noreferrer" target="_blank"') in block


def test_search_collapses_the_syndicated_copy_under_its_story(
        ui: str, docs: dict[str, Article]) -> None:
    reply = search(ui, q="Копейск")
    wire, copy = docs["ru_wire"], docs["ru_copy"]
    assert hit_ids(reply) == [wire.id]  # one story, led by the first stored copy
    assert '<span class="total">1</span>' in reply.body
    assert "2 articles: 1 of them a copy" in reply.text
    copies = reply.body.split('<details class="copies" id="copies-1">', 1)[1]
    copies = copies.split("</details>", 1)[0]
    assert "<summary>1 copy</summary>" in copies
    assert f'href="/article/{copy.id}"' in copies and f'href="/cluster/{wire.id}"' in copies
    # the copy's own words find the copy alone, with no copies under it
    alone = search(ui, q="Подписывайтесь")
    assert hit_ids(alone) == [copy.id] and "<details" not in alone.body


def test_language_source_and_relevant_filters(ui: str, docs: dict[str, Article]) -> None:
    ukrainian = hit_ids(search(ui, q="Шторм-Z", lang="uk"))
    assert ukrainian == [docs["uk"].id]
    assert UK_TITLE in search(ui, q="Шторм-Z", lang="uk").text

    english = hit_ids(search(ui, q="colony OR колония", lang="en"))
    assert english and all(docs_by_id(docs)[i].lang == "en" for i in english)

    by_source = hit_ids(search(ui, q="колония OR colony", source="reuters"))
    assert by_source == [docs["en_wire"].id]

    on_topic = hit_ids(search(ui, q="colony", relevant="1", lang="en"))
    assert on_topic and all(docs_by_id(docs)[i].relevant for i in on_topic)
    assert not any(docs_by_id(docs)[i].source == "wire" for i in on_topic)

    # a filter alone lists its articles, newest first
    only_uk = search(ui, lang="uk")
    assert set(hit_ids(only_uk)) == {a.id for a in docs.values() if a.lang == "uk"}
    # the form shows what was chosen
    assert '<option value="uk" selected>' in only_uk.body


def docs_by_id(docs: dict[str, Article]) -> dict[str, Article]:
    return {a.id: a for a in docs.values()}


def test_paging(ui: str, docs: dict[str, Article]) -> None:
    wanted = 2 * PER_PAGE + 3
    first = search(ui, q="colony", source="wire")
    assert len(hit_ids(first)) == PER_PAGE
    assert 'rel="next" href="/search?q=colony&amp;source=wire&amp;page=2"' in first.body
    assert 'rel="prev"' not in first.body
    second = fetch(ui + "/search?q=colony&source=wire&page=2")
    third = fetch(ui + "/search?q=colony&source=wire&page=3")
    assert '<ol class="hits" start="21">' in second.body
    assert 'rel="prev" href="/search?q=colony&amp;source=wire"' in second.body
    pages = hit_ids(first) + hit_ids(second) + hit_ids(third)
    assert len(pages) == len(set(pages)) == wanted
    assert 'rel="next"' not in third.body
    assert set(pages) == {a.id for a in docs.values() if a.source == "wire"}
    beyond = fetch(ui + "/search?q=colony&source=wire&page=4")
    assert beyond.status == 200 and "No results" in beyond.text
    # no fixed last page: a far page is simply empty
    far = fetch(ui + "/search?q=colony&source=wire&page=40")
    assert far.status == 200 and "No results" in far.text
    for bad in ("0", "x", "-1"):
        reply = fetch(ui + f"/search?q=colony&page={bad}")
        assert reply.status == 400 and "numbered from 1" in reply.text


def test_query_errors_show_the_message_and_position(ui: str) -> None:
    reply = search(ui, q="колония AND (вагнер")
    assert reply.status == 400
    assert "The query cannot be run" in reply.text
    assert "at line 1, column" in reply.text
    assert '<mark class="error-at">' in reply.body
    lower = search(ui, q="колония and вагнер")
    assert lower.status == 400
    assert "would be searched as a word" in lower.text and "column 9" in lower.text
    assert re.search(r'колония <mark class="error-at">a</mark>nd вагнер', lower.body)
    unknown = search(ui, q="author:smith")
    assert unknown.status == 400 and "unknown field 'author'" in unknown.text
    bad_lang = search(ui, q="колония", lang="de")
    assert bad_lang.status == 400 and "Unknown language 'de'" in bad_lang.text


def test_everything_shown_is_escaped(ui: str, docs: dict[str, Article]) -> None:
    reply = search(ui, q="вербовать")
    assert docs["hostile"].id in hit_ids(reply)
    assert "<script>" not in reply.body and "<img" not in reply.body
    assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in reply.body
    assert "&lt;img src=x onerror=alert(1)&gt;" in reply.body
    # the snippet's brackets are the text's own, the marks are <mark>
    assert "колонии [1] <mark>вербуют</mark>" in reply.body

    page = fetch(f"{ui}/article/{docs['hostile'].id}")
    assert page.status == 200
    assert "<script>" not in page.body and "<img" not in page.body and "<b>" not in page.body
    assert "&lt;/p&gt;&lt;b&gt;не разметка&lt;/b&gt;" in page.body
    # a javascript: URL is shown as text, never made a link
    assert 'href="javascript:' not in page.body
    assert '<span class="unlinked">javascript:alert(document.cookie)</span>' in page.body
    assert "&lt;колония&gt;" in page.body  # a matched term
    # the query is echoed escaped too
    echoed = search(ui, q='"<script>x</script>"')
    assert "<script>x" not in echoed.body


def test_security_headers(ui: str) -> None:
    reply = fetch(ui + "/")
    assert "script-src" not in reply.headers["Content-Security-Policy"]
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    css = fetch(ui + "/static/style.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert ".side-by-side" in css.body
    # no remote asset anywhere: every src/href of a page is local or an article's URL
    for page in (reply, search(ui, q="colony")):
        assert not re.search(r'<(link|script|img|iframe)[^>]+(src|href)="(https?:)?//', page.body)


# -------------------------------------------------------------------- article


def test_article_page_side_by_side_with_provenance_and_cluster(
        ui: str, docs: dict[str, Article]) -> None:
    wire = docs["ru_wire"]
    reply = fetch(f"{ui}/article/{wire.id}")
    assert reply.status == 200
    body = reply.body
    original = body.split('<section class="original" lang="ru">', 1)[1].split("</section>", 1)[0]
    english = body.split('<section class="english" lang="en">', 1)[1].split("</section>", 1)[0]
    # every paragraph of the original, in order, as text
    paragraphs = re.findall(r"<p>(.*?)</p>", original, re.S)
    assert [unescape(p) for p in paragraphs] == wire.text.split("\n")
    assert "At least forty prisoners of penal colony No. 6 in Kopeysk" in english
    # relevance
    assert "0.900" in reply.text and "<li>колония</li>" in body and "<li>Шторм-Z</li>" in body
    # provenance: the three URLs, dates and where the date came from
    assert "fetched 2026-05-12 09:30 UTC" in reply.text
    assert "2026-05-12 06:30 UTC (from the page's own metadata)" in reply.text
    assert reply.text.count("https://ria.example/society/kopeisk-storm-z.html") >= 3
    # also in: the syndicated copy, with a link to its own page
    also = body.split("<h2>Also in</h2>", 1)[1].split("</section>", 1)[0]
    assert f'href="/article/{docs["ru_copy"].id}"' in also
    assert "ural-news" in also
    assert wire.id not in also


def test_article_page_warc_provenance_and_pending_translation(
        ui: str, docs: dict[str, Article]) -> None:
    hostile_page = fetch(f"{ui}/article/{docs['hostile'].id}").text
    assert "WARC file crawl-0001.warc.gz" in hostile_page
    assert "WARC record <urn:uuid:0b6a7e8e-7f0e-4a4f-9d0e-2c1f3e4d5a6b>" in hostile_page
    assert "No other outlet carried this story" in hostile_page

    uk = fetch(f"{ui}/article/{docs['uk'].id}")
    assert "Translation pending" in uk.text and "dozor translate" in uk.text
    assert "not archived" in uk.text  # no WARC record for this one

    english = fetch(f"{ui}/article/{docs['en_wire'].id}")
    assert "The original is in English" in english.text


def test_unknown_pages_are_404_and_writes_are_refused(ui: str) -> None:
    assert fetch(f"{ui}/article/{'0' * 40}").status == 404
    missing = fetch(f"{ui}/article/../../etc/passwd")
    assert missing.status == 404
    assert fetch(f"{ui}/nothing-here").status == 404
    assert "No stored article has the id" in fetch(f"{ui}/article/{'0' * 40}").text
    post = fetch(f"{ui}/search?q=x", method="POST")
    assert post.status == 405 and post.headers["Allow"] == "GET, HEAD"
    head = fetch(f"{ui}/", method="HEAD")
    assert head.status == 200 and head.body == "" and int(head.headers["Content-Length"]) > 0


def test_serving_never_writes_to_the_database(ui_db: tuple[Path, dict[str, Article]]) -> None:
    path, docs = ui_db

    def snapshot() -> tuple[str, int]:
        wal = path.with_name(path.name + "-wal")
        return (hashlib.sha256(path.read_bytes()).hexdigest(),
                wal.stat().st_size if wal.exists() else 0)

    with SQLiteStore(path) as store:
        before = snapshot()
        with running_ui(store) as base:
            for url in ("/", f"/search?q={quote('колония')}", "/search?q=colony&page=2",
                        f"/article/{docs['ru_wire'].id}", "/search?q=(bad"):
                fetch(base + url)
        assert snapshot() == before


def test_the_same_ui_over_elasticsearch(tmp_path: Path) -> None:
    docs = corpus()
    with FakeElasticsearch() as fake, \
            ElasticStore(fake.url, spool=Spool(tmp_path / "spool")) as store:
        store.write(dedup(list(docs.values()), store))
        with running_ui(store) as base:
            front = fetch(base + "/")
            hits = search(base, q="колонией", relevant="1")
            page = fetch(f"{base}/article/{docs['ru_wire'].id}")
        assert fake.problems == []
    assert front.status == 200
    assert f"{len(docs)} articles" in front.text
    assert f"{sum(a.relevant for a in docs.values())} relevant" in front.text
    assert f'href="/article/{docs["uk"].id}"' in front.body
    assert set(hit_ids(hits)) == {docs[k].id for k in ("ru_wire", "ru_other")}
    assert f'<li id="copy-{docs["ru_copy"].id}">' in hits.body  # under its story
    assert "<mark>колони" in hits.body
    also = page.body.split("<h2>Also in</h2>", 1)[1].split("</section>", 1)[0]
    assert f'href="/article/{docs["ru_copy"].id}"' in also


def test_an_unreachable_index_is_a_clear_503(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = connect(url, backoff_base=0.01, backoff_cap=0.05)
    with ElasticStore(url, client=client, spool=Spool(tmp_path / "spool")) as store, \
            running_ui(store) as base:
        replies = [fetch(base + "/"), search(base, q="колония"),
                   fetch(f"{base}/article/{'a' * 40}")]
    for reply in replies:
        assert reply.status == 503
        assert "The index cannot be read: cannot" in reply.text and url in reply.text


# ------------------------------------------------------------------------ CLI


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dozor_serve_command(ui_db: tuple[Path, dict[str, Article]], tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "DOZOR_DATA_DIR": str(tmp_path / "data")}
    process = subprocess.Popen(
        [sys.executable, "-m", "dozor", "serve", "--db", str(ui_db[0]), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                reply = fetch(f"http://127.0.0.1:{port}/search?q={quote('колония')}")
                break
            except OSError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "dozor serve did not answer"
                time.sleep(0.1)
        assert reply.status == 200 and ui_db[1]["ru_wire"].id in hit_ids(reply)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert f"Dozor UI at http://127.0.0.1:{port}/" in out
    assert "warning" not in err


def test_non_loopback_host_is_warned_about(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    # 192.0.2.1 (TEST-NET-1) is on no interface here: the warning, then a clear bind error
    SQLiteStore(tmp_path / "x.db").close()  # serve reads an existing database only
    result = subprocess.run(
        [sys.executable, "-m", "dozor", "serve", "--db", str(tmp_path / "x.db"),
         "--host", "192.0.2.1", "--port", "0"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "DOZOR_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.returncode == 2
    err = " ".join(result.stderr.split())
    assert "warning: --host 192.0.2.1 is not a loopback address" in err
    assert "cannot listen on 192.0.2.1 port 0" in err


# --------------------------------------------------------- possibly relevant tier


def test_possibly_relevant_stories_are_shown_apart(tmp_path: Path) -> None:
    sure = article("https://t.example/sure", "Заключённых отправили на фронт",
                   "Заключённых колонии отправили на фронт.", lang="ru", source="t",
                   relevant=True, score=0.5)
    nearly = article("https://t.example/nearly", "Отряды «Шторм-Z» держат оборону",
                     "Отряды «Шторм-Z» держат оборону у реки.", lang="ru", source="t",
                     possible=True, score=0.3333)
    other = article("https://t.example/other", "Погода", "Снег и гололедица.", lang="ru",
                    source="t")
    with SQLiteStore(tmp_path / "p.db") as store:
        store.write(dedup([sure, nearly, other], store))
        with running_ui(store) as base:
            front = fetch(base + "/").body
            found = search(base, possible="1")
            page = fetch(f"{base}/article/{nearly.id}")
    latest = front.split("Latest relevant stories", 1)[1].split("</ol>", 1)[0]
    possible = front.split("Possibly relevant</h2>", 1)[1].split("</ol>", 1)[0]
    assert sure.id in latest and nearly.id not in latest
    assert nearly.id in possible and sure.id not in possible and other.id not in possible
    assert 'href="/search?possible=1"' in front
    assert hit_ids(found) == [nearly.id]
    assert "possibly relevant 0.33" in found.text
    assert "possibly (under the threshold: check it)" in page.text

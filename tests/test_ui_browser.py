"""The analyst UI in a real browser: Debian's headless Chromium renders the pages the
server sends (stylesheet and all) and hands back the DOM it built and a screenshot."""

from __future__ import annotations

import logging
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from pipelines.article import Article
from pipelines.store.sqlite import SQLiteStore
from tests.support.articles import RU_WIRE
from tests.test_ui import HOSTILE_TITLE, build_db, running_ui

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (make test-install installs it when root)",
)
WIDTH, HEIGHT = 1280, 900


def render(url: str, profile: Path, screenshot: Path) -> str:
    """The DOM Chromium built for `url`; the page as it looked goes to `screenshot`."""
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", f"--screenshot={screenshot}",
         f"--window-size={WIDTH},{HEIGHT}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Article]]]:
    path = tmp_path_factory.mktemp("browser") / "news.db"
    docs = build_db(path)
    with SQLiteStore(path) as store, running_ui(store) as base:
        yield base, docs


def test_article_page_renders_original_and_english_side_by_side(
        site: tuple[str, dict[str, Article]], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    base, docs = site
    wire = docs["ru_wire"]
    shot = tmp_path / "article.png"
    with caplog.at_level(logging.INFO, logger="dozor.ui.access"):
        dom = render(f"{base}/article/{wire.id}", tmp_path / "profile", shot)

    original = dom.split('<section class="original" lang="ru">', 1)[1].split("</section>", 1)[0]
    english = dom.split('<section class="english" lang="en">', 1)[1].split("</section>", 1)[0]
    assert RU_WIRE.split("\n")[0] in original
    assert "At least forty prisoners of penal colony No. 6 in Kopeysk" in english
    assert '<div class="side-by-side">' in dom
    also = dom.split("<h2>Also in</h2>", 1)[1].split("</section>", 1)[0]
    assert f'href="/article/{docs["ru_copy"].id}"' in also
    # the browser fetched the stylesheet from this server, and nothing else failed
    requests = [r.getMessage() for r in caplog.records]
    assert any('"GET /static/style.css HTTP/1.1" 200' in r for r in requests), requests
    assert png_size(shot) == (WIDTH, HEIGHT)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_search_page_highlights_and_shows_markup_as_text(
        site: tuple[str, dict[str, Article]], tmp_path: Path) -> None:
    base, docs = site
    shot = tmp_path / "search.png"
    query = urlencode({"q": "вербовать OR колонией", "relevant": "1"})
    dom = render(f"{base}/search?{query}", tmp_path / "profile", shot)

    assert f'href="/article/{docs["hostile"].id}"' in dom
    assert f'href="/article/{docs["ru_wire"].id}"' in dom
    assert "<mark>вербуют</mark>" in dom
    assert re.search(r"<mark>колони\w+</mark>", dom)
    # the hostile title is text in the DOM: no script or img element was ever built
    assert "&lt;script&gt;alert(\"title\")&lt;/script&gt; Колонии &amp; «Шторм-Z»" in dom
    assert HOSTILE_TITLE not in dom
    assert "<script" not in dom and "<img" not in dom
    assert png_size(shot) == (WIDTH, HEIGHT)


def test_search_page_with_dates_sort_total_and_facets(
        site: tuple[str, dict[str, Article]], tmp_path: Path) -> None:
    base, docs = site
    query = urlencode({"q": "колония OR prison*", "since": "2026-01-01", "sort": "newest"})
    dom = render(f"{base}/search?{query}", tmp_path / "profile", tmp_path / "facets.png")
    assert '<input type="date" name="since" value="2026-01-01"' in dom
    assert '<option value="newest" selected="">' in dom
    stories = int(dom.split('<span class="total">', 1)[1].split("<", 1)[0])
    total = int(dom.split('<span class="articles">', 1)[1].split("<", 1)[0])
    assert total > stories >= 2  # the copies are counted, under their stories
    facet = dom.split('data-facet="lang"', 1)[1].split("</section>", 1)[0]
    counts = [int(n) for n in re.findall(r'<span class="count">(\d+)</span>', facet)]
    assert sum(counts) == total
    assert 'href="/export.csv?' in dom


def test_copies_are_collapsed_under_their_story_and_open_in_one_step(
        site: tuple[str, dict[str, Article]], tmp_path: Path) -> None:
    base, docs = site
    wire, copy = docs["ru_wire"], docs["ru_copy"]
    url = f"{base}/search?{urlencode({'q': 'Копейск'})}"
    closed = render(url, tmp_path / "profile", tmp_path / "closed.png")
    details = re.search(r'<details class="copies" id="copies-1"([^>]*)>(.*?)</details>',
                        closed, re.S)
    assert details is not None and "open" not in details.group(1)  # collapsed
    assert "<summary>1 copy</summary>" in details.group(2)
    assert f'href="/article/{copy.id}"' in details.group(2)
    assert closed.count('<li class="hit">') == 1 and f'href="/article/{wire.id}"' in closed
    # following a link to the copy opens its <details>, as a click on "1 copy" does
    opened = render(f"{url}#copy-{copy.id}", tmp_path / "profile", tmp_path / "open.png")
    assert re.search(r'<details class="copies" id="copies-1" open="">', opened)
    # the cluster page lists every member, each linked to its article page
    page = render(f"{base}/cluster/{wire.id}", tmp_path / "profile", tmp_path / "cluster.png")
    rows = re.findall(r'<tr class="member[^"]*" id="member-([0-9a-f]{40})">', page)
    assert sorted(rows) == sorted([wire.id, copy.id])
    assert f'<a href="/article/{copy.id}" lang="ru">' in page
    assert png_size(tmp_path / "cluster.png") == (WIDTH, HEIGHT)

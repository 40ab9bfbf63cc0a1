"""extract() on real page bytes: charsets, non-HTML, broken pages, dates, canonical URLs."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from trafilatura.metadata import extract_author
from trafilatura.utils import load_html
from trafilatura.xpaths import AUTHOR_XPATHS

from pipelines import extract as extract_module
from pipelines.article import RawPage
from pipelines.charset import decode_html
from pipelines.extract import extract
from pipelines.language import detect
from tests.conftest import SHARED_PAGES

PARAGRAPHS_RU = [
    "Осуждённых из исправительной колонии №7 в Мордовии вербуют на войну: представители "
    "Министерства обороны приезжают в колонию и обещают помилование через полгода службы.",
    "По словам родственников, контракты подписали не менее сорока заключённых. Им обещали "
    "выплаты семьям и погашение судимости после возвращения с фронта.",
    "Правозащитники говорят, что о рисках заключённым не рассказывают, а о гибели бойцов "
    "семьи узнают из социальных сетей, а не от командования.",
    "В ведомстве на запрос о числе завербованных не ответили. Ранее похожие поездки "
    "вербовщиков фиксировали в колониях Свердловской и Челябинской областей.",
]
PARAGRAPHS_UK = [
    "Засуджених з виправних колоній Росії вербують на війну проти України: представники "
    "Міністерства оборони обіцяють помилування через пів року служби на фронті.",
    "За даними правозахисників, у колонії під Єкатеринбургом контракти підписали щонайменше "
    "п'ятдесят в'язнів. Їхнім родинам пообіцяли виплати, яких ті досі не отримали.",
    "Колишні ув'язнені, які повернулися з фронту, розповідають, що про ризики їм ніхто не "
    "казав, а поранених відправляли назад на передову без належного лікування.",
    "Відомство на запит журналістів щодо кількості завербованих засуджених не відповіло.",
]
NAV = "Главная Политика Общество Экономика Спорт Культура"
READ_ALSO = "Читайте также: Губернатор открыл новый мост через реку Исеть"
COMMENT = "Комментарий читателя: а кто будет за это отвечать, интересно"
FOOTER = "© 2024 Вечерние новости. Все права защищены. Реклама на сайте"


def page_html(
    title: str = "Заключённых колонии №7 вербуют на войну",
    paragraphs: list[str] = PARAGRAPHS_RU,
    head: str = "",
    lang: str | None = "ru",
    lead: str | None = None,
    byline: str = "",
    footer: str = FOOTER,
) -> str:
    lang_attr = f' lang="{lang}"' if lang else ""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    lead_html = f'<p class="lead">{lead}</p>' if lead else ""
    return f"""<!DOCTYPE html>
<html{lang_attr}><head><title>{title} | Вечерние новости</title>{head}</head>
<body>
<nav><ul>{"".join(f'<li><a href="/{w}">{w}</a></li>' for w in NAV.split())}</ul></nav>
<main><article>
<h1>{title}</h1>
{byline}
{lead_html}
<div class="article-body">{body}</div>
<aside class="read-also"><p>{READ_ALSO}</p></aside>
</article>
<section id="comments" class="comments"><h3>Комментарии</h3>
<div class="comment"><p>{COMMENT}</p></div></section>
</main>
<footer><p>{footer}</p></footer>
</body></html>"""


def raw(body: bytes, content_type: str | None = "text/html", **kw) -> RawPage:
    url = kw.pop("url", "https://news.example.org/society/2024/colony-7.html")
    headers = {"Content-Type": content_type} if content_type is not None else {}
    headers.update(kw.pop("headers", {}))
    return RawPage(
        url=url,
        final_url=kw.pop("final_url", url),
        status=kw.pop("status", 200),
        headers=headers,
        body=body,
        source=kw.pop("source", "vechernie"),
        **kw,
    )


def only(pages: list[RawPage]):
    articles = extract(pages)
    assert len(articles) == 1
    return articles[0]


def test_main_text_without_boilerplate_and_metadata() -> None:
    head = (
        '<meta name="author" content="Анна Петрова">'
        '<meta name="description" content="Вербовщики приезжают в колонии Мордовии">'
        '<meta property="og:site_name" content="Вечерние новости">'
        '<meta property="article:published_time" content="2024-03-05T14:30:00+03:00">'
    )
    fetched = datetime(2024, 3, 6, 8, 0, tzinfo=UTC)
    page = raw(
        page_html(head=head).encode("utf-8"),
        fetched_at=fetched,
        discovered_via="sitemap",
        warc_file="crawl-1.warc.gz",
        warc_record_id="<urn:uuid:1234>",
        source_lang="ru",
    )
    article = only([page])
    assert article.title == "Заключённых колонии №7 вербуют на войну"
    assert article.text.split("\n") == PARAGRAPHS_RU
    for boilerplate in (READ_ALSO, COMMENT, FOOTER, "Политика"):
        assert boilerplate not in article.text
    assert article.authors == ["Анна Петрова"]
    assert article.description == "Вербовщики приезжают в колонии Мордовии"
    assert article.site_name == "Вечерние новости"
    assert article.html_lang == "ru"
    assert article.published_at == datetime(2024, 3, 5, 11, 30, tzinfo=UTC)
    assert article.published_from == "page"
    assert (article.url, article.final_url, article.source) == (page.url, page.url, "vechernie")
    assert (article.fetched_at, article.discovered_via) == (fetched, "sitemap")
    assert (article.warc_file, article.warc_record_id) == ("crawl-1.warc.gz", "<urn:uuid:1234>")
    assert article.lang_hint == "ru"
    assert article.canonical_url == page.url


@pytest.mark.parametrize("encoding", ["cp1251", "koi8_r"])
def test_cyrillic_single_byte_page_without_any_charset(encoding: str) -> None:
    html = page_html().replace("№", "N")  # KOI8-R has no numero sign
    article = only([raw(html.encode(encoding), content_type="text/html")])
    assert article.title == "Заключённых колонии N7 вербуют на войну"
    assert PARAGRAPHS_RU[1] in article.text


def test_header_says_utf8_but_page_is_cp1251() -> None:
    body = page_html().encode("cp1251")
    article = only([raw(body, content_type="text/html; charset=utf-8")])
    assert PARAGRAPHS_RU[1] in article.text


def test_utf8_bom_page() -> None:
    body = b"\xef\xbb\xbf" + page_html(paragraphs=PARAGRAPHS_UK, lang="uk").encode("utf-8")
    article = only([raw(body, content_type=None)])  # sniffed through the BOM
    assert PARAGRAPHS_UK[0] in article.text
    assert article.html_lang == "uk"


def test_malformed_html_is_recovered() -> None:
    body = (
        "<html><head><title>Заключённых колонии №7 вербуют на войну</title><body>"
        "<div><article><h1>Заключённых колонии №7 вербуют на войну"
        + "".join(f"<p>{p}<b>" for p in PARAGRAPHS_RU)
        + "</div></div></span><p <p>>&bogus; \x00</table></html></html>"
    ).encode("utf-8")
    article = only([raw(body)])
    assert PARAGRAPHS_RU[0][:60] in article.text
    assert PARAGRAPHS_RU[3][:60] in article.text


def test_non_html_and_broken_pages_are_skipped_without_losing_the_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = raw(page_html().encode("utf-8"))
    pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n%%EOF"
    json_body = '{"title": "Новости", "items": []}'.encode()
    pages = [
        raw(pdf, content_type="application/pdf"),
        raw(pdf, content_type=None),
        raw(json_body, content_type="application/json"),
        raw(json_body, content_type=None),
        raw(b"", content_type="text/html"),
        raw(b"  \n ", content_type="text/html"),
        raw(page_html().encode("utf-8"), status=404),
        raw(b"\x00\x01\x02 binary junk \xff\xfe\xfd", content_type="text/html"),
        good,
        raw(page_html().encode("utf-8"), content_type=None, url="https://news.example.org/2"),
    ]
    with caplog.at_level(logging.INFO, logger="pipelines.extract"):
        articles = extract(pages)
    assert [a.url for a in articles] == [good.url, "https://news.example.org/2"]
    log = caplog.text
    for reason in ("content type application/pdf", "content type application/json",
                   "no content type and the body is not HTML", "empty body", "status 404"):
        assert reason in log
    assert "binary junk" not in " ".join(a.text for a in articles)


def test_huge_page_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    body = page_html().encode("utf-8") + b" " * extract_module.MAX_BODY_BYTES
    with caplog.at_level(logging.INFO, logger="pipelines.extract"):
        assert extract([raw(body)]) == []
    assert "exceeds" in caplog.text


def test_page_without_title_or_text_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pipelines.extract"):
        assert extract([raw(b"<html><head></head><body><div></div></body></html>")]) == []
    assert "neither title nor text" in caplog.text


def test_feed_date_when_page_has_none() -> None:
    feed_time = datetime(2024, 3, 5, 9, 15, tzinfo=timezone(timedelta(hours=3)))
    page = raw(page_html().encode("utf-8"), feed_published=feed_time)
    article = only([page])
    assert article.published_at == datetime(2024, 3, 5, 6, 15, tzinfo=UTC)
    assert article.published_at.tzinfo is not None
    assert article.published_from == "feed"

    sitemap_page = raw(page_html().encode("utf-8"), feed_published=feed_time,
                       discovered_via="sitemap")
    assert only([sitemap_page]).published_from == "sitemap"


def test_feed_date_when_page_date_is_unusable() -> None:
    head = '<meta property="article:published_time" content="вчера, 14:30">'
    feed_time = datetime(2024, 3, 5, 9, 15, tzinfo=UTC)
    article = only([raw(page_html(head=head).encode("utf-8"), feed_published=feed_time)])
    assert (article.published_at, article.published_from) == (feed_time, "feed")


def test_page_date_wins_over_feed_date() -> None:
    head = '<meta property="article:published_time" content="2024-03-04T22:10:00+02:00">'
    feed_time = datetime(2024, 3, 5, 9, 15, tzinfo=UTC)
    article = only([raw(page_html(head=head).encode("utf-8"), feed_published=feed_time)])
    assert article.published_at == datetime(2024, 3, 4, 20, 10, tzinfo=UTC)
    assert article.published_from == "page"


def test_day_only_page_date_takes_the_feed_time_of_that_day() -> None:
    head = '<meta name="date" content="2024-03-05">'
    feed_time = datetime(2024, 3, 5, 9, 15, tzinfo=UTC)
    article = only([raw(page_html(head=head).encode("utf-8"), feed_published=feed_time)])
    assert (article.published_at, article.published_from) == (feed_time, "feed")


def test_no_date_anywhere() -> None:
    article = only([raw(page_html().encode("utf-8"))])
    assert (article.published_at, article.published_from) == (None, None)


FETCHED = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lang", "paragraphs", "byline", "expected"),
    [
        ("uk", PARAGRAPHS_UK,
         '<div class="meta">Автор: Денис Губашов <span>Опубліковано:</span> 19 вересня 2023 р.'
         '</div>', datetime(2023, 9, 19, tzinfo=UTC)),
        ("uk", PARAGRAPHS_UK, "<p>Дата публікації: 12.03.2024</p>",
         datetime(2024, 3, 12, tzinfo=UTC)),
        ("ru", PARAGRAPHS_RU, '<p class="date">Опубликовано 5 марта 2024, 14:20</p>',
         datetime(2024, 3, 5, 14, 20, tzinfo=UTC)),
        ("en", PARAGRAPHS_RU, "<p>By Jane Roe. Published: 3 March 2024</p>",
         datetime(2024, 3, 3, tzinfo=UTC)),
    ],
)
def test_date_after_a_label_in_the_text_when_metadata_and_feed_have_none(
    lang: str, paragraphs: list[str], byline: str, expected: datetime
) -> None:
    html = page_html(paragraphs=paragraphs, lang=lang, byline=byline,
                     footer="© 2010—2024 Вечерние новости")
    article = only([raw(html.encode("utf-8"), fetched_at=FETCHED)])
    assert (article.published_at, article.published_from) == (expected, "text")


def test_text_date_prefers_publication_over_update_and_never_the_future() -> None:
    byline = "<p>Оновлено: 20 березня 2024, 10:00</p><p>Опубліковано: 12 березня 2024, 08:30</p>"
    html = page_html(paragraphs=PARAGRAPHS_UK, lang="uk", byline=byline)
    article = only([raw(html.encode("utf-8"), fetched_at=FETCHED)])
    assert article.published_at == datetime(2024, 3, 12, 8, 30, tzinfo=UTC)

    # a "published" date after the fetch is a typo or a template bug: the update date stands
    byline = "<p>Опубліковано: 12 березня 2034</p><p>Оновлено: 20 березня 2024</p>"
    html = page_html(paragraphs=PARAGRAPHS_UK, lang="uk", byline=byline)
    article = only([raw(html.encode("utf-8"), fetched_at=FETCHED)])
    assert article.published_at == datetime(2024, 3, 20, tzinfo=UTC)

    html = page_html(byline="<p>Опубликовано: 12 марта 2034</p>")
    article = only([raw(html.encode("utf-8"), fetched_at=FETCHED)])
    assert (article.published_at, article.published_from) == (None, None)


def test_unlabelled_dates_and_copyright_years_are_not_publication_dates() -> None:
    paragraphs = [
        *PARAGRAPHS_UK,
        "17.12.2019 р. засуджений разом з дитиною прийшов до магазину, а 17 лютого 2020 року "
        "повторно викрав дві банки ікри, встановив суд.",
    ]
    html = page_html(paragraphs=paragraphs, lang="uk", footer="© 2010—2023 Texty.org.ua")
    article = only([raw(html.encode("utf-8"), fetched_at=FETCHED)])
    assert (article.published_at, article.published_from) == (None, None)


def test_a_label_past_the_start_of_the_text_is_not_read() -> None:
    filler = PARAGRAPHS_RU * (extract_module._TEXT_DATE_CHARS // len("".join(PARAGRAPHS_RU)) + 1)
    html = page_html(paragraphs=[*filler, "Опубликовано: 5 марта 2024"])
    article = only([raw(html.encode("utf-8"), fetched_at=FETCHED)])
    assert article.published_at is None
    html = page_html(paragraphs=[*PARAGRAPHS_RU, "Опубликовано: 5 марта 2024"])
    article = only([raw(html.encode("utf-8"), fetched_at=FETCHED)])
    assert article.published_at == datetime(2024, 3, 5, tzinfo=UTC)


def test_feed_date_wins_over_text_date_and_page_metadata_over_both() -> None:
    byline = "<p>Опубликовано 5 марта 2024, 14:20</p>"
    feed_time = datetime(2024, 3, 6, 9, 15, tzinfo=UTC)
    article = only([raw(page_html(byline=byline).encode("utf-8"), fetched_at=FETCHED,
                        feed_published=feed_time)])
    assert (article.published_at, article.published_from) == (feed_time, "feed")

    head = '<meta property="article:published_time" content="2024-03-04T22:10:00+02:00">'
    article = only([raw(page_html(head=head, byline=byline).encode("utf-8"),
                        fetched_at=FETCHED, feed_published=feed_time)])
    assert (article.published_at, article.published_from) == (
        datetime(2024, 3, 4, 20, 10, tzinfo=UTC), "page")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ('<link rel="canonical" href="https://news.example.org/a/colony-7?utm_source=tg">',
         "https://news.example.org/a/colony-7"),
        ('<link rel="canonical" href="/a/colony-7#comments">',
         "https://news.example.org/a/colony-7"),
        ('<link rel="canonical" href="../colony-7.html">',
         "https://news.example.org/society/colony-7.html"),
        ('<meta property="og:url" content="https://news.example.org/a/colony-7">',
         "https://news.example.org/a/colony-7"),
        ('<link rel="Canonical" href="https://news.example.org/a/1">'
         '<meta property="og:url" content="https://news.example.org/a/2">',
         "https://news.example.org/a/1"),
    ],
)
def test_canonical_link(head: str, expected: str) -> None:
    article = only([raw(page_html(head=head).encode("utf-8"))])
    assert article.canonical_url == expected


def test_relative_canonical_resolves_against_final_url() -> None:
    head = '<link rel="canonical" href="/news/colony-7">'
    page = raw(page_html(head=head).encode("utf-8"), url="https://old.example.org/r?id=7",
               final_url="https://www.example.org/2024/03/colony-7")
    article = only([page])
    assert article.canonical_url == "https://www.example.org/news/colony-7"
    assert (article.url, article.final_url) == (page.url, page.final_url)


def test_home_page_canonical_is_ignored() -> None:
    head = '<link rel="canonical" href="https://news.example.org/">'
    url = "https://news.example.org/society/colony-7.html?utm_medium=rss&id=7"
    article = only([raw(page_html(head=head).encode("utf-8"), url=url)])
    assert article.canonical_url == "https://news.example.org/society/colony-7.html?id=7"


@pytest.mark.parametrize(
    ("lang", "head", "headers", "expected"),
    [
        ("ru-RU", "", {}, "ru"),
        (None, '<meta property="og:locale" content="uk_UA">', {}, "uk"),
        (None, '<meta http-equiv="Content-Language" content="uk">', {}, "uk"),
        ("ua", "", {}, "uk"),
        (None, "", {"Content-Language": "en-GB"}, "en"),
        (None, "", {}, None),
    ],
)
def test_declared_language(lang, head, headers, expected) -> None:
    page = raw(page_html(head=head, lang=lang).encode("utf-8"), headers=headers)
    assert only([page]).html_lang == expected


def test_ukrainian_page_labelled_russian_is_ukrainian() -> None:
    body = page_html(
        title="Засуджених вербують на війну", paragraphs=PARAGRAPHS_UK, lang="ru",
        head='<meta property="og:locale" content="ru_RU">',
    ).encode("utf-8")
    page = raw(body, feed_lang="ru-RU")
    [article] = detect(extract([page]), ("ru", "uk", "en"))
    assert (article.html_lang, article.lang_hint) == ("ru", "ru")
    assert article.lang == "uk"
    assert article.lang_confidence > 0.9


def test_title_from_feed_when_page_has_none() -> None:
    body = (
        "<html><body><article>" + "".join(f"<p>{p}</p>" for p in PARAGRAPHS_RU)
        + "</article></body></html>"
    ).encode("utf-8")
    article = only([raw(body, feed_title="Вербовка в колонии №7")])
    assert article.title == "Вербовка в колонии №7"
    assert PARAGRAPHS_RU[2] in article.text


def test_site_name_is_cut_from_og_title() -> None:
    head = (
        '<meta property="og:title" content="Заключённых колонии №7 вербуют на войну — Вечерние '
        'новости"><meta property="og:site_name" content="Вечерние новости">'
    )
    article = only([raw(page_html(head=head).encode("utf-8"))])
    assert article.title == "Заключённых колонии №7 вербуют на войну"


def test_standfirst_outside_the_body_is_kept() -> None:
    lead = ("Вербовщики Минобороны снова приезжали в колонию №7: на этот раз контракты "
            "подписали сорок человек.")
    head = f'<meta name="description" content="{lead}">'
    article = only([raw(page_html(head=head, lead=lead).encode("utf-8"))])
    assert article.text.startswith(lead)
    assert article.text.count(lead) == 1
    # a description nobody sees on the page is not article text
    unseen = "Новости Мордовии и всей России: главное за день на сайте Вечерних новостей."
    article = only([raw(page_html(head=f'<meta name="description" content="{unseen}">')
                        .encode("utf-8"))])
    assert unseen not in article.text
    assert article.description == unseen


def test_visible_text_is_the_visible_pieces_joined() -> None:
    hidden = (
        "<html><head><title>t</title><style>h{}</style></head><body>Видно <b>жирным</b>"
        "<script>var x = 1;</script> после скрипта<noscript><p>без <i>JS</i></p></noscript>"
        "<!-- комментарий --><template><div>шаблон</div></template>хвост"
        "<div>блок<style>p{}</style>конец</div></body></html>"
    )
    pages = [hidden.encode("utf-8")]
    if (SHARED_PAGES / "manifest.json").is_file():
        manifest = json.loads((SHARED_PAGES / "manifest.json").read_text(encoding="utf-8"))
        pages += [(SHARED_PAGES / entry["file"]).read_bytes() for entry in manifest]
    for body in pages:
        tree = load_html(decode_html(body, "text/html").text)
        assert extract_module.visible_text(tree) == "".join(extract_module._VISIBLE_TEXT(tree))
    tree = load_html(hidden)
    assert extract_module.visible_text(tree) == "Видно жирным после скриптахвостблокконец"


def test_author_words_cover_trafilaturas_author_searches() -> None:
    for search in AUTHOR_XPATHS:
        assert set(re.findall(r"@([\w-]+)", search.path)) <= set(extract_module.AUTHOR_ATTRIBUTES)
        for literal in re.findall(r"'([^']*)'", search.path):
            if literal == "me":
                continue  # rel='me' compares a <rel> child's text: the <rel> is looked for
            for alternative in literal.split("|"):
                # spelled out: [Aa]uthor both ways, author-?name with and without the hyphen
                spellings = [re.sub(r"\[(\w)\w\]", r"\1", alternative),
                             re.sub(r"\[\w(\w)\]", r"\1", alternative)]
                spellings = [v for s in spellings for v in (s.replace("-?", "-"),
                                                             s.replace("-?", ""))]
                for spelling in spellings:
                    assert any(w in spelling for w in extract_module.AUTHOR_WORDS), spelling
        # elements found by name alone: <author>, and <rel> (rel='me')
        assert set(re.findall(r"//(\w+)", search.path)) <= {"author"}
        assert set(re.findall(r"(?<![@:\w-])([a-z]+)\s*=", search.path)) <= {"rel"}


def test_author_search_is_skipped_only_where_it_finds_nothing() -> None:
    byline = page_html(byline="<span class='byline'>Иван Петров</span>")
    no_author = page_html()
    pages = [byline.encode("utf-8"), no_author.encode("utf-8")]
    if (SHARED_PAGES / "manifest.json").is_file():
        manifest = json.loads((SHARED_PAGES / "manifest.json").read_text(encoding="utf-8"))
        pages += [(SHARED_PAGES / entry["file"]).read_bytes() for entry in manifest]
    skipped = 0
    for body in pages:
        tree = load_html(decode_html(body, "text/html").text)
        if not extract_module._MAY_NAME_AUTHOR(tree):
            assert extract_author(tree) is None
            skipped += 1
    assert skipped >= 1
    [article] = extract([raw(pages[0])])
    assert article.authors == ["Иван Петров"]


def test_unexpected_error_on_one_page_is_logged_and_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = raw(b"")
    broken.body = page_html()  # type: ignore[assignment]  # str where bytes belong
    good = raw(page_html().encode("utf-8"), url="https://news.example.org/ok")
    with caplog.at_level(logging.ERROR, logger="pipelines.extract"):
        articles = extract([broken, good])
    assert [a.url for a in articles] == [good.url]
    assert f"extract: {broken.url} failed" in caplog.text

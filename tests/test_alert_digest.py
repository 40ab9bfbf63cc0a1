"""The digest email: subject counts, both titles, highlighted snippets, folded copies,
MIME and encodings for Cyrillic, and nothing from an article reaching a header or markup."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from html.parser import HTMLParser
from pathlib import Path

from pipelines.alert import load_rules
from pipelines.alert.digest import build_digest, render
from pipelines.article import Article
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import RECRUITMENT_RULES, rules_file, store_articles, stored_corpus
from tests.support.articles import article

NOW = datetime(2026, 5, 12, 10, 0, tzinfo=UTC)
SENDER = "Dozor Alerts <alerts@dozor.example>"


class Tags(HTMLParser):
    """The element names and attributes of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.attrs.extend(attrs)


def sent_form(message: EmailMessage) -> EmailMessage:
    """The message as a mail client sees it: serialised, then parsed back."""
    return message_from_bytes(message.as_bytes(), policy=default_policy)  # type: ignore[return-value]


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    # parsed back from the wire form, the parts keep its CRLF line ends
    return (text.get_content().replace("\r\n", "\n"),
            html.get_content().replace("\r\n", "\n"))


def test_digest_of_ru_uk_en_stories(tmp_path: Path, store: SQLiteStore) -> None:
    docs, _ = stored_corpus(store)
    [rule] = load_rules(rules_file(tmp_path, """\
        rules:
          - name: recruitment
            title: Prisoner recruitment
            query: 'relevant:true AND (колония OR колонія OR colony OR pardon)'
            to: [desk@example.org]
    """))
    order = ["ru_wire", "ru_copy", "ru_other", "uk", "en_wire", "en_copy", "en_other"]
    digest = build_digest(rule, [docs[n] for n in order if rule.matches(docs[n])])
    assert digest is not None
    message = sent_form(render(digest, SENDER, NOW))

    # 7 articles, 5 stories: the two syndicated copies are folded
    assert message["Subject"] == "5 new stories — Prisoner recruitment: en 2, ru 2, uk 1"
    assert message["From"] == SENDER
    assert message["To"] == "desk@example.org"
    assert message["Date"] == "Tue, 12 May 2026 10:00:00 +0000"
    assert message["Message-ID"].startswith("<dozor.")
    assert message["Message-ID"].endswith("@dozor.example>")
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)

    # the original title, and the English one since ru_wire was translated
    ru = docs["ru_wire"]
    assert ru.title in text and ru.title in html
    assert f"English: {ru.title_en}" in text
    assert ru.title_en in html
    # untranslated (translation pending) Ukrainian story: its own title only
    assert docs["uk"].title.replace("'", "&#39;") in html
    # source, date, language and link of each story
    assert "ria · 2026-05-12 · ru" in text
    assert ru.url in text and f'href="{ru.url}"' in html
    # matched words highlighted in the snippet, in the inflected form the text has
    assert "<mark>колониях</mark>" in html and "*колониях*" in text
    assert "penal <mark>colony</mark> No. 6" in html  # the English snippet of ru_wire
    assert "<mark>колоній</mark>" in html
    assert "<mark>pardons</mark>" in html
    # a syndicated copy is folded into its story, not listed as one
    assert docs["ru_copy"].title not in text
    assert docs["en_copy"].title not in html
    assert f"Also in: ural-news (ru) {docs['ru_copy'].url}" in text
    assert f'href="{docs["en_copy"].url}"' in html and ">aggregator</a> (en)" in html
    assert docs["ru_other"].title in text  # same subject, a different story
    assert sorted(digest.article_ids) == sorted(docs[n].id for n in order)


def test_cyrillic_mime_and_encodings(tmp_path: Path, store: SQLiteStore) -> None:
    docs, _ = stored_corpus(store)
    [rule] = load_rules(rules_file(tmp_path, """\
        rules:
          - name: uk-desk
            title: Вербування в'язнів
            subject_prefix: "[Дозор]"
            query: 'relevant:true AND lang:uk'
            to: [uk-desk@example.org]
    """))
    digest = build_digest(rule, [docs["uk"]])
    assert digest is not None
    raw = render(digest, SENDER, NOW).as_bytes()
    raw.decode("ascii")  # every header and body line is 7-bit on the wire
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # SMTP line ends
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"Subject: =?utf-8?" in head  # RFC 2047 encoded word
    message = message_from_bytes(raw, policy=default_policy)
    assert message["Subject"] == "[Дозор] 1 new story — Вербування в'язнів: uk 1"
    text, html = parts(message)  # type: ignore[arg-type]
    for part in message.walk():
        if not part.is_multipart():
            assert part.get_content_charset() == "utf-8"
            assert part["Content-Transfer-Encoding"] in ("base64", "quoted-printable")
    assert docs["uk"].title in text
    assert "<mark>" not in text


def test_titles_cannot_inject_headers_markup_or_remote_content(store: SQLiteStore,
                                                                tmp_path: Path) -> None:
    evil = article(
        "https://evil.example/x", "Вагнер <script>alert(1)</script>\r\nBcc: victim@example.org",
        "Колония. <img src=\"https://tracker.example/p.gif\"> <a href=javascript:alert(2)>x</a> "
        "Заключённых колонии отправили на фронт.",
        lang="ru", source="evil\r\nX-Injected: 1", relevant=True, score=0.9,
        title_en="Wagner\nSubject: spoofed", text_en="Colony <b>bold</b>",
        translation_status="done",
    )
    bad_link = article("javascript:alert(3)", "Колония и заключённые", "Колония заключённые.",
                       lang="ru", source="odd", relevant=True)
    store_articles(store, [evil, bad_link])
    [rule] = load_rules(rules_file(tmp_path, """\
        rules:
          - name: evil
            title: "Topic\\r\\nBcc: everyone@example.org"
            query: 'колония'
            to: [desk@example.org]
    """))
    digest = build_digest(rule, [store.get(evil.id), store.get(bad_link.id)])  # type: ignore[list-item]
    assert digest is not None
    message = sent_form(render(digest, SENDER, NOW))
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert message["Subject"] == "2 new stories — Topic Bcc: everyone@example.org: ru 2"
    text, html = parts(message)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=&quot;https://tracker.example/p.gif&quot;&gt;" in html
    tags = Tags()
    tags.feed(html)
    # only the template's own markup: no scripts, images, frames or remote styles, and
    # every link a web link
    assert tags.names <= {"html", "head", "meta", "title", "body", "h1", "h2", "p", "span",
                          "code", "div", "a", "mark"}
    assert not any(name in ("src", "srcset", "background") for name, _ in tags.attrs)
    hrefs = [value for name, value in tags.attrs if name == "href"]
    assert hrefs and all(h == "https://evil.example/x" for h in hrefs)
    # CR/LF gone: the title stays on its own numbered line in the text part
    assert "1. Вагнер <script>alert(1)</script> Bcc: victim@example.org\n" in text
    assert "\nBcc:" not in text and "\nSubject:" not in text and "\nX-Injected" not in text
    assert "evil X-Injected: 1 ·" in text


def test_digest_limit_keeps_the_oldest_stories_and_says_how_many_wait(
        tmp_path: Path, store: SQLiteStore) -> None:
    docs, _ = stored_corpus(store)
    [rule] = load_rules(rules_file(tmp_path, RECRUITMENT_RULES.replace(
        "to: [", "digest_limit: 2\n        to: [")))
    queue = [docs[n] for n in ("ru_other", "uk", "ru_wire", "ru_copy", "en_other")]
    digest = build_digest(rule, queue)
    assert digest is not None
    assert [s.article.id for s in digest.stories] == [docs["uk"].id, docs["ru_other"].id]
    assert digest.waiting == 2  # ru_wire (+ its copy) and en_other
    text, html = parts(sent_form(render(digest, SENDER, NOW)))
    assert "2 more matching stories are waiting and will come in the next digest." in text
    assert "2 more matching stories are waiting" in html


def test_message_id_is_stable_for_the_same_batch(tmp_path: Path, store: SQLiteStore) -> None:
    docs, _ = stored_corpus(store)
    [rule] = load_rules(rules_file(tmp_path, RECRUITMENT_RULES))
    first = build_digest(rule, [docs["uk"], docs["en_other"]])
    again = build_digest(rule, [docs["en_other"], docs["uk"]])
    other = build_digest(rule, [docs["uk"]])
    assert first and again and other
    ids = [render(d, SENDER, NOW)["Message-ID"] for d in (first, again, other)]
    assert ids[0] == ids[1] != ids[2]


def test_story_without_publication_date_shows_when_it_was_found(
        tmp_path: Path, store: SQLiteStore) -> None:
    undated = article("https://news.example/undated", "Заключённые из колонии", "Колония.",
                      lang="ru", source="news", relevant=True)
    undated.published_at = None
    [new_id] = store_articles(store, [undated])
    stored: Article = store.get(new_id)  # type: ignore[assignment]
    [rule] = load_rules(rules_file(tmp_path, RECRUITMENT_RULES))
    digest = build_digest(rule, [stored])
    assert digest is not None
    text, _ = parts(sent_form(render(digest, SENDER, NOW)))
    assert f"news · found {stored.stored_at:%Y-%m-%d} · ru" in text


def test_story_links_to_where_it_lives_after_a_redirect(
        tmp_path: Path, store: SQLiteStore) -> None:
    moved = article("https://news.example/2024/old-address", "Заключённые из колонии",
                    "Колония.", lang="ru", source="news", relevant=True)
    moved.final_url = "https://news.example/2024/new-address"
    [new_id] = store_articles(store, [moved])
    [rule] = load_rules(rules_file(tmp_path, RECRUITMENT_RULES))
    digest = build_digest(rule, [store.get(new_id)])  # type: ignore[list-item]
    assert digest is not None
    text, html_part = parts(sent_form(render(digest, SENDER, NOW)))
    for body in (text, html_part):
        assert "https://news.example/2024/new-address" in body
        assert "old-address" not in body

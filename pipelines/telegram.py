"""Public Telegram channels, read from their web preview (`https://t.me/s/<channel>`).

The preview is a page of message widgets, newest last, with a "load older" link whose
`data-before` is the id to page back from. Each widget (`tgme_widget_message_wrap`)
names its post in `data-post` ("channel/123"); inside it sit the forwarded-from block,
the text, a link preview, the views ("12.3K"), an "edited" marker and the date link with
`<time datetime>`. Widgets without text or link preview (service messages, polls,
stickers, bare media) are skipped and counted by kind, never guessed at.

A channel that has no preview (Telegram sends /s/<name> on to /<name>, a contact page
without messages) or does not exist is told apart from a page whose layout changed, so
the crawl can say which it was.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from lxml import html as lxml_html
from lxml.html import HtmlElement

from pipelines.article import Article, RawPage
from pipelines.config.sources import USERNAME
from pipelines.language import usual_language
from pipelines.urls import BadURL, canonicalize

CANONICAL_BASE = "https://t.me"
DISCOVERED_VIA = "telegram"
# a title longer than this is cut at its first sentence, else at a word
MAX_TITLE_CHARS = 140
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=\S)")
_VIEWS = re.compile(r"([\d.,]+)\s*([KMB]?)", re.IGNORECASE)
_SCALE = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}
_POST_PATH = re.compile(r"^/(?:s/)?([A-Za-z0-9_]{5,32})/(\d+)/?$")

# widget classes that mark a message kind Dozor does not read as a post
_KINDS = (
    ("service", ("service_message", "tgme_widget_message_service")),
    ("poll", ("tgme_widget_message_poll",)),
    ("sticker", ("tgme_widget_message_sticker_wrap", "tgme_widget_message_sticker")),
    ("unsupported", ("message_media_not_supported", "text_not_supported")),
)


def _has_class(class_name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {class_name} ')"


def _by_class(class_name: str, *, tag: str = "*", scope: str = ".//") -> str:
    return f"{scope}{tag}[{_has_class(class_name)}]"


def post_url(channel: str, post_id: int) -> str:
    """The canonical URL of a post, whatever mirror or base it was fetched from."""
    return f"{CANONICAL_BASE}/{channel.lower()}/{post_id}"


def post_link(url: str) -> str | None:
    """The canonical URL of a t.me post link (https://t.me/name/123), else None."""
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in ("t.me", "telegram.me", "www.t.me"):
        return None
    match = _POST_PATH.match(parts.path)
    return post_url(match[1], int(match[2])) if match else None


def web_links(links: list[str]) -> list[str]:
    """The links of a post a `follow_links` source fetches as articles: web pages, not
    Telegram's own."""
    return [url for url in links if post_link(url) is None and urlsplit(url).hostname != "t.me"]


def followed_articles(links: list[str]) -> tuple[str, ...]:
    """The canonical URLs of the web articles a post links to (unusable links left out)."""
    out: dict[str, None] = {}
    for url in web_links(links):
        try:
            canonical = canonicalize(url)
        except BadURL:
            continue
        if canonical.startswith(("http://", "https://")):
            out[canonical] = None
    return tuple(out)


def parse_views(text: str | None) -> int | None:
    """'12.3K' -> 12300, '1.2M' -> 1200000, '845' -> 845."""
    match = _VIEWS.search(text or "")
    if not match:
        return None
    try:
        number = float(match[1].replace(",", ""))
    except ValueError:
        return None
    return round(number * _SCALE[match[2].upper()])


def title_of(text: str) -> str:
    """The first line; when that is long, its first sentence; when still long, cut at a word."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if len(line) <= MAX_TITLE_CHARS:
        return line
    sentence = _SENTENCE_END.split(line, maxsplit=1)[0]
    if len(sentence) <= MAX_TITLE_CHARS:
        return sentence
    cut = sentence[:MAX_TITLE_CHARS].rsplit(" ", 1)[0].rstrip(",;:—–- ")
    return f"{cut}…"


@dataclass(slots=True)
class Post:
    channel: str
    post_id: int
    text: str
    published_at: datetime | None = None
    views: int | None = None
    forwarded_from: str | None = None  # canonical URL of the original post
    forwarded_name: str = ""
    links: list[str] = field(default_factory=list)
    edited: bool = False
    preview_title: str = ""
    preview_description: str = ""
    html: str = ""  # the widget itself: what the stages read the post from again

    @property
    def url(self) -> str:
        return post_url(self.channel, self.post_id)


@dataclass(slots=True)
class ChannelPage:
    """One preview page: its posts (oldest first), what was skipped, where older ones are."""

    channel: str
    size: int
    posts: list[Post] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    before: int | None = None  # data-before of the "load older" link
    title: str = ""
    problem: str | None = None  # no_preview | missing | no_posts

    def describe(self) -> str:
        """One line for the run's output, naming the channel and the reason."""
        reasons = {
            "no_preview": "has no public web preview (Telegram shows its contact page only)",
            "missing": "does not exist",
            "no_posts": f"no posts found in a page that has {self.size} bytes",
        }
        return f"telegram {self.channel}: {reasons.get(self.problem or '', 'ok')}"


def _text(node: HtmlElement | None) -> str:
    """Visible text with <br> as a line break and link texts kept."""
    if node is None:
        return ""
    node = lxml_html.fromstring(lxml_html.tostring(node, encoding="unicode"))  # own copy
    for br in node.iter("br"):
        br.tail = "\n" + (br.tail or "")
    lines = [" ".join(line.split()) for line in node.text_content().splitlines()]
    return "\n".join(lines).strip()


def _decoded(body: bytes | str) -> str:
    # t.me serves UTF-8 only; a widget cut out of a page has no <meta charset> to say so
    return body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body


def _first(node: HtmlElement, xpath: str) -> HtmlElement | None:
    found = node.xpath(xpath)
    return found[0] if found else None


def _kind(widget: HtmlElement) -> str | None:
    classes = " ".join([widget.get("class", ""),
                        *(e.get("class", "") for e in widget.iter() if e.get("class"))])
    names = set(classes.split())
    for kind, markers in _KINDS:
        if names.intersection(markers):
            return kind
    return None


def _links(text_node: HtmlElement | None, preview: HtmlElement | None, base: str) -> list[str]:
    hrefs = list(text_node.xpath(".//a/@href")) if text_node is not None else []
    if preview is not None and preview.get("href"):
        hrefs.append(preview.get("href"))
    out: list[str] = []
    for href in hrefs:
        # hashtags and cashtags link to a search of the channel ("?q=%23tag")
        if not href or href.startswith(("?", "#", "javascript:", "tg:")):
            continue
        try:
            url = canonicalize(href, base=base)
        except BadURL:
            continue
        if url.startswith(("http://", "https://")) and url not in out:
            out.append(url)
    return out


def _published(widget: HtmlElement) -> datetime | None:
    for stamp in widget.xpath(_by_class("tgme_widget_message_date", tag="a") + "//time/@datetime"
                              ) or widget.xpath(".//time/@datetime"):
        try:
            when = datetime.fromisoformat(stamp.strip())
        except ValueError:
            continue
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def parse_widget(widget: HtmlElement, base: str = CANONICAL_BASE) -> Post | str:
    """The post in one message widget, or the kind of message it is when it is not one."""
    ref = (widget.get("data-post") or "").strip()
    channel, _, number = ref.partition("/")
    if not USERNAME.fullmatch(channel) or not number.isdigit():
        return "no_post_id"
    kind = _kind(widget)
    if kind == "service":
        return kind
    text_node = _first(widget, _by_class("tgme_widget_message_text"))
    preview = _first(widget, _by_class("tgme_widget_message_link_preview"))
    text = _text(text_node)
    if not text and preview is None:
        return kind or "media"
    fwd = _first(widget, _by_class("tgme_widget_message_forwarded_from_name"))
    meta = widget.xpath(_by_class("tgme_widget_message_meta", tag="span"))
    return Post(
        channel=channel.lower(),
        post_id=int(number),
        text=text,
        published_at=_published(widget),
        views=parse_views(_text(_first(widget, _by_class("tgme_widget_message_views")))),
        forwarded_from=post_link(fwd.get("href", "")) if fwd is not None else None,
        forwarded_name=_text(fwd),
        links=_links(text_node, preview, base),
        edited=any("edited" in m.text_content().lower() for m in meta),
        preview_title=_text(_first(widget, _by_class("link_preview_title"))),
        preview_description=_text(_first(widget, _by_class("link_preview_description"))),
        html=lxml_html.tostring(widget, encoding="unicode"),
    )


def parse_channel_page(body: bytes | str, channel: str, base: str = CANONICAL_BASE
                       ) -> ChannelPage:
    """Every post on a preview page, what was skipped, and the "load older" position."""
    page = ChannelPage(channel=channel, size=len(body))
    text = _decoded(body)
    if not text.strip():
        page.problem = "no_posts"
        return page
    tree = lxml_html.fromstring(text)
    for title in tree.xpath(_by_class("tgme_channel_info_header_title", scope="//")
                            + " | " + _by_class("tgme_page_title", scope="//"))[:1]:
        page.title = _text(title)
    widgets = tree.xpath(_by_class("tgme_widget_message", scope="//")
                         + "[@data-post]")
    for widget in widgets:
        found = parse_widget(widget, base)
        if isinstance(found, Post):
            page.posts.append(found)
        else:
            page.skipped[found] += 1
    page.posts.sort(key=lambda p: p.post_id)
    for before in tree.xpath(_by_class("tme_messages_more", tag="a", scope="//")
                             + "/@data-before"):
        if before.strip().isdigit():
            page.before = int(before)
            break
    if not widgets:
        if tree.xpath(_by_class("tgme_channel_history", scope="//")):
            page.problem = "no_posts"
        elif tree.xpath(_by_class("tgme_page_title", scope="//")):
            page.problem = "no_preview"
        elif tree.xpath(_by_class("tgme_page", scope="//")):
            page.problem = "missing"
        else:
            page.problem = "no_posts"
    return page


def parse_post_html(fragment: bytes | str, base: str = CANONICAL_BASE) -> Post | None:
    """The post in one widget's HTML (what a post's RawPage carries)."""
    tree = lxml_html.fromstring(_decoded(fragment))
    widgets = tree.xpath("descendant-or-self::*" + f"[{_has_class('tgme_widget_message')}]"
                         "[@data-post]")
    found = parse_widget(widgets[0], base) if widgets else None
    return found if isinstance(found, Post) else None


def post_page(post: Post, source: str, fetched_from: str, fetched_at: datetime,
              source_lang: str | None = None, warc_file: str | None = None,
              warc_record_id: str | None = None, channel_lang: str | None = None,
              follows: tuple[str, ...] = ()) -> RawPage:
    """The RawPage of one post: its widget, under the post's canonical URL. `channel_lang`
    (`channel_language` of the page it was read from) is the post's `feed_lang`; `follows`
    the articles it links to that the crawl fetches (`follow_links`)."""
    return RawPage(
        url=post.url,
        final_url=fetched_from,
        status=200,
        headers={"content-type": "text/html; charset=utf-8"},
        body=post.html.encode("utf-8"),
        source=source,
        discovered_via=DISCOVERED_VIA,
        fetched_at=fetched_at,
        source_lang=source_lang,
        feed_lang=channel_lang,
        feed_published=post.published_at,
        warc_file=warc_file,
        warc_record_id=warc_record_id,
        follows=follows,
    )


def channel_language(page: ChannelPage) -> str | None:
    """The usual language of a channel, from every post on one of its pages."""
    return usual_language([post.text for post in page.posts])


def post_article(page: RawPage) -> Article | None:
    """The article of a post's RawPage: the text is the post's, nothing is extracted."""
    post = parse_post_html(page.body, base=page.final_url or CANONICAL_BASE)
    if post is None:
        return None
    text = post.text
    title = title_of(text) or post.preview_title
    description = "\n".join(p for p in (post.preview_title, post.preview_description) if p)
    return Article(
        url=post.url,
        canonical_url=post.url,
        source=page.source,
        fetched_at=page.fetched_at,
        final_url=page.final_url or post.url,
        discovered_via=DISCOVERED_VIA,
        status=page.status,
        title=title,
        text=text,
        description=description,
        site_name=post.channel,
        # the channel's usual language: a prior for a short post (pipelines.language)
        html_lang=page.feed_lang,
        lang_hint=page.source_lang,
        published_at=post.published_at or page.feed_published,
        published_from="page" if post.published_at else None,
        warc_file=page.warc_file,
        warc_record_id=page.warc_record_id,
        channel=post.channel,
        post_id=post.post_id,
        views=post.views,
        forwarded_from=post.forwarded_from,
        links=post.links,
    )

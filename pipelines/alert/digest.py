"""One digest email per rule: the stories waiting for it, as HTML with a text twin.

A story is an article plus its syndicated copies (same `cluster_id`), listed once with
"also in: …". Every value reaches the HTML through jinja2's autoescape; snippets are
escaped by `pipelines.terms.snippets.snippet` itself, which only adds the <mark> tags. Titles
and other text lose their line breaks before they reach any header or line of the
text part, so a crafted title cannot add a header or fake a line.
"""

from __future__ import annotations

import hashlib
import html
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from pipelines.alert.rules import Rule
from pipelines.article import Article, utcnow
from pipelines.terms.snippets import snippet

# Bodies are sent as quoted-printable or base64 (whichever is shorter), never raw
# 8-bit: Cyrillic then survives any relay, with or without 8BITMIME.
POLICY = SMTP.clone(cte_type="7bit")
SNIPPET_WIDTH = 280
HTML_MARK = ("<mark>", "</mark>")
TEXT_MARK = ("*", "*")
REPEAT_HEADER = "X-Dozor-Possible-Repeat"
REPEAT_NOTE = ("This digest may be a repeat: an earlier attempt to send it was cut off "
               "after the mail server had the whole message, so it may already be in "
               "your mailbox (same Message-ID).")

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def web_link(article: Article) -> str | None:
    """Where the article lives now (after redirects), when that is a web link: never a
    javascript: or data: URL."""
    url = article.final_url or article.url
    return url if url.startswith(("http://", "https://")) else None


def one_line(value: str) -> str:
    """Whitespace runs (CR/LF included) become one space; other control characters go."""
    return " ".join("".join(ch for ch in value if ch.isprintable() or ch.isspace()).split())


@dataclass
class Story:
    article: Article
    matched: list[str]
    copies: list[Article] = field(default_factory=list)  # same cluster, other outlets

    @property
    def ids(self) -> list[str]:
        return [self.article.id, *(c.id for c in self.copies)]

    @property
    def possible(self) -> bool:
        """Only in the topic's possibly relevant tier: no member is relevant."""
        members = [self.article, *self.copies]
        return any(a.possible for a in members) and not any(a.relevant for a in members)

    @property
    def title(self) -> str:
        return one_line(self.article.title) or self.article.url

    @property
    def title_en(self) -> str | None:
        """The English title when the story was translated to it."""
        a = self.article
        if a.lang == "en" or a.translation_status != "done" or not a.title_en:
            return None
        title_en = one_line(a.title_en)
        return title_en if title_en and title_en != self.title else None

    @property
    def date(self) -> str:
        a = self.article
        if a.published_at:
            return a.published_at.strftime("%Y-%m-%d")
        found = a.stored_at or a.fetched_at
        return f"found {found:%Y-%m-%d}"

    @property
    def link(self) -> str | None:
        return web_link(self.article)

    def snippets(self, mark: tuple[str, str], escape: bool) -> tuple[str, str | None]:
        """The original passage around the matches and, when translated, the English one."""
        a = self.article
        esc = html.escape if escape else None
        original = snippet(a.text or a.title, a.lang, self.matched, SNIPPET_WIDTH, mark, esc)
        english = None
        if self.title_en is not None and a.text_en:
            english = snippet(a.text_en, "en", self.matched, SNIPPET_WIDTH, mark, esc)
        return original, english


@dataclass
class Digest:
    rule: Rule
    stories: list[Story]
    waiting: int = 0  # stories left pending for the next digest (digest_limit)

    @property
    def article_ids(self) -> list[str]:
        return [i for story in self.stories for i in story.ids]

    def language_counts(self) -> list[tuple[str, int]]:
        counts = Counter(story.article.lang for story in self.stories)
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    @property
    def subject(self) -> str:
        n = len(self.stories)
        counts = ", ".join(f"{lang} {count}" for lang, count in self.language_counts())
        words = f"{n} new {'story' if n == 1 else 'stories'} — {self.rule.title}: {counts}"
        prefix = self.rule.spec.subject_prefix
        return one_line(f"{prefix} {words}" if prefix else words)


def build_digest(rule: Rule, articles: Sequence[Article],
                 limit: int | None = None) -> Digest | None:
    """The digest of `articles` (the rule's pending ones, oldest first), or None.

    Copies sharing a cluster_id fold into the story of the cluster's first article.
    The first `limit` (default: the rule's digest_limit) stories go in and the rest
    wait for the next digest: oldest first, so a busy topic delays a story but never
    starves one, and no story is dropped.
    """
    clusters: dict[str, list[Article]] = {}
    for article in articles:
        clusters.setdefault(article.cluster_id or article.id, []).append(article)
    stories = []
    for key, members in clusters.items():
        # the article that founded the cluster leads when it is among them
        members.sort(key=lambda a: a.id != key)
        lead, *copies = members
        # a rule without words of its own (`relevant:true`) highlights the topic's
        matched = rule.matched_terms(lead) or list(lead.matched_terms)
        stories.append(Story(lead, matched, copies))
    if not stories:
        return None
    limit = limit or rule.spec.digest_limit
    chosen = sorted(stories[:limit], key=_newest_first)
    return Digest(rule, chosen, waiting=max(0, len(stories) - limit))


def _newest_first(story: Story) -> tuple[bool, float]:
    published = story.article.published_at
    return (published is None, -published.timestamp() if published else 0.0)


def message_id(digest: Digest, sender: str) -> str:
    """Stable for this rule and this set of articles: were the same digest ever offered
    again, mail systems could recognise it as the message they already have."""
    key = "\n".join([digest.rule.name, *sorted(digest.article_ids)])
    domain = parseaddr(sender)[1].rpartition("@")[2]
    if not domain or not all(c.isalnum() or c in ".-" for c in domain):
        domain = "dozor.localhost"
    return f"<dozor.{hashlib.sha1(key.encode()).hexdigest()[:32]}@{domain}>"


def _story_view(story: Story, html_part: bool, ui_url: str) -> dict[str, object]:
    mark = HTML_MARK if html_part else TEXT_MARK
    original, english = story.snippets(mark, escape=html_part)
    wrap = Markup if html_part else str  # already escaped by snippet()
    a = story.article
    return {
        "title": story.title,
        "title_en": story.title_en,
        "lang": a.lang,
        "source": one_line(a.source_label),
        "date": story.date,
        "link": story.link,
        # its page in the analyst UI (the alerts file's ui_url)
        "page": f"{ui_url}/article/{quote(a.id, safe='')}" if ui_url else None,
        "snippet": wrap(original),
        "snippet_en": wrap(english) if english else None,
        "matched": [one_line(t) for t in story.matched],
        "also_in": [
            {"source": one_line(c.source_label), "lang": c.lang,
             "link": web_link(c)}
            for c in story.copies
        ],
        "change": _change_view(a.change),
    }


# what a revisit found, as the digest names it (pipelines.revisit)
EVENT_LABELS = {"edited": "edited", "title_changed": "headline changed",
                "date_changed": "date changed", "removed": "REMOVED", "restored": "restored"}


def _change_view(change: dict[str, Any] | None) -> dict[str, object] | None:
    """The article's latest change: its kinds, old and new title, the sentences removed
    and added, the share of the text changed, why it counts as removed."""
    if not change:
        return None
    return {
        "kinds": [EVENT_LABELS.get(k, k) for k in change.get("kinds", [])],
        "old_title": one_line(change.get("old_title") or ""),
        "new_title": one_line(change.get("new_title") or ""),
        "share": change.get("share"),
        "removed": [one_line(t) for t in change.get("removed_sentences", [])][:10],
        "added": [one_line(t) for t in change.get("added_sentences", [])][:10],
        "reason": change.get("reason") or "",
    }


def list_id(rule: str, title: str, sender: str) -> str:
    """RFC 2919: the rule as a list, named under the sender's domain, so mail filters
    can sort each rule's digests."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"{one_line(title)} <{rule}.dozor.{domain}>"


def render(digest: Digest, sender: str, now: datetime | None = None,
           repeat_of: str | None = None) -> EmailMessage:
    """The digest as a multipart/alternative email (text first, HTML preferred).

    `repeat_of`: the Message-ID of an earlier hand-over of these stories whose outcome
    is unknown; the message keeps it (a mail system holding that one can drop this one)
    and says it may be a repeat, in a header and in its body."""
    now = now or utcnow()
    context = {"subject": digest.subject, "rule": digest.rule.name,
               "possible_repeat": repeat_of is not None,
               "title": one_line(digest.rule.title), "waiting": digest.waiting,
               "counts": digest.language_counts()}
    # stories of the topic's possible tier (a rule with `possible: true`) come last, in
    # a section of their own
    sure = [s for s in digest.stories if not s.possible]
    possible = [s for s in digest.stories if s.possible]
    context["total"] = len(digest.stories)
    context["repeat_note"] = REPEAT_NOTE
    ui_url = digest.rule.ui_url
    context["search_url"] = digest.rule.search_url() if ui_url else None
    text = _templates.get_template("digest.txt.j2").render(
        stories=[_story_view(s, False, ui_url) for s in sure],
        possible=[_story_view(s, False, ui_url) for s in possible], **context)
    body = _templates.get_template("digest.html.j2").render(
        stories=[_story_view(s, True, ui_url) for s in sure],
        possible=[_story_view(s, True, ui_url) for s in possible], **context)

    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = digest.subject
    msg["From"] = one_line(sender)
    msg["To"] = ", ".join(one_line(addr) for addr in digest.rule.emails)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = repeat_of or message_id(digest, sender)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    msg["X-Dozor-Rule"] = digest.rule.name
    msg["List-Id"] = list_id(digest.rule.name, digest.rule.title, sender)
    # the From mailbox hears the request; whoever keeps the alerts file acts on it
    # (enabled: false, or the address removed from the rule's to:)
    address = parseaddr(sender)[1]
    subject = quote(f"unsubscribe {digest.rule.name}")
    msg["List-Unsubscribe"] = f"<mailto:{address}?subject={subject}>"
    if repeat_of is not None:
        msg[REPEAT_HEADER] = "yes"
    msg.set_content(text)
    msg.add_alternative(body, subtype="html")
    return msg

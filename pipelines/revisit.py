"""Revisits: what a stored article's page says when it is fetched again, and what changed.

After an article is first stored it is fetched again on a decaying schedule
(`settings.revisit.schedule`, default 1 h, 6 h, 24 h, 3 d and 7 d after its first fetch).
A 304 costs no extraction. A page that answers is extracted again and compared with the
stored article on what an analyst reads — its title, text and publication date — so
markup, ads and counters never make a version. A change records a new version (with the
WARC record of the answer that showed it) and its events: `edited` (with the share of
the text's words changed), `title_changed`, `date_changed`; a page that answers 404/410,
sends the reader to the home or a section page, or now says the article is gone, and a
deleted Telegram post, record `removed` (the last text is kept); a removed article that
answers again records `restored`. The article itself is updated to its current state,
which is what search and export show.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import courlan

from pipelines import extract, language, relevance
from pipelines.article import Article, RawPage
from pipelines.store.history import Event, RevisitTarget, Version
from pipelines.terms.normalisation import analyse

GONE_STATUSES = frozenset({404, 410})
# what a page that replaced its article says, in the languages Dozor reads; only looked
# for in a short text (a long article may well quote such a phrase). Stems, since the
# noun is declined ("Страница не найдена", "Сторінку не знайдено"), and one word may
# come between ("Статья была удалена", "The page you requested could not be found").
GONE_PHRASES = re.compile(
    r"\b(page|article|story|post|content)\s+(\w+\s+){0,2}?(not\s+found|could\s+not\s+be\s+found"
    r"|(has\s+been|was)\s+(removed|deleted|taken\s+down))"
    r"|\bno\s+longer\s+available"
    r"|\b(страниц|стать|материал|новост|публикаци|запис)\w*\s+(\w+\s+)?"
    r"(не\s+найден|удал[её]н|не\s+существует|больше\s+не\s+доступн|снят)"
    r"|\b(сторінк|статт|матеріал|новин|публікаці|запис)\w*\s+(\w+\s+)?"
    r"(не\s+знайден|видален|не\s+існує|більше\s+не\s+доступн|знят)",
    re.IGNORECASE,
)
GONE_TEXT_LIMIT = 600  # characters: longer texts are articles, not "gone" notices
_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")
_WORD = re.compile(r"\S+")


def due_at(first_seen: datetime, step: int, delays: Sequence[int]) -> datetime | None:
    """When revisit number `step` (from 0) is due; None once the schedule is done."""
    return first_seen + timedelta(seconds=delays[step]) if step < len(delays) else None


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def share_changed(old: str, new: str) -> float:
    """The share of the words of the two texts not in their longest common run."""
    a, b = words(old), words(new)
    if not a and not b:
        return 0.0
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    same = sum(block.size for block in matcher.get_matching_blocks())
    return round(1 - 2 * same / (len(a) + len(b)), 4)


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """The two texts as runs of words: ("same" | "removed" | "added", words)."""
    a, b = words(old), words(new)
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("same", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("removed", " ".join(a[i1:i2])))
        if j2 > j1:
            out.append(("added", " ".join(b[j1:j2])))
    return out


def sentence_diff(old: str, new: str) -> tuple[list[str], list[str]]:
    """The sentences of `old` no longer in `new`, and those `new` added."""
    a, b = sentences(old), sentences(new)
    kept_a, kept_b = set(b), set(a)
    return [s for s in a if s not in kept_a], [s for s in b if s not in kept_b]


def removal_reason(target: RevisitTarget, status: int, final_url: str, redirected: bool,
                   article: Article | None) -> str | None:
    """Why the answer says the article is gone, or None."""
    if status in GONE_STATUSES:
        return f"HTTP {status}"
    if redirected and final_url != target.url:
        path = urlsplit(final_url).path.strip("/")
        if not path or courlan.is_navigation_page(final_url) or path.count("/") == 0 and (
                "/" in urlsplit(target.url).path.strip("/")):
            return f"redirected to {final_url}"
    if article is not None and len(article.text) <= GONE_TEXT_LIMIT and GONE_PHRASES.search(
            f"{article.title}\n{article.text}"):
        return "the page says the article is gone"
    return None


def _body_words(text: str, titles: set[str]) -> list[str]:
    return words("\n".join(line for line in text.splitlines() if line.strip() not in titles))


def compare(old: Article, new: Article) -> tuple[list[str], list[Event]]:
    """What changed between the stored article and a fresh extraction of its page: the
    fields (title, text, published_at) and their events (not yet numbered)."""
    changed: list[str] = []
    events: list[Event] = []
    # a post's title is its text's opening: the text's change, not a headline's
    post = new.channel is not None
    if not post and old.title.strip() != new.title.strip():
        changed.append("title")
        events.append(Event(new.id, "title_changed", new.fetched_at,
                            detail={"old_title": old.title, "new_title": new.title}))
    # a headline repeated in the body is the title's change, not an edit of the text
    titles = set() if post else {old.title.strip(), new.title.strip()}
    if _body_words(old.text, titles) != _body_words(new.text, titles):
        changed.append("text")
        removed, added = sentence_diff(old.text, new.text)
        events.append(Event(new.id, "edited", new.fetched_at, detail={
            "share": share_changed(old.text, new.text),
            "removed_sentences": removed, "added_sentences": added}))
    if old.published_at != new.published_at and new.published_at is not None:
        changed.append("published_at")
        events.append(Event(new.id, "date_changed", new.fetched_at, detail={
            "old_date": old.published_at.isoformat() if old.published_at else None,
            "new_date": new.published_at.isoformat()}))
    return changed, events


@dataclass
class RevisitReport:
    checked: int = 0
    not_modified: int = 0
    unchanged: int = 0  # answered, extracted, no change in title, text or date
    changed: int = 0  # a new version
    removed: int = 0
    restored: int = 0
    failed: int = 0  # no answer (network error): tried again at the next step
    extracted: int = 0  # pages run through extraction
    bytes: int = 0  # response bodies received

    def line(self) -> str:
        return (f"revisits: {self.checked} checked, {self.not_modified} not modified (304), "
                f"{self.unchanged} unchanged, {self.changed} changed, {self.removed} removed, "
                f"{self.restored} restored, {self.failed} failed")


@dataclass
class Revisions:
    """Applies what each revisit found to the store."""

    store: Any  # History + ArticlesReader (pipelines.store)
    profile: relevance.TopicProfile
    delays: Sequence[int]
    languages: tuple[str, ...] = ("ru", "uk", "en")
    report: RevisitReport = field(default_factory=RevisitReport)

    def _reschedule(self, target: RevisitTarget, at: datetime, etag: str = "",
                    last_modified: str = "") -> None:
        # a late revisit skips the steps it overslept: one fetch, not a burst of them
        step = target.step + 1
        while (due := due_at(target.first_seen, step, self.delays)) is not None and due <= at:
            step += 1
        self.store.record_revisit(target.article_id, step, due, etag, last_modified, at)

    def not_modified(self, target: RevisitTarget, at: datetime) -> None:
        self.report.checked += 1
        self.report.not_modified += 1
        self._reschedule(target, at, target.etag, target.last_modified)

    def failed(self, target: RevisitTarget, at: datetime) -> None:
        self.report.checked += 1
        self.report.failed += 1
        self._reschedule(target, at, target.etag, target.last_modified)

    def answered(self, target: RevisitTarget, page: RawPage, redirected: bool = False,
                 etag: str = "", last_modified: str = "") -> None:
        """A page that answered (any status): extracted unless it says the article is gone."""
        self.report.checked += 1
        self.report.bytes += len(page.body)
        stored = self.store.get(target.article_id)
        if stored is None:
            return
        fresh = None
        if page.status == 200:
            self.report.extracted += 1
            # what the feed said when the article was found stands in for what the page
            # does not say, as it did then: its absence is no change
            page.feed_title = stored.title
            if stored.published_from in ("feed", "sitemap"):
                page.feed_published = stored.published_at
            page.source_lang = page.source_lang or stored.lang_hint
            fresh = extract.extract_page(page)
        reason = removal_reason(target, page.status, page.final_url, redirected, fresh)
        if reason is None and fresh is None:
            reason = "the page holds no article any more"
        if reason is not None:
            self._removed(stored, page.fetched_at, reason, page.warc_file, page.warc_record_id)
            self._reschedule(target, page.fetched_at)
            return
        assert fresh is not None
        self._compare(stored, fresh)
        self._reschedule(target, page.fetched_at, etag, last_modified)

    def post_deleted(self, target: RevisitTarget, at: datetime, warc_file: str | None,
                     warc_record_id: str | None) -> None:
        self.report.checked += 1
        stored = self.store.get(target.article_id)
        if stored is not None:
            self._removed(stored, at, "the post was deleted", warc_file, warc_record_id)
        self._reschedule(target, at)

    def post_seen(self, target: RevisitTarget, page: RawPage, edited: bool) -> None:
        self.report.checked += 1
        self.report.bytes += len(page.body)
        stored = self.store.get(target.article_id)
        if stored is None:
            return
        self.report.extracted += 1
        fresh = extract.extract_page(page)
        if fresh is not None:
            self._compare(stored, fresh, marked_edited=edited)
        self._reschedule(target, page.fetched_at)

    # --- changes -------------------------------------------------------------------------

    def _next_versions(self, stored: Article) -> tuple[list[Version], int]:
        """The first version (the stored article as first seen) when none is recorded yet,
        and the number the next version gets."""
        known = self.store.versions(stored.id)
        if known:
            return [], known[-1].version + 1
        return [Version.of(stored, 1)], 2

    def _removed(self, stored: Article, at: datetime, reason: str, warc_file: str | None,
                 warc_record_id: str | None) -> None:
        if stored.removed:
            self.report.unchanged += 1
            return
        self.report.removed += 1
        first, _ = self._next_versions(stored)
        event = Event(stored.id, "removed", at, detail={
            "reason": reason, "warc_file": warc_file, "warc_record_id": warc_record_id,
            "title": stored.title})
        updated = replace(stored, removed=True, events=_kinds(stored, ["removed"]),
                          change={"kind": "removed", "at": at.isoformat(), **event.detail})
        self.store.record_change(updated, first, [event])

    def _compare(self, stored: Article, fresh: Article, marked_edited: bool = False) -> None:
        changed, events = compare(stored, fresh)
        if stored.removed:
            events.insert(0, Event(stored.id, "restored", fresh.fetched_at,
                                   detail={"title": fresh.title}))
        if not changed and not stored.removed:
            self.report.unchanged += 1
            return
        first, number = self._next_versions(stored)
        versions = first
        if changed:
            versions = [*first, Version.of(fresh, number, changed)]
            for event in events:
                event.version = number
            self.report.changed += 1
        if stored.removed:
            self.report.restored += 1
        if marked_edited and "text" in changed:
            events[-1].detail["marked_edited"] = True
        current = self._current(stored, fresh) if changed else replace(stored)
        current.removed = False
        current.events = _kinds(stored, [e.kind for e in events])
        current.change = _summary(events)
        self.store.record_change(current, versions, events)

    def _current(self, stored: Article, fresh: Article) -> Article:
        """The stored record with the page's new title, text and date, its language,
        terms and relevance made again; its identity, cluster and first fetch kept."""
        current = replace(stored, title=fresh.title, text=fresh.text,
                          published_at=fresh.published_at or stored.published_at,
                          description=fresh.description or stored.description,
                          warc_file=fresh.warc_file, warc_record_id=fresh.warc_record_id,
                          views=fresh.views if fresh.views is not None else stored.views)
        if current.translation_status == "done":
            # the translation was of the old text: queued again for `dozor translate`
            current.translation_status = "pending"
            current.title_en = current.text_en = None
        current = language.detect([current], self.languages)[0]
        current = analyse([current])[0]
        return relevance.classify([current], self.profile)[0]


def _kinds(stored: Article, new: list[str]) -> list[str]:
    return sorted({*stored.events, *new})


def _summary(events: list[Event]) -> dict[str, Any]:
    """The latest change, as the digest and the UI show it."""
    out: dict[str, Any] = {"kinds": [e.kind for e in events],
                           "at": events[0].at.isoformat() if events else None}
    for event in events:
        out.update(event.detail)
    return out

"""Positional matching of query terms against normalised text.

A query term (a word, a wildcard or a phrase with a slop) becomes a `Pattern` of
`Slot`s; a text becomes a `TermDoc` (the positions of every normalised term). Phrases
follow Lucene's sloppy-phrase rule, so SQLite and rule matching agree with
Elasticsearch's match_phrase.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pipelines.errors import DozorError
from pipelines.terms.normalisation import (
    MIN_EXPANDED_PREFIX,
    QUERY_TOKEN_RE,
    clean,
    fold,
    query_forms,
    wildcard_forms,
    wildcard_prefix,
    wildcard_regex,
    wildcard_words,
)

__all__ = ["Pattern", "Slot", "TermDoc", "TermError", "term_doc", "wildcard_regex"]


@dataclass(frozen=True)
class Slot:
    """One word position of a query term: a set of normalised forms, or a wildcard.

    A wildcard matches the normalised terms it fits and, beside them, `forms`
    (`wildcard_forms`: ``mobiliz*`` also matches the stem ``mobil``). Both backends
    match exactly these."""

    forms: frozenset[str] = frozenset()
    glob: str | None = None  # wildcard over normalised terms (lower-cased, ё -> е)

    @classmethod
    def wildcard(cls, word: str) -> Slot:
        glob = fold(word)
        return cls(wildcard_forms(glob), glob)

    def can_match(self) -> bool:
        """False for a wildcard that fits no word Dozor knows (a text could hold a term
        it fits only by chance); a short prefix is taken to match."""
        if self.glob is None or self.forms:
            return True
        return (len(wildcard_prefix(self.glob)) < MIN_EXPANDED_PREFIX
                or bool(wildcard_words(self.glob)))


class TermError(DozorError, ValueError):
    """A query term that cannot be searched (no word in it, wildcard in a phrase)."""


@dataclass(frozen=True)
class Pattern:
    """A query term: one slot (word or wildcard) or a phrase of slots with a slop."""

    slots: tuple[Slot, ...]
    slop: int = 0

    @classmethod
    def from_text(cls, text: str, slop: int = 0, phrase: bool = False) -> Pattern:
        """`text` is a query word (``колонии``, ``вербов*``, ``Шторм-Z``) or, with
        `phrase`, the inside of a quoted phrase."""
        words = [w for w in (clean(m.group()) for m in QUERY_TOKEN_RE.finditer(text)) if w]
        if not words:
            raise TermError(f"{text!r} contains no word to search for")
        slots = []
        for word in words:
            if "*" in word or "?" in word:
                slots.append(Slot.wildcard(word))
            else:
                slots.append(Slot(forms=query_forms(word)))
        if len(slots) > 1 and any(s.glob for s in slots):
            where = "a phrase" if phrase else "a hyphenated word"
            raise TermError(f"{text!r}: a wildcard cannot be part of {where}")
        return cls(tuple(slots), slop)

    def occurrences(self, doc: TermDoc) -> Iterator[tuple[int, ...]]:
        """Token positions where this term occurs in `doc`.

        Phrase semantics are Lucene's sloppy phrase (what Elasticsearch's match_phrase
        does): positions p_i, all different, with max(p_i - i) - min(p_i - i) <= slop.
        """
        positions = [doc.positions(slot) for slot in self.slots]
        if any(not p for p in positions):
            return
        if len(positions) == 1:
            for p in positions[0]:
                yield (p,)
            return
        for low in sorted({p - i for i, ps in enumerate(positions) for p in ps}):
            choices = []
            for i, ps in enumerate(positions):
                lo, hi = bisect_left(ps, low + i), bisect_right(ps, low + i + self.slop)
                if lo == hi:
                    break
                choices.append(ps[lo:hi])
            else:
                found = _distinct(choices, ())
                if found is not None:
                    yield found

    def found_in(self, doc: TermDoc) -> bool:
        if len(self.slots) == 1:
            return doc.has(self.slots[0])
        return next(self.occurrences(doc), None) is not None


def _distinct(choices: list[list[int]], chosen: tuple[int, ...]) -> tuple[int, ...] | None:
    """One position per slot, no position used twice (a repeated word needs two tokens)."""
    if len(chosen) == len(choices):
        return chosen
    for p in choices[len(chosen)]:
        if p not in chosen:
            found = _distinct(choices, (*chosen, p))
            if found is not None:
                return found
    return None


class TermDoc:
    """A token sequence prepared for matching: positions of every term."""

    def __init__(self, terms: Sequence[str]) -> None:
        self.terms = tuple(terms)
        self._positions: dict[str, list[int]] = {}
        self._present: frozenset[str] | None = None
        self._globs: dict[str, list[str]] = {}

    @property
    def present(self) -> frozenset[str]:
        """The distinct terms: all a word or wildcard asks (a set is built at C speed,
        the positions only for phrases)."""
        if self._present is None:
            self._present = frozenset(self.terms)
        return self._present

    def _term_positions(self, term: str) -> list[int]:
        """Where `term` stands: found by `tuple.index` (a scan at C speed) and kept,
        as a phrase asks a handful of terms of a text of hundreds."""
        found = self._positions.get(term)
        if found is None:
            found = []
            if term in self.present:
                terms, pos = self.terms, -1
                try:
                    while True:
                        pos = terms.index(term, pos + 1)
                        found.append(pos)
                except ValueError:
                    pass
            self._positions[term] = found
        return found

    def _terms_of(self, slot: Slot) -> list[str]:
        """The distinct terms of this document that `slot` accepts."""
        if slot.glob is None:
            return [form for form in slot.forms if form in self.present]
        found = self._globs.get(slot.glob)
        if found is None:
            rx = wildcard_regex(slot.glob)
            found = [t for t in self.present if rx.fullmatch(t)]
            found += [form for form in slot.forms if form in self.present]
            self._globs[slot.glob] = found
        return found

    def has(self, slot: Slot) -> bool:
        return bool(self._terms_of(slot))

    def positions(self, slot: Slot) -> list[int]:
        return sorted(p for term in self._terms_of(slot) for p in self._term_positions(term))


@lru_cache(maxsize=128)
def term_doc(terms: str) -> TermDoc:
    """The `TermDoc` of an article's space-joined `terms` (cached: many rules, one article)."""
    return TermDoc(terms.split())


_SLOP_RE = re.compile(r'^"(?P<phrase>.*)"(?:~(?P<slop>\d+))?$', re.DOTALL)


def term_pattern(term: str) -> Pattern:
    """The pattern of one query term as stored in `Article.matched_terms`:
    ``колонии``, ``вербов*``, ``Шторм-Z`` or ``"контракт с Минобороны"~2``."""
    m = _SLOP_RE.match(term.strip())
    if m:
        return Pattern.from_text(m["phrase"], int(m["slop"] or 0), phrase=True)
    return Pattern.from_text(term)

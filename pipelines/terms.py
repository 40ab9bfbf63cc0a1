"""Normalised terms: the one place where words become what both backends index.

Every text field of an article becomes a list of normalised tokens:

* Tokens are Unicode words (letters and digits). An apostrophe between letters stays
  inside the word (Ukrainian ``ув’язнені``, ``ув'язнені`` and ``увʼязнені`` are the same
  word, written with ASCII ``'``). Every other character separates words, hyphens
  included: ``Шторм-Z``, ``Шторм Z`` and ``Шторм–Z`` all give ``шторм z``; a hyphenated
  query word is searched as a phrase of its parts, so both sides agree.
* Lower case; combining stress marks, soft hyphens and zero-width characters removed.
* **ё is folded to е on both sides** (text and queries): Russian news writes ё
  inconsistently (``осуждённые`` / ``осужденные``), and the fold merges no two words an
  analyst would want apart. й/и, ї/і, є/е, ґ/г are never folded.
* Cyrillic words are lemmatised with pymorphy3: by the article's language (``ru`` or
  ``uk``); in an article of any other language, by the text's letters (і ї є ґ mean
  Ukrainian, else Russian). Participles keep their own lemma (``заключённые`` ->
  ``заключенный``, not ``заключить``), so "prisoners" and "signed" stay apart.
* Latin words are stemmed with the Snowball English stemmer; anything else (digits,
  other scripts) is kept lower-cased.

A text gets one normalised token per word, so positions (and phrases) are preserved.
A query word gets every normalised form its inflections could have in a text
(`query_forms`), because a text's word was lemmatised without knowing the query.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import pymorphy3
import snowballstemmer

from pipelines.article import Article

# Characters that may sit inside a word without splitting it: combining marks (stress
# accents, decomposed й), soft hyphen and zero-width joiners; they are removed later.
_INWORD = "\u0300-\u036f\u00ad\u200b-\u200d\u2060"
_APOSTROPHES = "'\u2019\u2018\u02bc\u02b9`"
_WORD = rf"(?:[^\W_]+|[{_INWORD}]+)+"
TOKEN_RE = re.compile(rf"{_WORD}(?:[{_APOSTROPHES}]{_WORD})*")
# In a query word * and ? are wildcards and belong to the word.
_QWORD = rf"(?:[^\W_]+|[{_INWORD}*?]+)+"
QUERY_TOKEN_RE = re.compile(rf"{_QWORD}(?:[{_APOSTROPHES}]{_QWORD})*")

_APOSTROPHE_FOLD = str.maketrans({c: "'" for c in _APOSTROPHES} | {"ё": "е"})
_DROP_RE = re.compile(rf"[{_INWORD}]")
_CYRILLIC_RE = re.compile("[\u0400-\u04ff]")
_LATIN_RE = re.compile("[a-z\u00df-\u024f]")
_UKRAINIAN_LETTERS_RE = re.compile("[іїєґІЇЄҐ]")
_RUSSIAN_LETTERS_RE = re.compile("[ыэъЫЭЪ]")  # ё is folded before this is asked
_PARTICIPLE = frozenset({"PRTF", "PRTS"})
_PARTICIPLE_LEMMA = frozenset({"PRTF", "sing", "masc", "nomn"})
MORPH_LANGS = ("ru", "uk")


@cache
def _morph(lang: str) -> pymorphy3.MorphAnalyzer:
    return pymorphy3.MorphAnalyzer(lang=lang)


_local = threading.local()


def _stemmer() -> snowballstemmer.stemmer:
    # a Snowball stemmer keeps state while it works: one per thread
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    return stemmer


def _clean(word: str) -> str:
    """Surface clean-up shared by text and query words (before any dictionary look-up)."""
    word = unicodedata.normalize("NFC", word)
    word = _DROP_RE.sub("", word)  # what NFC could not compose is a stress mark
    return word.lower().translate(_APOSTROPHE_FOLD).strip("'")


def _fold(lemma: str) -> str:
    return lemma.replace("ё", "е")


def _parse_lemma(parse: pymorphy3.analyzer.Parse) -> str:
    if _PARTICIPLE & parse.tag.grammemes:
        form = parse.inflect(_PARTICIPLE_LEMMA)
        if form is not None:
            return _fold(form.word)
    return _fold(parse.normal_form)


@lru_cache(maxsize=200_000)
def _lemma(word: str, lang: str) -> str:
    """The most probable lemma of a cleaned Cyrillic word."""
    parses = _morph(lang).parse(word)
    return _parse_lemma(parses[0]) if parses else word


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def _cyrillic_lang(text: str, lang: str | None) -> str:
    if lang in MORPH_LANGS:
        return lang
    return "uk" if _UKRAINIAN_LETTERS_RE.search(text) else "ru"


def _normal(word: str, cyr_lang: str) -> str:
    """One cleaned word -> its normalised term."""
    if _CYRILLIC_RE.search(word):
        return _lemma(word, cyr_lang)
    if _LATIN_RE.search(word):
        return _stem(word)
    return word


@dataclass(frozen=True, slots=True)
class Token:
    start: int
    end: int
    term: str  # normalised


@lru_cache(maxsize=200_000)
def _term(raw: str, cyr_lang: str) -> str:
    """A word as found in a text -> its normalised term ("" if nothing is left)."""
    word = _clean(raw)
    return _normal(word, cyr_lang) if word else ""


def tokens(text: str, lang: str | None) -> list[Token]:
    """Normalised tokens with their character spans in `text`."""
    cyr_lang = _cyrillic_lang(text, lang)
    out = []
    for m in TOKEN_RE.finditer(text):
        term = _term(m.group(), cyr_lang)
        if term:
            out.append(Token(m.start(), m.end(), term))
    return out


def normalise(text: str, lang: str | None) -> list[str]:
    """The normalised terms of `text` written in `lang` (ru, uk, en, other or None)."""
    if not text:
        return []
    cyr_lang = _cyrillic_lang(text, lang)
    terms = [_term(word, cyr_lang) for word in TOKEN_RE.findall(text)]
    return [t for t in terms if t]


def analyse(articles: list[Article]) -> list[Article]:
    """Fill `article.terms`: title and text in the article's language, then the English
    translation (if any) as English, space-joined in that order."""
    for article in articles:
        parts = normalise(article.title, article.lang) + normalise(article.text, article.lang)
        parts += normalise(article.title_en or "", "en") + normalise(article.text_en or "", "en")
        article.terms = " ".join(parts)
    return articles


# --- query side --------------------------------------------------------------------


@lru_cache(maxsize=20_000)
def query_forms(word: str) -> frozenset[str]:
    """Every normalised term a text may hold for an inflected form of `word`.

    A Cyrillic word is read in Russian and in Ukrainian (unless its letters belong to
    one only); for each dictionary reading, every form of its lexeme is lemmatised the
    way a text would be, so ``колонии`` yields ``колония`` and ``Пригожин`` also yields
    ``пригожина`` (pymorphy's first reading of the genitive ``Пригожина``). Readings
    as an abbreviation, and words a dictionary does not know, add only the lemma of
    the word itself. Latin words give their English stem.
    """
    word = _clean(word)
    if not word:
        return frozenset()
    if not _CYRILLIC_RE.search(word):
        return frozenset({_normal(word, "ru")})
    forms: set[str] = set()
    for lang in _possible_langs(word):
        morph = _morph(lang)
        forms.add(_lemma(word, lang))  # this very form, as a text in `lang` holds it
        if not morph.word_is_known(word):
            continue  # guessed readings have guessed lexemes: no inflections from them
        for parse in morph.parse(word):
            if "Abbr" in parse.tag:
                continue  # "к" as an abbreviation of "как" would match every "как"
            lemma = _parse_lemma(parse)
            forms.add(lemma)
            # a verb's lexeme holds its participles: "воевать" finds "воевавших"; a
            # participle keeps to its own forms: "заключенные" never finds "заключили"
            participle = bool(_PARTICIPLE & parse.tag.grammemes)
            for form in parse.lexeme:
                if not participle or _parse_lemma(form) == lemma:
                    forms.add(_lemma(_clean(form.word), lang))
    return frozenset(forms)


def _possible_langs(word: str) -> tuple[str, ...]:
    if _UKRAINIAN_LETTERS_RE.search(word):
        return ("uk",)
    if _RUSSIAN_LETTERS_RE.search(word):
        return ("ru",)
    return MORPH_LANGS


@lru_cache(maxsize=4096)
def wildcard_regex(glob: str) -> re.Pattern[str]:
    """`*` any run of characters, `?` exactly one; everything else literal."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                              for c in glob), re.DOTALL)


@dataclass(frozen=True)
class Slot:
    """One word position of a query term: a set of normalised forms, or a wildcard."""

    forms: frozenset[str] = frozenset()
    glob: str | None = None  # wildcard over normalised terms (lower-cased, ё -> е)


class TermError(ValueError):
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
        words = [w for w in (_clean(m.group()) for m in QUERY_TOKEN_RE.finditer(text)) if w]
        if not words:
            raise TermError(f"{text!r} contains no word to search for")
        slots = []
        for word in words:
            if "*" in word or "?" in word:
                slots.append(Slot(glob=_fold(word)))
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
        self._index: dict[str, list[int]] | None = None
        self._globs: dict[str, list[str]] = {}

    @property
    def index(self) -> dict[str, list[int]]:
        # built on first use: a query of field filters alone never needs it
        if self._index is None:
            self._index = {}
            for pos, term in enumerate(self.terms):
                self._index.setdefault(term, []).append(pos)
        return self._index

    def _terms_of(self, slot: Slot) -> list[str]:
        """The distinct terms of this document that `slot` accepts."""
        if slot.glob is None:
            return [form for form in slot.forms if form in self.index]
        found = self._globs.get(slot.glob)
        if found is None:
            rx = wildcard_regex(slot.glob)
            found = self._globs[slot.glob] = [t for t in self.index if rx.fullmatch(t)]
        return found

    def has(self, slot: Slot) -> bool:
        return bool(self._terms_of(slot))

    def positions(self, slot: Slot) -> list[int]:
        return sorted(p for term in self._terms_of(slot) for p in self.index[term])


@lru_cache(maxsize=128)
def term_doc(terms: str) -> TermDoc:
    """The `TermDoc` of an article's space-joined `terms` (cached: many rules, one article)."""
    return TermDoc(terms.split())


# --- snippets ----------------------------------------------------------------------

_SLOP_RE = re.compile(r'^"(?P<phrase>.*)"(?:~(?P<slop>\d+))?$', re.DOTALL)


def term_pattern(term: str) -> Pattern:
    """The pattern of one query term as stored in `Article.matched_terms`:
    ``колонии``, ``вербов*``, ``Шторм-Z`` or ``"контракт с Минобороны"~2``."""
    m = _SLOP_RE.match(term.strip())
    if m:
        return Pattern.from_text(m["phrase"], int(m["slop"] or 0), phrase=True)
    return Pattern.from_text(term)


def snippet(
    text: str,
    lang: str | None,
    matched_terms: Iterable[str],
    width: int = 240,
    mark: tuple[str, str] = ("[", "]"),
    escape: Callable[[str], str] | None = None,
) -> str:
    """The passage of about `width` characters of `text` with the most matched terms,
    each matched word wrapped in `mark`.

    `matched_terms` are query terms (as in `Article.matched_terms`); they match the
    text exactly as the query matched the article. For HTML pass
    ``mark=("<mark>", "</mark>"), escape=html.escape``: the text is escaped, the marks
    are not. Whitespace runs become one space.
    """
    esc = escape or (lambda s: s)
    toks = tokens(text, lang)
    doc = TermDoc([t.term for t in toks])
    hits: dict[int, int] = {}  # token index -> index of the pattern it belongs to
    for n, term in enumerate(dict.fromkeys(matched_terms)):
        try:
            pattern = term_pattern(term)
        except TermError:
            continue
        for occurrence in pattern.occurrences(doc):
            for p in occurrence:
                hits.setdefault(p, n)
    start, end = _best_window(text, toks, hits, width)
    out = ["…" if start > 0 else ""]
    cursor = start
    for i, tok in enumerate(toks):
        if i in hits and start <= tok.start and tok.end <= end:
            out.append(esc(_squash(text[cursor:tok.start])))
            out.append(mark[0] + esc(text[tok.start:tok.end]) + mark[1])
            cursor = tok.end
    out.append(esc(_squash(text[cursor:end])))
    out.append("…" if end < len(text.rstrip()) else "")
    return "".join(out).strip()


# marks no text contains: they tell whether a passage holds a match, whatever brackets
# (or, escaped, markup) the text itself has
_PROBE = ("\x02", "\x03")


def article_snippet(
    article: Article,
    matched_terms: Iterable[str],
    mark: tuple[str, str] = ("[", "]"),
    escape: Callable[[str], str] | None = None,
) -> str:
    """`snippet` of the article's original text around the matches, or of its English
    text when the matches are only there (an English query over a translated article).
    `mark` and `escape` as for `snippet`."""
    terms = list(matched_terms)
    original = snippet(article.text or article.title, article.lang, terms, mark=_PROBE,
                       escape=escape)
    if _PROBE[0] not in original and article.text_en:
        english = snippet(article.text_en, "en", terms, mark=_PROBE, escape=escape)
        if _PROBE[0] in english:
            original = english
    return original.replace(_PROBE[0], mark[0]).replace(_PROBE[1], mark[1])


def _squash(s: str) -> str:
    return re.sub(r"\s+", " ", s)


def _best_window(text: str, toks: list[Token], hits: dict[int, int],
                 width: int) -> tuple[int, int]:
    """Character span of the window (word-aligned) with the most distinct matched
    terms, then the most matched words; the text's start when nothing matched."""
    if not toks:
        return 0, min(len(text), width)
    order = sorted(hits)
    hit_starts = [toks[j].start for j in order]
    best, best_key = 0, (-1, -1)
    for i in order or [0]:
        # start a little before the first hit so it reads in context
        first = i
        while first > 0 and toks[i].start - toks[first - 1].start < width // 5:
            first -= 1
        begin = toks[first].start
        inside = [j for j in order[bisect_left(hit_starts, begin):
                                   bisect_right(hit_starts, begin + width)]
                  if toks[j].end <= begin + width]
        key = (len({hits[j] for j in inside}), len(inside))
        if key > best_key:
            best, best_key = first, key
    start = toks[best].start if best > 0 else 0
    last = best
    while last + 1 < len(toks) and toks[last + 1].end - start <= width:
        last += 1
    return start, toks[last].end

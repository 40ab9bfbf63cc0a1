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
(`query_forms`), because a text's word was lemmatised without knowing the query. A
wildcard means the words written that way (`wildcard_forms`): ``mobiliz*`` finds
mobilization, whose stem is ``mobil``, and ``вербу*`` finds ``вербуют`` (lemma
``вербовать``), not only the normalised terms that begin with what was written.

Matching these terms is `pipelines.terms.matching`; passages around them are
`pipelines.terms.snippets`.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import cache, lru_cache
from itertools import repeat

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
# Bumped whenever a change here gives a text other terms (tokenising, folding, lemmas,
# stems): stored terms are then stale (pipelines.process.DERIVED_VERSION).
TERMS_VERSION = 1


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


def clean(word: str) -> str:
    """Surface clean-up shared by text and query words (before any dictionary look-up)."""
    word = unicodedata.normalize("NFC", word)
    word = _DROP_RE.sub("", word)  # what NFC could not compose is a stress mark
    return word.lower().translate(_APOSTROPHE_FOLD).strip("'")


def fold(lemma: str) -> str:
    return lemma.replace("ё", "е")


def _parse_lemma(parse: pymorphy3.analyzer.Parse) -> str:
    if _PARTICIPLE & parse.tag.grammemes:
        form = parse.inflect(_PARTICIPLE_LEMMA)
        if form is not None:
            return fold(form.word)
    return fold(parse.normal_form)


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


@lru_cache(maxsize=200_000)
def _term(raw: str, cyr_lang: str) -> str:
    """A word as found in a text -> its normalised term ("" if nothing is left)."""
    word = clean(raw)
    return _normal(word, cyr_lang) if word else ""


def tokens(text: str, lang: str | None) -> tuple[list[re.Match[str]], list[str]]:
    """The words of `text` that have a normalised term: their matches (character spans)
    and their terms, in order. Matches rather than an object per word: a snippet asks
    this of every hit's whole text and reads the spans of a few words only."""
    cyr_lang = _cyrillic_lang(text, lang)
    found = list(TOKEN_RE.finditer(text))
    terms = list(map(_term, [m.group() for m in found], repeat(cyr_lang)))
    if "" in terms:  # a word of stress marks alone, say
        found = [m for m, term in zip(found, terms, strict=True) if term]
        terms = [term for term in terms if term]
    return found, terms


def normalise(text: str, lang: str | None) -> list[str]:
    """The normalised terms of `text` written in `lang` (ru, uk, en, other or None)."""
    if not text:
        return []
    terms = list(map(_term, TOKEN_RE.findall(text), repeat(_cyrillic_lang(text, lang))))
    return [t for t in terms if t] if "" in terms else terms


def analyse(articles: list[Article]) -> list[Article]:
    """Fill `article.terms`: title and text in the article's language, then the English
    translation (if any) as English, space-joined in that order."""
    for article in articles:
        parts = normalise(article.title, article.lang) + normalise(article.text, article.lang)
        parts += normalise(article.title_en or "", "en") + normalise(article.text_en or "", "en")
        article.terms = " ".join(parts)
    return articles


@lru_cache(maxsize=64)
def _scope(first: str, lang: str, english: str) -> str:
    # cached on the texts: many rules ask the same article in turn
    return " ".join(normalise(first, lang) + normalise(english, "en"))


def title_terms(article: Article) -> str:
    """Normalised terms of the original and English titles (what ``title:`` searches)."""
    return _scope(article.title or "", article.lang, article.title_en or "")


def text_terms(article: Article) -> str:
    """Normalised terms of the original and English bodies (what ``text:`` searches)."""
    return _scope(article.text or "", article.lang, article.text_en or "")


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
    word = clean(word)
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
                    forms.add(_lemma(clean(form.word), lang))
    return frozenset(forms)


@lru_cache(maxsize=4096)
def wildcard_regex(glob: str) -> re.Pattern[str]:
    """`*` any run of characters, `?` exactly one; everything else literal."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                              for c in glob), re.DOTALL)


# Endings English words take, for the words a Latin wildcard stands for: Snowball turns
# them into stems shorter than what was written (mobiliz-ation -> "mobil").
_ENGLISH_ENDINGS = (
    "", "s", "es", "e", "ed", "d", "ing", "er", "ers", "or", "ors", "ion", "ions", "ation",
    "ations", "ment", "ments", "al", "ally", "ly", "ity", "ities", "ive", "ives", "ness",
    "able", "ible", "ism", "ist", "ists", "ize", "ized", "izes", "izing", "ise", "ised",
    "ising", "ization", "isation", "y", "ies", "ied", "ee", "ees", "ency", "ence", "ance",
    "ant", "ants", "ent", "ents", "ous", "ful", "less", "ship", "ary", "ery", "ate", "ated",
)
_CYRILLIC_ENDINGS = ("", "а", "ы", "у", "ом", "ов", "е", "и", "я", "ой", "ий", "ый")
# Dictionary words read per language for one Cyrillic wildcard: a prefix that begins
# more words than this is short enough that its lemmas begin with it too.
MAX_WILDCARD_WORDS = 5000
MIN_EXPANDED_PREFIX = 3


@lru_cache(maxsize=4096)
def wildcard_words(glob: str) -> frozenset[str]:
    """The normalised terms of the words `glob` (a cleaned, ё-folded query word with *
    or ?) stands for, as a text holds them: Cyrillic words from the pymorphy3
    dictionaries (ё restored where the dictionary writes it), Latin words as the
    written prefix with each English ending. Empty when no such word is known, and for
    a prefix shorter than MIN_EXPANDED_PREFIX (it is broad enough as it is)."""
    surface = wildcard_regex(glob)
    prefix = wildcard_prefix(glob)
    if len(prefix) < MIN_EXPANDED_PREFIX:
        return frozenset()
    if not _CYRILLIC_RE.search(glob):
        words = (prefix + ending for ending in _ENGLISH_ENDINGS)
        return frozenset(_stem(w) for w in words if surface.fullmatch(w))
    found: set[str] = set()
    for lang in _possible_langs(glob):
        dictionary = _morph(lang).dictionary.words
        seen = 0
        for start in _yo_variants(prefix):
            for word in dictionary.iterkeys(start):
                seen += 1
                if seen > MAX_WILDCARD_WORDS:
                    break
                if surface.fullmatch(fold(word)):
                    found.add(_lemma(word, lang))
    if not found:
        # a name or a new word: what pymorphy3 guesses for the prefix and a few endings
        for lang in _possible_langs(glob):
            found.update(_lemma(w, lang) for w in (prefix + e for e in _CYRILLIC_ENDINGS)
                         if surface.fullmatch(w))
    return frozenset(found)


@lru_cache(maxsize=4096)
def wildcard_forms(glob: str) -> frozenset[str]:
    """The terms a wildcard matches beside those it fits: the normalised terms of the
    words it stands for that it does not fit. English stems are often shorter than
    the written prefix (``mobiliz*``: ``mobil``), so they are always added. A Russian
    or Ukrainian lemma is a whole word, which the wildcard fits unless the prefix runs
    into a changing stem (``вербую*``: ``вербовать``): lemmas are added only when the
    wildcard fits none of them, since each one also brings the forms that are written
    otherwise (every form of ``вербовать``)."""
    rx = wildcard_regex(glob)
    words = wildcard_words(glob)
    unfit = frozenset(t for t in words if not rx.fullmatch(t))
    if _CYRILLIC_RE.search(glob) and len(unfit) < len(words):
        return frozenset()
    return unfit


def wildcard_prefix(glob: str) -> str:
    """The letters of a wildcard before its first * or ?."""
    return re.split(r"[*?]", glob, maxsplit=1)[0]


def _yo_variants(prefix: str) -> list[str]:
    """`prefix` with each е also read as ё (the dictionaries keep ё; queries fold it)."""
    variants = [""]
    for c in prefix:
        variants = [v + x for v in variants for x in (("е", "ё") if c == "е" else (c,))]
        if len(variants) > 16:
            return [prefix]
    return variants


def _possible_langs(word: str) -> tuple[str, ...]:
    if _UKRAINIAN_LETTERS_RE.search(word):
        return ("uk",)
    if _RUSSIAN_LETTERS_RE.search(word):
        return ("ru",)
    return MORPH_LANGS

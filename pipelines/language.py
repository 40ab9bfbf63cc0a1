"""Language of each article, from its extracted text.

langdetect scores every language it knows; we keep the configured ones, renormalise
over them, and call the article "other" when most of the evidence points elsewhere or
there is too little text to judge. What the page or feed claims (`html_lang`,
`lang_hint`) is a weak prior: it settles a near tie between, say, Russian and
Ukrainian, and nothing more — CMSs routinely label Ukrainian pages `lang="ru"`.
"""

from __future__ import annotations

import functools
import logging
import math
import re

import numpy as np
from langdetect.detector import Detector
from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import ErrorCode, LangDetectException
from langdetect.utils.ngram import NGram

from pipelines.article import Article

log = logging.getLogger(__name__)

OTHER = "other"

# Fewer letters than this and langdetect's answer is noise (a headline or a post's line
# of three words has 15-20; bench/short_language.py measures where it starts to fail).
MIN_LETTERS = 15
# Below this many letters of body text the description is added to the sample.
SHORT_TEXT_LETTERS = 200
# What langdetect reads of an article: its cost grows with the text (every character
# becomes three n-grams) while its answer settles within a few hundred words; the
# opening (headline, lead) is as accurate as the whole article on the shared pages, the
# coverage set and short texts, at a fraction of the cost (bench/language_cost.py).
MAX_SAMPLE_CHARS = 1_500
# Share of langdetect's probability that must fall on configured languages; below it the
# text is in some other language.
MIN_CONFIGURED_MASS = 0.5
# Likelihood ratio one hint is worth. langdetect averages 7 runs that each settle on one
# language, so its scores move in sevenths: 1.5 flips a 4:3 split, and two agreeing hints
# (2.25) still cannot outvote 5:2.
HINT_WEIGHT = 1.5

# Letters one of the two Cyrillic languages has and the other lacks. langdetect reads
# character n-grams and, on a line or two, often misses them: a short Ukrainian post
# comes out Russian or Bulgarian. Each occurrence is worth LETTER_WEIGHT to its side
# (a Ukrainian text has ~6 in 100 letters, a Russian one ~2.5; the other side none).
# ъ is left out: Bulgarian writes it constantly.
UK_LETTERS = frozenset("іїєґІЇЄҐ")
RU_LETTERS = frozenset("ыэёЫЭЁ")
LETTER_WEIGHT = 4.0
OTHER_CYRILLIC = ("bg", "mk", "sr", "be")
# the script evidence is capped so a quoted word cannot outweigh a text of its own
MAX_LETTER_RATIO = 1e6
_MAX_LETTER_EXCESS = math.ceil(math.log(MAX_LETTER_RATIO, LETTER_WEIGHT))
# A channel's usual language (`usual_language` of its posts) is worth one such letter to a
# short post that has none: it settles what langdetect cannot tell apart on a line (a
# Ukrainian line without і/ї/є/ґ reads as Macedonian or Russian), never clear letters.
PRIOR_WEIGHT = LETTER_WEIGHT
# the share of the distinctive letters one side must have for a channel to have a language
USUAL_SHARE = 0.8
MIN_USUAL_LETTERS = 5

# Codes pages use that are not the language's ISO 639-1 code.
_ALIASES = {"ua": "uk", "ukr": "uk", "rus": "ru", "eng": "en"}
_CODE = re.compile(r"[a-z]{2,3}")


def normalise_code(code: str | None) -> str | None:
    """Primary language subtag of a declared language: "ru-RU", "uk_UA", "UA" -> ru, uk, uk."""
    if not code:
        return None
    primary = re.split(r"[-_\s,;]", code.strip().lower(), maxsplit=1)[0]
    primary = _ALIASES.get(primary, primary)
    return primary if _CODE.fullmatch(primary) else None


@functools.cache
def _factory() -> DetectorFactory:
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.seed = 0  # langdetect samples n-grams at random; a fixed seed makes it repeatable
    return factory


def detect(articles: list[Article], languages: tuple[str, ...]) -> list[Article]:
    """Set `lang` and `lang_confidence` on every article (in place) and return them."""
    configured = tuple(dict.fromkeys(c for c in map(normalise_code, languages) if c))
    for article in articles:
        article.lang, article.lang_confidence = classify(
            sample_text(article),
            configured,
            hints=(normalise_code(article.lang_hint),) if article.channel
            else (normalise_code(article.html_lang), normalise_code(article.lang_hint)),
            # a post's html_lang is its channel's usual language (pipelines.telegram)
            prior=normalise_code(article.html_lang) if article.channel else None,
        )
    return articles


def sample_text(article: Article) -> str:
    parts = [article.title, article.text]
    if _letters(article.text[: 2 * SHORT_TEXT_LETTERS]) < SHORT_TEXT_LETTERS:
        parts.insert(1, article.description)
    return "\n".join(p for p in parts if p)[:MAX_SAMPLE_CHARS]


def classify(
    text: str, languages: tuple[str, ...], hints: tuple[str | None, ...] = (),
    prior: str | None = None,
) -> tuple[str, float]:
    """(language, confidence) of `text` among `languages`, or ("other", share elsewhere).

    `prior` (ru or uk, what the text's channel usually writes) counts only on a short
    text without the letters that tell the two apart."""
    if not languages:
        return OTHER, 0.0
    ratio = cyrillic_ratio(text)  # uk : ru odds from the letters only one of them has
    decisive = ratio != 1.0 and {"ru", "uk"} & set(languages)
    if _letters(text) < (MIN_LETTERS // 2 if decisive else MIN_LETTERS):
        return OTHER, 0.0
    scores = text_probabilities(text)
    if not scores:
        return OTHER, 0.0
    configured = {lang: scores.get(lang, 0.0) for lang in languages}
    mass = sum(configured.values())
    side = "uk" if ratio > 1 else "ru"
    if decisive and side in configured:
        # the letters say Russian or Ukrainian: what langdetect gave another Cyrillic
        # language on a few words goes to the side they name, then their odds apply
        configured[side] += sum(scores.get(code, 0.0) for code in OTHER_CYRILLIC) + 1e-3
        configured[side] *= ratio if side == "uk" else 1.0 / ratio
        mass = sum(configured.values())
    elif prior in ("ru", "uk") and prior in configured and _letters(text) < SHORT_TEXT_LETTERS:
        configured[prior] += sum(scores.get(code, 0.0) for code in OTHER_CYRILLIC)
        configured[prior] *= PRIOR_WEIGHT
        mass = sum(configured.values())
    if mass < MIN_CONFIGURED_MASS:
        return OTHER, round(1.0 - mass, 4)
    for hint in hints:
        if hint in configured:
            configured[hint] *= HINT_WEIGHT
    total = sum(configured.values())
    lang = max(configured, key=configured.__getitem__)
    return lang, round(configured[lang] / total, 4)


def cyrillic_ratio(text: str) -> float:
    """Odds of Ukrainian over Russian from the letters only one of them writes (1.0: none)."""
    uk = sum(map(text.count, UK_LETTERS))
    ru = sum(map(text.count, RU_LETTERS))
    # the exponent is capped first: 4.0 ** 600 (a long Ukrainian text) overflows a float
    excess = max(-_MAX_LETTER_EXCESS, min(_MAX_LETTER_EXCESS, uk - ru))
    return min(MAX_LETTER_RATIO, max(1.0 / MAX_LETTER_RATIO, LETTER_WEIGHT ** excess))


def usual_language(texts: list[str]) -> str | None:
    """ru or uk when the letters only one of them writes are, across `texts` (a channel's
    posts), nearly all that side's; None when they are few or mixed."""
    joined = "".join(texts)
    uk = sum(map(joined.count, UK_LETTERS))
    ru = sum(map(joined.count, RU_LETTERS))
    if uk + ru < MIN_USUAL_LETTERS:
        return None
    if uk >= USUAL_SHARE * (uk + ru):
        return "uk"
    return "ru" if ru >= USUAL_SHARE * (uk + ru) else None


class _Detector(Detector):
    """langdetect's detector, giving its very probabilities for less work.

    langdetect walks the text character by character in Python (two Unicode block
    look-ups per character) and updates 55 probabilities per sampled n-gram with an
    indexed loop. Here the text is cleaned with regular expressions, its n-grams are
    read word by word (n-gram state starts afresh after every space, so a word's
    n-grams depend on the word alone and are cached), and each update multiplies the
    55 probabilities as one array: the same float operations in the same order, on the
    same random draws (tests/test_language.py compares both on real articles)."""

    def append(self, text: str) -> None:
        text = self.URL_RE.sub(" ", text)
        text = self.MAIL_RE.sub(" ", text)
        text = NGram.normalize_vi(text)
        # langdetect keeps the first space of each run of spaces
        self.text += _SPACES.sub(" ", text[: self.max_text_length])

    def cleaning_text(self) -> None:
        # langdetect's count of non-Latin letters compares a block number with a block
        # name, never equal: every character from U+0300 on counts
        latin = len(_BASIC_LATIN_LETTERS.findall(self.text))
        if latin * 2 < len(_FROM_U0300.findall(self.text)):
            self.text = _BASIC_LATIN_LETTERS.sub("", self.text)

    def _extract_ngrams(self) -> list[str]:
        text = self.text
        normalised = text.translate(_normal_chars(text))
        found: list[str] = []
        for word in _NGRAM_WORD.finditer(normalised):
            found += _word_ngrams(text[word.start():word.end()])
        return found

    def _detect_block(self) -> None:
        self.cleaning_text()
        ngrams = self._extract_ngrams()
        if not ngrams:
            raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
        # one row per n-gram occurrence: choosing among them draws what choosing among
        # the n-grams draws
        rows = [_row(gram) for gram in ngrams]
        self.langprob = [0.0] * len(self.langlist)
        self.random.seed(self.seed)
        for _ in range(self.n_trial):
            prob = np.array(self._init_probability())
            alpha = self.alpha + self.random.gauss(0.0, 1.0) * self.ALPHA_WIDTH
            weight = alpha / self.BASE_FREQ
            i = 0
            while True:
                prob *= weight + self.random.choice(rows)
                if i % 5 == 0:
                    prob /= sum(prob.tolist())  # summed in order, as langdetect sums
                    if prob.max() > self.CONV_THRESHOLD or i >= self.ITERATION_LIMIT:
                        break
                i += 1
            self.langprob = [acc + p / self.n_trial
                             for acc, p in zip(self.langprob, prob.tolist(), strict=True)]


_SPACES = re.compile(" +")
_BASIC_LATIN_LETTERS = re.compile("[A-z]")  # langdetect's 'A' <= ch <= 'z', [ \ ] ^ _ ` too
_FROM_U0300 = re.compile("[\u0300-\U0010ffff]")
# a word as langdetect's n-grams see it: what it normalises to anything but a space,
# with the space (or end of text) that closes it
_NGRAM_WORD = re.compile("[^ ]+ ?")
_NORMAL: dict[int, str] = {}


def _normal_chars(text: str) -> dict[int, str]:
    """The translation table of langdetect's per-character normalisation (kept as met)."""
    for ch in set(text):
        if ord(ch) not in _NORMAL:
            _NORMAL[ord(ch)] = NGram.normalize(ch)
    return _NORMAL


_ROWS: dict[str, np.ndarray] = {}
# n-grams whose rows are kept as arrays (of 87,598 in the profiles, 440 bytes each);
# the texts of a few languages meet far fewer
MAX_ROWS = 40_000


def _row(gram: str) -> np.ndarray:
    """langdetect's probabilities of `gram` per language, as an array (kept as met)."""
    row = _ROWS.get(gram)
    if row is None:
        if len(_ROWS) >= MAX_ROWS:
            _ROWS.clear()
        row = _ROWS[gram] = np.array(_factory().word_lang_prob_map[gram])
    return row


@functools.lru_cache(maxsize=200_000)
def _word_ngrams(word: str) -> tuple[str, ...]:
    """langdetect's n-grams of one word (with its closing space), as its own loop finds
    them: from a fresh state, skipping those of words in capitals."""
    known = _factory().word_lang_prob_map
    ngram = NGram()
    found = []
    for ch in word:
        ngram.add_char(ch)
        if ngram.capitalword:
            continue
        for n in range(1, NGram.N_GRAM + 1):
            if len(ngram.grams) < n:
                break
            gram = ngram.grams[-n:]
            if gram and gram != " " and gram in known:
                found.append(gram)
    return tuple(found)


def text_probabilities(text: str) -> dict[str, float]:
    """langdetect's probability for every language it knows (regional variants merged)."""
    detector = _Detector(_factory())
    detector.append(text)
    try:
        detector.get_probabilities()
    except LangDetectException as exc:
        log.debug("language: no features in text: %s", exc)
        return {}
    scores: dict[str, float] = {}
    # the full distribution: get_probabilities() itself drops everything under 0.1
    for name, prob in zip(detector.langlist, detector.langprob, strict=True):
        code = normalise_code(name)  # zh-cn and zh-tw both count as zh
        if code:
            scores[code] = scores.get(code, 0.0) + prob
    return scores


def _letters(text: str) -> int:
    return sum(ch.isalpha() for ch in text)

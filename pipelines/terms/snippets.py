"""Passages of an article around the words a query matched, with the words marked."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable

from pipelines.article import Article
from pipelines.terms.matching import TermDoc, TermError, term_pattern
from pipelines.terms.normalisation import tokens


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
    terms = list(dict.fromkeys(matched_terms))
    # with nothing to mark, the passage is the text's start and only its words count
    # (two characters past the width settle whether the last of them goes on)
    words, word_terms = tokens(text if terms else text[:width + 2], lang)
    if not terms and (not words or words[0].end() > width):
        words, word_terms = tokens(text, lang)  # a first word longer than the passage
    doc = TermDoc(word_terms)
    hits: dict[int, int] = {}  # word index -> index of the pattern it belongs to
    for n, term in enumerate(terms):
        try:
            pattern = term_pattern(term)
        except TermError:
            continue
        for occurrence in pattern.occurrences(doc):
            for p in occurrence:
                hits.setdefault(p, n)
    start, end = _best_window(text, words, hits, width)
    out = ["…" if start > 0 else ""]
    cursor = start
    for i in sorted(hits):
        word_start, word_end = words[i].span()
        if start <= word_start and word_end <= end:
            out.append(esc(_squash(text[cursor:word_start])))
            out.append(mark[0] + esc(text[word_start:word_end]) + mark[1])
            cursor = word_end
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
    if terms and _PROBE[0] not in original and article.text_en:
        english = snippet(article.text_en, "en", terms, mark=_PROBE, escape=escape)
        if _PROBE[0] in english:
            original = english
    return original.replace(_PROBE[0], mark[0]).replace(_PROBE[1], mark[1])


def _squash(s: str) -> str:
    return re.sub(r"\s+", " ", s)


def _best_window(text: str, words: list[re.Match[str]], hits: dict[int, int],
                 width: int) -> tuple[int, int]:
    """Character span of the window (word-aligned) with the most distinct matched
    terms, then the most matched words; the text's start when nothing matched."""
    if not words:
        return 0, min(len(text), width)
    order = sorted(hits)
    hit_starts = [words[j].start() for j in order]
    best, best_key = 0, (-1, -1)
    for i in order or [0]:
        # start a little before the first hit so it reads in context
        first = i
        while first > 0 and words[i].start() - words[first - 1].start() < width // 5:
            first -= 1
        begin = words[first].start()
        inside = [j for j in order[bisect_left(hit_starts, begin):
                                   bisect_right(hit_starts, begin + width)]
                  if words[j].end() <= begin + width]
        key = (len({hits[j] for j in inside}), len(inside))
        if key > best_key:
            best, best_key = first, key
    start = words[best].start() if best > 0 else 0
    last = best
    while last + 1 < len(words) and words[last + 1].end() - start <= width:
        last += 1
    return start, words[last].end()

"""Publication dates that a page states in its text, after a label.

Long reads and many small outlets put no date in their metadata; the only date on the
page is a line such as "Опубліковано: 19 вересня 2023 р.", "Опубликовано 5 марта 2024,
14:20" or "Published: July 9, 2020". Reading the date right after such a label avoids
what a free search of the text finds instead: a copyright range, a court ruling's date,
a year in a cited source's URL.

The regular expression only finds where a label is followed by something shaped like a
date; dateparser, which knows the Russian and Ukrainian genitive month names, turns
that into a datetime.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from datetime import datetime

from dateparser.date import DateDataParser

_PUBLISHED = (
    r"Опубліковано|Оприлюднено|Дата\s+публікації|Дата\s+оприлюднення"
    r"|Опубликован[оа]?|Дата\s+публикации"
    r"|(?:First\s+|Originally\s+)?Published|Posted|Date\s+published"
    r"|Publication\s+date"
)
_UPDATED = (
    r"Оновлено|Дата\s+оновлення|Обновлено|Дата\s+обновления"
    r"|(?:Last\s+)?Updated|Last\s+modified"
)
_MONTH_WORD = r"[^\W\d_]{3,12}\.?"
_DATE = (
    r"\d{4}-\d{2}-\d{2}"
    r"|\d{1,2}(?P<sep>[./])\d{1,2}(?P=sep)(?:\d{4}|\d{2})(?!\d)"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH_WORD},?\s+\d{{4}}"
    rf"|{_MONTH_WORD}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
)
_TIME = r"\d{1,2}:\d{2}(?:\s*[ap]\.?m\.?)?(?:\s*(?:GMT|UTC)\s*[+-]\s*\d{1,2}(?::?\d{2})?)?"
# Between the label and the date: a colon, "on", a weekday, a co-publisher's name
# ("Опубліковано одночасно Liga.net і Texty.org.ua | 9 липня 2020 р.") - but no digits,
# so a number that is not the date (an issue number, a time alone) ends the attempt.
LABELLED_DATE = re.compile(
    rf"\b(?:(?P<published>{_PUBLISHED})|(?P<updated>{_UPDATED}))\b"
    r"[^\d]{0,50}?"
    rf"(?P<when>(?:{_TIME}\s*[,|]?\s*)?(?:{_DATE})"
    rf"(?:\s*(?:,|-|–|—|\||в|о|об|at)?\s*{_TIME}(?!\d))?)",
    re.IGNORECASE,
)

_SETTINGS = {"REQUIRE_PARTS": ["day", "month", "year"]}


def labelled_dates(text: str, languages: list[str]) -> Iterator[datetime]:
    """Dates that follow a publication label, then those that follow an update label.

    Each group keeps the page's order. A datetime is naive unless the text gave an
    offset. `languages` orders dateparser's guesses; an English page's slashed dates
    are month first, everyone else's day first.
    """
    published, updated = [], []
    for match in LABELLED_DATE.finditer(text):
        label = match.group("published") or match.group("updated")
        # running text ("the study was published on 5 March") is lower case; a label
        # set above or below an article starts with a capital
        if not label[0].isupper():
            continue
        (published if match.group("published") else updated).append(match)
    for match in published + updated:
        when = _parse(match, languages)
        if when is not None:
            yield when


def _parse(match: re.Match[str], languages: list[str]) -> datetime | None:
    month_first = match.group("sep") == "/" and languages[:1] == ["en"]
    parser = _parser(tuple(languages), "MDY" if month_first else "DMY")
    return parser.get_date_data(match.group("when"))["date_obj"]


@functools.lru_cache(maxsize=64)
def _parser(languages: tuple[str, ...], order: str) -> DateDataParser:
    # what dateparser.parse builds on every call (most of its cost); it keeps no state
    # between dates unless asked to try previous locales first
    return DateDataParser(languages=list(languages), settings={**_SETTINGS, "DATE_ORDER": order})

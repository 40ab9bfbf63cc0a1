"""labelled_dates(): the date after a publication or update label in ru/uk/en page text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipelines.dates import labelled_dates

ALL = ["ru", "uk", "en"]


def first(text: str, languages: list[str] = ALL) -> datetime | None:
    return next(labelled_dates(text, languages), None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Автор: Денис Губашов Опубліковано: 19 вересня 2023 р. Read this article in English",
         datetime(2023, 9, 19)),
        ("Опубліковано: 4 жовтня 2023 року", datetime(2023, 10, 4)),
        ("Опубліковано одночасно Liga.net і Texty.org.ua | 9 липня 2020 р. Часто електоральну",
         datetime(2020, 7, 9)),
        ("Дата публікації: 12.03.2024", datetime(2024, 3, 12)),
        ("Оприлюднено 1 травня 2024 о 09:05", datetime(2024, 5, 1, 9, 5)),
        ("Опубликовано 5 марта 2024, 14:20 Заключённых вербуют", datetime(2024, 3, 5, 14, 20)),
        ("Опубликовано: 14:20, 5 марта 2024", datetime(2024, 3, 5, 14, 20)),
        ("Дата публикации 6 марта 2015 Доклад подготовлен при поддержке", datetime(2015, 3, 6)),
        ("Published: 3 March 2024 by Jane Roe", datetime(2024, 3, 3)),
        ("Published: July 09, 2020. What to read next", datetime(2020, 7, 9)),
        ("PUBLISHED: November 19, 2019 at 8:59 pm | UPDATED: November 19, 2019 at 10:16 pm",
         datetime(2019, 11, 19, 20, 59)),
        ("Published: Tuesday, November 19, 2019 08:38 AM", datetime(2019, 11, 19, 8, 38)),
        ("Posted May 24, 2026 10:05 am 4 min read", datetime(2026, 5, 24, 10, 5)),
        ("Published 2024-03-12", datetime(2024, 3, 12)),
    ],
)
def test_date_after_a_publication_label(text: str, expected: datetime) -> None:
    assert first(text) == expected


def test_offset_given_in_the_text_is_kept() -> None:
    when = first("Published on 06/01/2026 - 13:55 GMT+1 • Updated 14:20", ["uk", "ru", "en"])
    assert when is not None
    assert when.astimezone(UTC) == datetime(2026, 1, 6, 12, 55, tzinfo=UTC)


def test_slashed_dates_are_month_first_only_on_english_pages() -> None:
    assert first("Published: 06/01/2026", ["en", "ru", "uk"]) == datetime(2026, 6, 1)
    assert first("Опубліковано: 06/01/2026", ["uk", "ru", "en"]) == datetime(2026, 1, 6)


def test_publication_label_wins_over_an_earlier_update_label() -> None:
    text = "Оновлено: 20 березня 2024, 10:00 Опубліковано: 12 березня 2024, 08:30 Текст"
    assert list(labelled_dates(text, ALL)) == [
        datetime(2024, 3, 12, 8, 30), datetime(2024, 3, 20, 10, 0)
    ]
    assert first("Обновлено 7 апреля 2024 Подробности") == datetime(2024, 4, 7)
    assert first("Last updated: 2 February 2024") == datetime(2024, 2, 2)


@pytest.mark.parametrize(
    "text",
    [
        "© 2010—2023 Texty.org.ua Матеріали можна використовувати згідно ліцензії",
        "Опубліковано: вересень 2023",  # no day: not a publication day
        "Опубликован в газете \"Московский комсомолец\" №28372 от 24 сентября 2020",
        # running text, not a label
        "дослідження опубліковано 5 березня 2019 року в журналі",
        "a report published on 3 March 2019 found",
        "17.12.2019 р. разом з дитиною прийшов до магазину",
        "Опубліковано: 35 вересня 2023",  # date-shaped, but no such day
        "Updated ago BEIRUT, March 7 (Reuters)",
    ],
)
def test_no_date_without_a_label_and_a_full_day(text: str) -> None:
    assert first(text) is None

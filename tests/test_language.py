"""Language detection on real Russian, Ukrainian and English text."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from langdetect.lang_detect_exception import LangDetectException

from pipelines.article import Article
from pipelines.language import (
    MAX_SAMPLE_CHARS,
    _Detector,
    _factory,
    classify,
    detect,
    normalise_code,
    text_probabilities,
)
from tests.conftest import SHARED_PAGES

LANGS = ("ru", "uk", "en")

RU = (
    "Бывших заключённых, вернувшихся с фронта после полугода контракта, всё чаще обвиняют в "
    "новых преступлениях. Родственники погибших говорят, что о помиловании узнали из "
    "новостей, а не из официальных бумаг, и требуют от властей объяснений."
)
UK = (
    "Колишніх ув'язнених, які повернулися з фронту після півроку контракту, дедалі частіше "
    "звинувачують у нових злочинах. Родичі загиблих кажуть, що про помилування дізналися з "
    "новин, а не з офіційних паперів, і вимагають від влади пояснень."
)
EN = (
    "Former prisoners who returned from the front after six months under contract are "
    "increasingly accused of new crimes. Relatives of those killed say they learned of the "
    "pardons from the news rather than from official papers."
)
BG = (
    "Бивши затворници, които се върнаха от фронта след шестмесечен договор, все по-често са "
    "обвинявани в нови престъпления. Роднините на загиналите казват, че са научили за "
    "помилванията от новините, а не от официални документи."
)
DE = (
    "Ehemalige Häftlinge, die nach sechs Monaten Vertrag von der Front zurückgekehrt sind, "
    "werden immer häufiger neuer Straftaten beschuldigt. Angehörige der Getöteten sagen, sie "
    "hätten von den Begnadigungen aus den Nachrichten erfahren."
)
# langdetect splits this one 4:3 between Russian and Ukrainian, and it has none of the
# letters only one of them writes (those decide on their own: test_language_short.py)
NEAR_TIE = "Новости колонии. Помилування фронту."


def article(title: str = "", text: str = "", description: str = "", **kw) -> Article:
    return Article(
        url="https://news.example.org/a", canonical_url="https://news.example.org/a",
        source="test", fetched_at=datetime(2024, 3, 5, tzinfo=UTC),
        title=title, text=text, description=description, **kw,
    )


@pytest.mark.parametrize(("text", "lang"), [(RU, "ru"), (UK, "uk"), (EN, "en")])
def test_configured_languages(text: str, lang: str) -> None:
    [a] = detect([article(text=text)], LANGS)
    assert a.lang == lang
    assert a.lang_confidence > 0.95


@pytest.mark.parametrize("text", [BG, DE])
def test_clearly_other_language(text: str) -> None:
    [a] = detect([article(text=text)], LANGS)
    assert a.lang == "other"
    assert a.lang_confidence > 0.9


def test_only_configured_languages_are_answers() -> None:
    # Ukrainian is not configured: the text is not Russian for all that
    assert classify(UK, ("ru", "en"))[0] == "other"
    assert classify(RU, ("ru", "en"))[0] == "ru"
    assert classify(RU, ())[0] == "other"


def test_too_short_is_other() -> None:
    [a] = detect([article(title="Ок", text="Да.")], LANGS)
    assert (a.lang, a.lang_confidence) == ("other", 0.0)
    [b] = detect([article(text="12:30 — 2024 № 7 ... !!!")], LANGS)
    assert b.lang == "other"


def test_misleading_labels_do_not_override_the_text() -> None:
    [a] = detect([article(text=UK, html_lang="ru", lang_hint="ru")], LANGS)
    assert a.lang == "uk"
    assert a.lang_confidence > 0.9
    [b] = detect([article(text=RU, html_lang="uk-UA", lang_hint="uk")], LANGS)
    assert b.lang == "ru"


def test_hints_break_a_near_tie() -> None:
    scores = text_probabilities(NEAR_TIE)
    assert 0.4 < scores["ru"] < 0.6 and 0.4 < scores["uk"] < 0.6
    unhinted = classify(NEAR_TIE, LANGS)
    assert unhinted[0] == "ru" and unhinted[1] < 0.6
    assert classify(NEAR_TIE, LANGS, hints=("uk",))[0] == "uk"
    [a] = detect([article(text=NEAR_TIE, html_lang="uk")], LANGS)
    assert a.lang == "uk"
    assert 0.5 < a.lang_confidence < 0.7


def test_short_text_falls_back_to_description() -> None:
    [a] = detect([article(title="Помилування", text="Відео", description=UK)], LANGS)
    assert a.lang == "uk"


def test_title_counts_with_the_text() -> None:
    [a] = detect([article(title=RU, text="")], LANGS)
    assert a.lang == "ru"


def test_deterministic() -> None:
    texts = [RU[:60], UK[:60], NEAR_TIE, EN[:50], RU + UK]
    first = [(a.lang, a.lang_confidence) for a in detect([article(text=t) for t in texts], LANGS)]
    for _ in range(3):
        again = detect([article(text=t) for t in texts], LANGS)
        assert [(a.lang, a.lang_confidence) for a in again] == first


def test_configured_codes_are_normalised() -> None:
    [a] = detect([article(text=UK)], ("RU", "uk-UA", "en", "other"))
    assert a.lang == "uk"


@pytest.mark.parametrize(
    ("code", "expected"),
    [("ru-RU", "ru"), ("uk_UA", "uk"), ("UA", "uk"), ("en", "en"), ("", None), (None, None),
     ("x-default", None), ("zh-cn", "zh"), (" RU ", "ru")],
)
def test_normalise_code(code: str | None, expected: str | None) -> None:
    assert normalise_code(code) == expected


# what trips langdetect's character walk: URLs and addresses, words in capitals, runs of
# spaces, punctuation and digits, Vietnamese combining marks, Romanian commas, kana, CJK
ODD = (
    "  ЗСУ   и НАТО: https://t.me/x?a=1 mail@example.org — «Шторм-Z» 12:30, №7...\n"
    "Tiếng Việt có dấu; Ţară şi ţară, ș ț; ひらがな カタカナ 中文字符 한국어 «ABC» AbC ABc"
)


def _own_and_fast(text: str) -> tuple[list[float] | None, list[float] | None]:
    results = []
    for detector in (_factory().create(), _Detector(_factory())):
        detector.append(text)
        try:
            detector.get_probabilities()
        except LangDetectException:
            results.append(None)
            continue
        results.append(detector.langprob)
    return results[0], results[1]


def test_fast_detector_gives_langdetects_own_probabilities() -> None:
    texts = [RU, UK, EN, BG, DE, NEAR_TIE, ODD, ODD.upper(), "12:30 — 2024 № 7 ... !!!", ""]
    if (SHARED_PAGES / "manifest.json").is_file():
        manifest = json.loads((SHARED_PAGES / "manifest.json").read_text(encoding="utf-8"))
        texts += [f"{gold.get('title') or ''}\n{gold['body'][:MAX_SAMPLE_CHARS]}"
                  for gold in (entry.get("gold", {}) for entry in manifest) if gold.get("body")]
    for text in texts:
        own, fast = _own_and_fast(text)
        assert fast == own, text[:80]

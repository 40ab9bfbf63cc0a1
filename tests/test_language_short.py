"""Language of short texts: the letters only Ukrainian or only Russian writes decide, a
source's language is a prior that never outvotes them, and on the real short texts of
the shared fixtures (bench/short_language.py) Dozor is never behind plain langdetect."""

from __future__ import annotations

import pytest

from bench.short_language import DEFAULT_FIXTURES, accuracy, langdetect_answer, samples
from pipelines.language import classify

LANGS = ("ru", "uk", "en")

# one-line posts; plain langdetect calls the last one (a real title) Bulgarian
SHORT_UK = ["Їхні родини досі не отримали жодної відповіді.", "Суд у Харкові: вирок ув'язненому",
            "Знову обстріл. Є поранені.", 'Р. Вагнер "Лоенгрін" / R. Wagner "Lohengrin"']
SHORT_RU = ["Суд вынес приговор бывшему бойцу «Шторм Z»", "Это уже третье дело за неделю."]


@pytest.mark.parametrize("text", SHORT_UK)
def test_short_ukrainian_posts(text: str) -> None:
    assert classify(text, LANGS)[0] == "uk"
    assert classify(text, LANGS, hints=("ru",))[0] == "uk"  # a Russian channel's prior loses


@pytest.mark.parametrize("text", SHORT_RU)
def test_short_russian_posts(text: str) -> None:
    assert classify(text, LANGS)[0] == "ru"
    assert classify(text, LANGS, hints=("uk",))[0] == "ru"


def test_plain_langdetect_misses_some_of_them() -> None:
    # the point of the letters: without them these lines come out wrong
    assert sum(langdetect_answer(t) != "uk" for t in SHORT_UK) >= 1


def test_ukrainian_not_configured_stays_other() -> None:
    assert classify(SHORT_UK[0], ("ru", "en"))[0] == "other"


@pytest.mark.skipif(not (DEFAULT_FIXTURES / "pages" / "manifest.json").exists(),
                    reason="shared fixtures not present")
def test_dozor_is_never_behind_langdetect_on_real_short_texts() -> None:
    result = accuracy(samples())["all"]
    assert set(result) == set(LANGS)
    for lang, (ours, theirs, total) in result.items():
        assert total >= 20, lang
        assert ours >= theirs, f"{lang}: dozor {ours}/{total} < langdetect {theirs}/{total}"
        assert ours / total >= 0.95, lang

"""Term normalisation: tokens, lemmas, stems, folds, query forms and snippets."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest

from pipelines.article import Article
from pipelines.terms.matching import Pattern, TermDoc, TermError
from pipelines.terms.normalisation import analyse, normalise, query_forms
from pipelines.terms.snippets import snippet


def test_russian_inflections_share_a_lemma() -> None:
    assert normalise("вербовки вербовку вербовкой вербовка", "ru") == ["вербовка"] * 4
    assert normalise("колонии колонию колонией", "ru") == ["колония"] * 3


def test_ukrainian_apostrophes_are_one_word() -> None:
    forms = normalise("ув'язнених ув’язнені увʼязнений ув‘язненим", "uk")
    assert forms == ["ув'язнений"] * 4


def test_apostrophe_only_inside_words() -> None:
    assert normalise("'Шторм' ’сказали’", "ru") == ["шторм", "сказать"]


def test_hyphenated_names_split_the_same_everywhere() -> None:
    assert normalise("Шторм-Z", "ru") == normalise("Шторм Z", "ru") == ["шторм", "z"]
    assert normalise("Шторм‑Z", "uk") == ["шторм", "z"]  # non-breaking hyphen
    assert normalise("Storm-Z", "en") == ["storm", "z"]
    assert normalise("ИК-6", "ru") == ["ик", "6"]


def test_yo_folds_to_ye_on_both_sides() -> None:
    assert normalise("осуждённые", "ru") == normalise("осужденные", "ru") == ["осужденный"]
    assert query_forms("осуждённых") == query_forms("осужденных")


def test_no_folding_of_distinct_letters() -> None:
    assert normalise("йод иод", "ru") == ["йод", "иод"]
    assert normalise("їжак іжак", "uk")[0] != normalise("їжак іжак", "uk")[1]
    assert normalise("ґанок Європа", "uk") == ["ґанок", "європа"]


def test_stress_marks_soft_hyphens_and_decomposed_letters() -> None:
    assert normalise("вербо\u0301вка верб\u00adовкой", "ru") == ["вербовка", "вербовка"]
    assert normalise("и\u0306од", "ru") == ["йод"]  # decomposed й


def test_participles_keep_their_own_lemma() -> None:
    # prisoners are not "signed": заключённые and заключили must stay apart
    prisoners, signed = normalise("заключённые заключили", "ru")
    assert prisoners == "заключенный"
    assert signed == "заключить"


def test_english_is_stemmed() -> None:
    assert normalise("Prisoners recruited convicts", "en") == ["prison", "recruit", "convict"]


def test_latin_words_in_cyrillic_text_are_stemmed() -> None:
    assert normalise("бойцы Wagner Group", "ru")[1:] == ["wagner", "group"]


def test_unknown_language_picks_by_letters() -> None:
    assert normalise("Засуджені підписали контракти", None) == normalise(
        "Засуджені підписали контракти", "uk")
    assert normalise("Осужденные подписали контракты", "other") == normalise(
        "Осужденные подписали контракты", "ru")


def test_empty_and_punctuation() -> None:
    assert normalise("", "ru") == []
    assert normalise(" — «» !!! ", "ru") == []


@pytest.mark.parametrize(("query", "text", "lang"), [
    ("колонии", "исправительная колония", "ru"),
    ("вербовку", "вербовкой занимались", "ru"),
    ("Пригожин", "соратники Пригожина", "ru"),
    ("воевать", "воевавших на Украине", "ru"),
    ("ув'язнених", "ув’язнені підписали", "uk"),
    ("Міноборони", "контракт з Міноборони", "uk"),
    ("помилування", "отримали помилування", "uk"),
    ("prisoners", "a prisoner", "en"),
])
def test_query_forms_find_inflected_text(query: str, text: str, lang: str) -> None:
    assert query_forms(query) & set(normalise(text, lang))


def test_query_forms_do_not_overreach() -> None:
    # different lemmas stay different: the profile lists both words
    assert not query_forms("завербовали") & set(normalise("вербовка", "ru"))
    # an abbreviation reading of "к" (как) must not turn "Проект К" into "проект как"
    assert "как" not in query_forms("К")
    assert "заключить" not in query_forms("заключенные")


def _article(**kw: object) -> Article:
    base: dict[str, object] = dict(url="https://x.test/a", canonical_url="https://x.test/a",
                                   source="test", fetched_at=datetime.now(UTC))
    return Article(**(base | kw))  # type: ignore[arg-type]


def test_analyse_fills_terms_from_original_and_english() -> None:
    art = _article(lang="uk", title="Ув’язнені колонії", text="підписали контракт",
                   title_en="Prisoners of the colony", text_en="signed contracts")
    analyse([art])
    assert art.terms.split() == ["ув'язнений", "колонія", "підписати", "контракт",
                                 "prison", "of", "the", "coloni", "sign", "contract"]


def test_analyse_without_translation() -> None:
    art = _article(lang="ru", title="Вербовка", text="")
    assert analyse([art])[0].terms == "вербовка"


def test_phrase_slop_follows_lucene() -> None:
    doc = TermDoc("a b c d".split())
    assert Pattern.from_text("a b").found_in(doc)
    assert not Pattern.from_text("a c").found_in(doc)
    assert Pattern.from_text("a c", slop=1).found_in(doc)
    assert not Pattern.from_text("b a", slop=1).found_in(doc)  # reversal costs 2
    assert Pattern.from_text("b a", slop=2).found_in(doc)
    assert not Pattern.from_text("a a", slop=5).found_in(doc)  # one "a" cannot be two


def test_wildcard_in_phrase_is_an_error() -> None:
    with pytest.raises(TermError, match="wildcard"):
        Pattern.from_text("вербов* колон", phrase=True)
    with pytest.raises(TermError, match="no word"):
        Pattern.from_text("«—»")


TEXT = (
    "Власти региона отчитались о ремонте дорог. " * 6
    + "Осуждённые ИК-6 подписали контракт с Минобороны и ушли на фронт. "
    + "Родственники говорят, что вербовщики приезжали в колонию дважды. "
    + "Погода в выходные будет тёплой. " * 6
)


def test_snippet_centres_on_the_matches() -> None:
    out = snippet(TEXT, "ru", ["колонии", '"контракт с Минобороны"', "вербов*"], width=200)
    assert "[контракт] [с] [Минобороны]" in out
    assert "[вербовщики]" in out and "[колонию]" in out
    assert out.startswith("…") and out.endswith("…")
    assert len(out.replace("[", "").replace("]", "")) <= 200 + 2


def test_snippet_marks_phrases_only_where_the_phrase_is() -> None:
    out = snippet("с утра с друзьями, контракт с Минобороны", "ru", ['"контракт с Минобороны"'])
    assert out == "с утра с друзьями, [контракт] [с] [Минобороны]"


def test_snippet_hyphenated_term_and_html_escaping() -> None:
    text = "Бойцы <«Шторм-Z»> & штурмовики"
    out = snippet(text, "ru", ["Шторм-Z"], mark=("<mark>", "</mark>"), escape=html.escape)
    assert out == ("Бойцы &lt;«<mark>Шторм</mark>-<mark>Z</mark>»&gt; &amp; штурмовики")


def test_snippet_without_matches_is_the_beginning() -> None:
    out = snippet("Первое предложение. " * 30, "ru", ["вербовка"], width=60)
    assert out.startswith("Первое предложение.") and out.endswith("…")
    assert "[" not in out


def test_snippet_ignores_unusable_terms() -> None:
    assert snippet("Колония", "ru", ["«»", "колония"]) == "[Колония]"

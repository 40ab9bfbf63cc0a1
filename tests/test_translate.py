"""The translate stage with a real CTranslate2 model built by the tests (tests/support/mt_model.py),
installed through `dozor models install --file` into the test's own models directory."""

from __future__ import annotations

import logging
from pathlib import Path

import ctranslate2
import pytest
from typer.testing import CliRunner

from pipelines import models
from pipelines.article import Article, utcnow
from pipelines.config.config import Config
from pipelines.config.settings import TranslationSettings
from pipelines.translate import ENGINE, MAX_SENTENCE_TOKENS, chunk_tokens, load_translator
from tests.support.mt_model import models_folder

RU_TEXT = (
    "Заключённых завербовали в колониях. Правозащитники говорят: тысячи людей погибли!\n"
    "Вчера суд подписал приговор?\n"
    "\n"
    "Мать и сын получили письмо из области (2023)."
)
RU_TEXT_EN = (
    "Prisoners recruited in colonies. Activists say: thousands people died!\n"
    "Yesterday court подписал sentence?\n"
    "\n"
    "Mother and son received letter from region (2023)."
)


def article(n: int, lang: str, title: str, text: str = "", relevant: bool = True) -> Article:
    url = f"https://news.example/{lang}/{n}"
    return Article(url=url, canonical_url=url, source="example", fetched_at=utcnow(),
                   title=title, text=text, lang=lang, relevant=relevant)


def install(package: Path) -> None:
    from dozor.cli import app

    result = CliRunner().invoke(app, ["models", "install", "--file", str(package)])
    assert result.exit_code == 0, result.output


@pytest.fixture
def ru_uk(mt_packages: dict[str, Path]) -> Path:
    install(mt_packages["ru"])
    install(mt_packages["uk"])
    return models_folder()


def test_translates_title_and_text_keeping_paragraphs(ru_uk: Path) -> None:
    translator, notices = load_translator(TranslationSettings(), ["ru", "uk", "en"],
                                          models_folder())
    assert notices == []
    ru = article(1, "ru", "Вагнер вербуют заключённых", RU_TEXT)
    uk = article(2, "uk", "Солдати повернулися додому", "Сьогодні журналісти повідомили новини.")
    out = translator.translate([ru, uk])
    assert out == [ru, uk]
    assert ru.title_en == "Wagner recruit prisoners"
    assert ru.text_en == RU_TEXT_EN
    assert ru.text_en.count("\n") == RU_TEXT.count("\n")
    assert uk.title_en == "Soldiers returned home"
    assert uk.text_en == "Today journalists reported news."
    for a, pair in ((ru, "ru_en"), (uk, "uk_en")):
        assert a.translation_status == "done"
        assert a.translation_engine == ENGINE == f"ctranslate2 {ctranslate2.__version__}"
        assert a.translation_model == f"argos {pair} 1.0"


def test_mode_decides_what_is_translated(ru_uk: Path) -> None:
    rel = article(1, "ru", "Суд", relevant=True)
    other = article(2, "ru", "Суд", relevant=False)
    english = article(3, "en", "Court", relevant=True)
    unknown = article(4, "other", "Tribunal", relevant=True)
    translator, _ = load_translator(TranslationSettings(mode="relevant"), ["ru", "uk", "en"],
                                    models_folder())
    translator.translate([rel, other, english, unknown])
    assert [a.translation_status for a in (rel, other, english, unknown)] == \
        ["done", "skipped", "skipped", "skipped"]
    assert rel.title_en == "Court" and other.title_en is None and english.title_en is None

    translator, _ = load_translator(TranslationSettings(mode="all"), ["ru", "uk", "en"],
                                    models_folder())
    translator.translate([other])
    assert other.translation_status == "done" and other.title_en == "Court"

    assert load_translator(TranslationSettings(mode="none"), ["ru", "uk", "en"],
                           models_folder()) == (None, [])


def test_no_model_means_pending_and_one_notice_per_pair(mt_packages: dict[str, Path]) -> None:
    translator, notices = load_translator(TranslationSettings(), ["ru", "uk", "en"],
                                          models_folder())
    assert len(notices) == 2
    ru_notice, uk_notice = notices
    assert "\n" not in ru_notice
    assert "ru→en" in ru_notice and ru_notice.endswith("dozor models install ru")
    assert "uk→en" in uk_notice and uk_notice.endswith("dozor models install uk")
    ru = article(1, "ru", "Суд")
    translator.translate([ru])
    assert (ru.translation_status, ru.title_en) == ("pending", None)

    install(mt_packages["ru"])
    translator, notices = load_translator(TranslationSettings(), ["ru", "uk", "en"],
                                          models_folder())
    assert len(notices) == 1 and "uk→en" in notices[0]
    uk = article(2, "uk", "Суд")
    translator.translate([ru, uk])
    assert (ru.translation_status, ru.title_en) == ("done", "Court")
    assert uk.translation_status == "pending"


def test_models_dir_from_settings_file(tmp_path: Path, mt_packages: dict[str, Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    custom = tmp_path / "shared-models"
    config = tmp_path / "dozor.yaml"
    config.write_text(f"translation:\n  models_dir: {custom}\n")
    monkeypatch.setenv("DOZOR_CONFIG", str(config))
    install(mt_packages["ru"])  # the CLI reads the settings file too
    assert [m.pair for m in models.installed(custom)] == ["ru_en"]

    def pairs() -> set[str]:
        cfg = Config.from_env()  # what an entry point reads, now
        translator, _ = load_translator(cfg.settings.translation, ["ru"], models.models_dir(cfg))
        assert translator is not None
        return set(translator.pairs)

    assert pairs() == {"ru"}
    # without the setting, $DOZOR_MODELS_DIR names the directory
    monkeypatch.delenv("DOZOR_CONFIG")
    monkeypatch.setenv("DOZOR_MODELS_DIR", str(custom))
    assert pairs() == {"ru"}
    monkeypatch.setenv("DOZOR_MODELS_DIR", str(tmp_path / "elsewhere"))
    assert pairs() == set()


def test_one_bad_article_fails_alone(ru_uk: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = [article(i, "ru", "Суд и приговор", "Вчера суд подписал указ.") for i in range(3)]
    # a lone surrogate: what a mis-decoded page can leave in a str; the tokenizer rejects it
    bad = article(9, "ru", "Суд", "Приговор \ud800 вернули.")
    translator, _ = load_translator(TranslationSettings(), ["ru"], models_folder())
    with caplog.at_level(logging.ERROR, logger="pipelines.translate"):
        translator.translate([good[0], bad, good[1], good[2]])
    assert bad.translation_status == "failed" and bad.text_en is None
    assert bad.translation_model == "argos ru_en 1.0"
    assert [a.translation_status for a in good] == ["done"] * 3
    assert all(a.text_en == "Yesterday court подписал decree." for a in good)
    assert any(bad.url in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)


def test_overlong_sentence_is_chunked_at_word_starts(ru_uk: Path) -> None:
    words = ["заключённые", "вербуют", "в", "колониях"] * 90  # one 360-word "sentence"
    translator, _ = load_translator(TranslationSettings(), ["ru"], models_folder())
    pair = translator.pairs["ru"]
    tokens = pair.tokenizer.encode(" ".join(words))
    chunks = chunk_tokens(tokens)
    assert len(tokens) > MAX_SENTENCE_TOKENS and len(chunks) == 2
    assert [t for c in chunks for t in c] == tokens
    assert all(len(c) <= MAX_SENTENCE_TOKENS and c[0].startswith("\u2581") for c in chunks)

    long = article(1, "ru", "", " ".join(words))
    translator.translate([long])
    # the model is word for word, so cutting the sentence loses no word
    assert long.text_en == " ".join(["prisoners", "recruit", "in", "colonies"] * 90)


def test_chunk_tokens_without_word_starts() -> None:
    tokens = [f"x{i}" for i in range(450)]
    chunks = chunk_tokens(tokens, limit=200)
    assert [len(c) for c in chunks] == [150, 150, 150]
    bpe = ["wo@@", "rd"] * 150
    assert all(not c[-1].endswith("@@") for c in chunk_tokens(bpe, limit=100))


@pytest.mark.parametrize("beam", [1, 4])
def test_batched_path_equals_argostranslate(ru_uk: Path, beam: int,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """argostranslate's own translate() is the reference: same model, same sentences
    (both split with the package's MiniSBD model), greedy and beam search."""
    texts = {
        "ru": [RU_TEXT, "Президент подписал указ. Вагнер, Шторм-Z и колонии!",
               "Солдаты вернулись домой.\nМинистерство обороны России сообщили новости."],
        "uk": ["Ув'язнені отримали помилування. Журналісти повідомили: війна!",
               "Сьогодні суд і вирок.\nМати, син і лист з області України."],
    }
    ours = TranslationSettings(beam_size=beam, compute_type="int8", mode="all")
    translator, _ = load_translator(ours, ["ru", "uk"], models_folder())
    batch = [article(i, lang, "", text) for lang in texts for i, text in enumerate(texts[lang])]
    translator.translate(batch)

    models.argos_package(ru_uk)
    from argostranslate import settings
    from argostranslate import translate as argos

    monkeypatch.setattr(settings, "beam_size", beam)
    monkeypatch.setattr(settings, "compute_type", "int8")
    argos.installed_translates.clear()  # argostranslate caches loaded packages per process
    argos.get_installed_languages.cache_clear()
    try:
        reference = [argos.translate(a.text, a.lang, "en") for a in batch]
    finally:
        argos.installed_translates.clear()
        argos.get_installed_languages.cache_clear()
    assert [a.text_en for a in batch] == reference
    assert reference[0] == RU_TEXT_EN

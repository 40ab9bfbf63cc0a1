"""`dozor translate`: pending articles in a real SQLite file, filled in once a model is
installed; resumable (--limit stops part way) and idempotent."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from pipelines.article import Article, utcnow
from pipelines.config.settings import TranslationSettings
from pipelines.store import open_store
from pipelines.terms.normalisation import analyse
from pipelines.translate import load_translator
from tests.conftest import REPO
from tests.support.articles import search
from tests.support.mt_model import models_folder


def dozor(*args: str):
    from dozor.cli import app

    return CliRunner().invoke(app, list(args))


def stored_pending(db: Path) -> list[Article]:
    """Articles processed while no model was installed: stored with status pending."""
    texts = [("ru", "Суд и приговор", "Заключённых завербовали в колониях."),
             ("ru", "Вагнер", "Мать и сын получили письмо."),
             ("ru", "Шторм", "Солдаты вернулись домой."),
             ("uk", "Суд", "Сьогодні журналісти повідомили новини."),
             ("en", "Court", "Prisoners were recruited.")]
    articles = []
    for n, (lang, title, text) in enumerate(texts):
        url = f"https://news.example/{n}"
        articles.append(Article(url=url, canonical_url=url, source="example", lang=lang,
                                fetched_at=utcnow(), title=title, text=text, relevant=True))
    translator, notices = load_translator(TranslationSettings(), ["ru", "uk", "en"],
                                          models_folder())
    assert len(notices) == 2
    translator.translate(articles)
    analyse(articles)
    store = open_store(db=db)
    try:
        store.write(articles)
    finally:
        store.close()
    return articles


def statuses(db: Path) -> dict[str, str]:
    store = open_store(db=db)
    try:
        return {a.title: a.translation_status for a in store.iter_articles()}
    finally:
        store.close()


def test_backfill_is_resumable_and_idempotent(tmp_path: Path,
                                              mt_packages: dict[str, Path]) -> None:
    db = tmp_path / "dozor.db"
    stored_pending(db)
    assert statuses(db) == {"Суд и приговор": "pending", "Вагнер": "pending",
                            "Шторм": "pending", "Суд": "pending", "Court": "skipped"}

    nothing = dozor("translate", "--db", str(db))
    assert nothing.exit_code == 1 and "no translation model" in nothing.output

    assert dozor("models", "install", "--file", str(mt_packages["ru"])).exit_code == 0
    first = dozor("translate", "--db", str(db), "--limit", "2")
    assert first.exit_code == 0, first.output
    assert "translated 2, failed 0" in first.output
    assert "uk→en" in first.output  # the one notice for the pair still missing
    assert list(statuses(db).values()).count("done") == 2

    rest = dozor("translate", "--db", str(db))  # carries on where the first run stopped
    assert "translated 1, failed 0" in rest.output
    store = open_store(db=db)
    try:
        done = {a.title: a for a in store.iter_articles() if a.translation_status == "done"}
        assert set(done) == {"Суд и приговор", "Вагнер", "Шторм"}
        assert done["Суд и приговор"].text_en == "Prisoners recruited in colonies."
        assert done["Вагнер"].translation_model == "argos ru_en 1.0"
        before = {t: (a.text_en, a.terms) for t, a in done.items()}
        # the Russian article is now found by its English text
        hits = search(store, "recruited")
        assert {h.article.title for h in hits} == {"Court", "Суд и приговор"}
    finally:
        store.close()

    again = dozor("translate", "--db", str(db))
    assert "translated 0, failed 0" in again.output
    assert statuses(db)["Суд"] == "pending"  # still no uk model

    assert dozor("models", "install", "--file", str(mt_packages["uk"])).exit_code == 0
    assert "translated 1" in dozor("translate", "--db", str(db)).output
    store = open_store(db=db)
    try:
        after = {a.title: a for a in store.iter_articles()}
        assert {t: (after[t].text_en, after[t].terms) for t in before} == before
        assert after["Суд"].text_en == "Today journalists reported news."
    finally:
        store.close()


def test_retry_failed(tmp_path: Path, mt_packages: dict[str, Path]) -> None:
    db = tmp_path / "dozor.db"
    articles = stored_pending(db)
    store = open_store(db=db)
    try:
        articles[0].translation_status = "failed"
        store.mark_translation([articles[0]])
    finally:
        store.close()
    assert dozor("models", "install", "--file", str(mt_packages["ru"])).exit_code == 0
    assert "translated 2" in dozor("translate", "--db", str(db)).output
    assert statuses(db)["Суд и приговор"] == "failed"
    result = dozor("translate", "--db", str(db), "--retry-failed")
    assert "1 failed translation(s) queued again" in result.output
    assert "translated 1, failed 0" in result.output
    assert statuses(db)["Суд и приговор"] == "done"


def test_runtime_needs_neither_torch_nor_stanza(tmp_path: Path,
                                                 mt_packages: dict[str, Path]) -> None:
    """Install and translate in a process where torch, stanza and spacy cannot be
    imported: the production stack is CTranslate2 + SentencePiece + MiniSBD (onnxruntime)."""
    script = textwrap.dedent(f"""
        import sys
        for name in ("torch", "stanza", "spacy"):
            sys.modules[name] = None  # any import of them now raises ImportError
        from typer.testing import CliRunner
        from dozor.cli import app
        package = {str(mt_packages["ru"])!r}
        result = CliRunner().invoke(app, ["models", "install", "--file", package])
        assert result.exit_code == 0, result.output
        from pipelines.config.settings import TranslationSettings
        from pipelines.article import Article, utcnow
        from pipelines.config.config import Config
        from pipelines.models import models_dir
        from pipelines.translate import load_translator
        folder = models_dir(Config.from_env())
        translator, notices = load_translator(TranslationSettings(), ["ru"], folder)
        a = Article(url="u", canonical_url="u", source="s", fetched_at=utcnow(), lang="ru",
                    relevant=True, title="Суд", text="Мать и сын. Вагнер!")
        translator.translate([a])
        print(a.translation_status, "|", a.text_en, "|", translator.pairs["ru"].splitter.name)
        assert "argostranslate.translate" not in sys.modules
    """)
    env = {**os.environ, "DOZOR_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "done | Mother and son. Wagner! | minisbd (ru.onnx)"


def test_backfill_through_the_stage_pool_stores_what_it_does_alone(
        tmp_path: Path, mt_packages: dict[str, Path]) -> None:
    """More than one chunk pending: terms are analysed in the pool's worker while the
    next chunk is translated, and every article is stored as without a pool."""
    from pipelines.backfill import CHUNK, translate_pending
    from pipelines.config.config import Config
    from pipelines.models import models_dir
    from pipelines.pool import StagePool

    assert dozor("models", "install", "--file", str(mt_packages["ru"])).exit_code == 0
    translator, _ = load_translator(TranslationSettings(), ["ru"],
                                    models_dir(Config.from_env()))
    sentences = ["Заключённых завербовали в колониях.", "Мать и сын получили письмо.",
                 "Солдаты вернулись домой."]
    stored: dict[str, list[tuple[str, str, str]]] = {}
    for name, pool in (("alone", None), ("pool", StagePool(1, preload=["pipelines.backfill"]))):
        store = open_store(db=tmp_path / f"{name}.db")
        try:
            store.write([Article(url=f"https://news.example/{n}",
                                 canonical_url=f"https://news.example/{n}", source="example",
                                 lang="ru", fetched_at=utcnow(), title=f"Суд {n}",
                                 text=sentences[n % 3], relevant=True,
                                 translation_status="pending")
                         for n in range(CHUNK + 8)])
            with pool or contextlib.nullcontext():
                chunks = list(translate_pending(store, translator, CHUNK + 8, pool))
            assert [len(c) for c in chunks] == [CHUNK, 8]
            stored[name] = sorted((a.id, a.text_en or "", a.terms)
                                  for a in store.iter_articles())
        finally:
            store.close()
    assert stored["pool"] == stored["alone"]
    assert all(text_en for _, text_en, _ in stored["pool"])
    # the English words are in the terms: the first sentence's 14 copies
    assert sum("recruit" in terms.split() for *_, terms in stored["pool"]) == 14

"""`dozor run` over the bundled demo site, in a subprocess, with and without the
test-built translation packages installed; then `dozor translate` fills in the rest."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dozor.demo.server import DemoServer
from pipelines import models
from pipelines.article import Article
from pipelines.store import open_store
from tests.conftest import REPO


@pytest.fixture
def demo_site(tmp_path: Path) -> Iterator[Path]:
    with DemoServer() as server:
        sources = tmp_path / "sources.yaml"
        sources.write_text(yaml.safe_dump(server.site.sources(), allow_unicode=True),
                           encoding="utf-8")
        yield sources


def dozor(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOZOR_")}
    env.update(DOZOR_DATA_DIR=str(tmp_path / "data"), COLUMNS="400")
    result = subprocess.run([sys.executable, "-m", "dozor", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def stored(db: Path) -> list[Article]:
    store = open_store(db=db)
    try:
        return list(store.iter_articles())
    finally:
        store.close()


def test_run_translates_with_models_installed(tmp_path: Path, demo_site: Path,
                                              mt_packages: dict[str, Path]) -> None:
    for lang in ("ru", "uk"):
        models.install_file(mt_packages[lang], tmp_path / "data" / "models")
    db = tmp_path / "dozor.db"
    result = dozor(tmp_path, "run", "--sources", str(demo_site), "--db", str(db),
                   "--allow-private-network")
    assert "translation model" not in result.stdout
    articles = stored(db)
    relevant = [a for a in articles if a.relevant and a.lang in ("ru", "uk")]
    assert {a.lang for a in relevant} == {"ru", "uk"}
    for a in relevant:
        assert a.translation_status == "done", a.url
        assert a.text_en and a.title_en
        assert a.text_en.count("\n") == a.text.count("\n")
        assert a.translation_model == f"argos {a.lang}_en 1.0"
    # words of the toy dictionary came out in English
    assert any("prisoners" in a.text_en.lower() or "colon" in a.text_en.lower()
               for a in relevant)
    assert all(a.translation_status == "skipped" for a in articles
               if a.lang == "en" or not a.relevant)


def test_run_without_models_then_backfill(tmp_path: Path, demo_site: Path,
                                          mt_packages: dict[str, Path]) -> None:
    db = tmp_path / "dozor.db"
    result = dozor(tmp_path, "run", "--sources", str(demo_site), "--db", str(db),
                   "--allow-private-network")
    lines = [line for line in result.stdout.splitlines() if "translation model" in line]
    assert len(lines) == 2, result.stdout
    assert any("ru→en" in line and "dozor models install ru" in line for line in lines)
    assert any("uk→en" in line and "dozor models install uk" in line for line in lines)
    pending = [a for a in stored(db) if a.translation_status == "pending"]
    assert pending and {a.lang for a in pending} == {"ru", "uk"}
    assert all(a.text_en is None for a in pending)

    for lang in ("ru", "uk"):
        dozor(tmp_path, "models", "install", "--file", str(mt_packages[lang]))
    backfill = dozor(tmp_path, "translate", "--db", str(db), "--progress-interval", "0.1")
    assert f"translated {len(pending)}, failed 0" in backfill.stdout
    # its progress on stderr (no terminal: plain lines) ends with the tally
    done = [line for line in backfill.stderr.splitlines()
            if line.startswith("progress: translate done: ")]
    assert len(done) == 1 and done[0].startswith(
        f"progress: translate done: translated {len(pending)} of {len(pending)}"), \
        backfill.stderr
    after = {a.id: a for a in stored(db)}
    assert all(after[a.id].translation_status == "done" and after[a.id].text_en
               for a in pending)
    assert "pending" not in {a.translation_status for a in after.values()}

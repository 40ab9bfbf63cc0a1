"""`dozor models install/list`: local files, the package index over real HTTP, errors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines import models
from tests.support.httpserver import NewsServer
from tests.support.mt_model import build_package, models_folder


def dozor(*args: str):
    from dozor.cli import app

    return CliRunner().invoke(app, list(args))


def without_sbd(package: Path, out: Path) -> Path:
    """The same package without its MiniSBD model, like most published Argos packages."""
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if "/minisbd/" not in item.filename:
                dst.writestr(item, src.read(item))
    return out


def test_install_file_then_list(mt_packages: dict[str, Path]) -> None:
    result = dozor("models", "install", "--file", str(mt_packages["ru"]))
    assert result.exit_code == 0, result.output
    directory = models_folder()
    assert "installed ru→en 1.0" in result.output and "minisbd (ru.onnx)" in result.output

    listing = dozor("models", "list")
    assert listing.exit_code == 0
    (model,) = models.installed(directory)
    assert model.path == directory / "translate-ru_en-1_0"
    assert model.sbd_model == model.path / "minisbd" / "ru.onnx"
    flat = " ".join(listing.output.split())
    for shown in ("ru→en", "1.0", f"{model.size / 1024 ** 2:.1f} MB", "minisbd (ru.onnx)"):
        assert shown in flat
    assert str(directory) in listing.output.replace("\n", "")
    # argostranslate itself sees the same package directory
    assert [p.from_code for p in models.argos_package(directory).get_installed_packages()] == ["ru"]


def test_list_when_empty() -> None:
    result = dozor("models", "list")
    assert result.exit_code == 0
    assert "No translation models" in result.output and "dozor models install" in result.output


def test_newer_version_replaces_older(tmp_path: Path, mt_packages: dict[str, Path]) -> None:
    assert dozor("models", "install", "--file", str(mt_packages["ru"])).exit_code == 0
    newer = build_package(tmp_path, "ru", version="1.1")
    assert dozor("models", "install", "--file", str(newer)).exit_code == 0
    assert [(m.pair, m.version) for m in models.installed(models_folder())] == \
        [("ru_en", "1.1")]


def test_bad_files_are_refused_and_installed_models_kept(
    tmp_path: Path, mt_packages: dict[str, Path]
) -> None:
    assert dozor("models", "install", "--file", str(mt_packages["ru"])).exit_code == 0
    before = models.installed(models_folder())

    not_zip = tmp_path / "page.argosmodel"
    not_zip.write_text("<html>404</html>")
    no_meta = tmp_path / "nometa.argosmodel"
    with zipfile.ZipFile(no_meta, "w") as zf:
        zf.writestr("ru_en/model/model.bin", b"x")
        zf.writestr("ru_en/sentencepiece.model", b"x")
    en_ru = tmp_path / "en_ru.argosmodel"
    with zipfile.ZipFile(mt_packages["ru"]) as src, zipfile.ZipFile(en_ru, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("metadata.json"):
                meta = json.loads(data) | {"from_code": "en", "to_code": "ru"}
                data = json.dumps(meta).encode()
            dst.writestr(item, data)

    cases = [
        (not_zip, "not an Argos package"),
        (no_meta, "no ru_en/metadata.json"),
        (en_ru, "translates en to ru"),
        (tmp_path / "missing.argosmodel", "no such file"),
    ]
    for path, message in cases:
        result = dozor("models", "install", "--file", str(path))
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split()), result.output
    assert models.installed(models_folder()) == before
    assert not [p for p in models_folder().iterdir() if p.name.startswith(".install")]


def test_install_needs_languages_or_file() -> None:
    result = dozor("models", "install")
    assert result.exit_code == 2 and "--file" in result.output


def _serve_index(server: NewsServer, packages: dict[str, Path],
                 monkeypatch: pytest.MonkeyPatch) -> None:
    entries = []
    for lang, package in packages.items():
        path = f"/packages/{package.name}"
        server.add(path, package.read_bytes(), "application/zip")
        entries.append({"type": "translate", "from_code": lang, "to_code": "en",
                        "package_version": "1.0", "argos_version": "1.9.0",
                        "from_name": lang, "to_name": "English", "links": [server.url(path)]})
    server.add("/index.json", json.dumps(entries), "application/json")
    models.argos_package(models_folder())
    from argostranslate import settings

    monkeypatch.setattr(settings, "remote_package_index", server.url("/index.json"))


def test_install_from_index_with_sentence_model(
    tmp_path: Path, news_server: NewsServer, mt_packages: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from minisbd import models as minisbd_models

    bare_uk = without_sbd(mt_packages["uk"], tmp_path / mt_packages["uk"].name)
    _serve_index(news_server, {"ru": mt_packages["ru"], "uk": bare_uk}, monkeypatch)
    with zipfile.ZipFile(mt_packages["uk"]) as zf:
        onnx = next(n for n in zf.namelist() if n.endswith(".onnx"))
        news_server.add("/sbd/uk.onnx", zf.read(onnx), "application/octet-stream")
    monkeypatch.setattr(minisbd_models, "REPO_URL", news_server.url("/sbd/"))

    result = dozor("models", "install", "ru", "uk")
    assert result.exit_code == 0, result.output
    installed = {m.from_code: m for m in models.installed(models_folder())}
    assert set(installed) == {"ru", "uk"}
    # the uk package had no sentence model: MiniSBD's was fetched into it
    assert installed["uk"].sbd_model == installed["uk"].path / "minisbd" / "uk.onnx"
    assert news_server.fetched("/sbd/uk.onnx") == 1
    assert news_server.fetched("/index.json") == 1
    assert not list(models_folder().glob(".download-*"))


def test_sentence_model_unavailable_falls_back_to_rules(
    tmp_path: Path, news_server: NewsServer, mt_packages: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from minisbd import models as minisbd_models

    bare_ru = without_sbd(mt_packages["ru"], tmp_path / mt_packages["ru"].name)
    _serve_index(news_server, {"ru": bare_ru}, monkeypatch)
    monkeypatch.setattr(minisbd_models, "REPO_URL", news_server.url("/nothing-here/"))
    result = dozor("models", "install", "ru")
    assert result.exit_code == 0, result.output
    assert "rule-based splitting is used" in " ".join(result.output.split())
    assert "sentencex (rule-based)" in " ".join(dozor("models", "list").output.split())


def test_offline_index_says_what_to_do(news_server: NewsServer,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    models.argos_package(models_folder())
    from argostranslate import settings

    news_server.add("/index.json", "gone", status=503)
    monkeypatch.setattr(settings, "remote_package_index", news_server.url("/index.json"))
    result = dozor("models", "install", "ru")
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "cannot read the Argos package index" in message
    assert "dozor models install --file PATH.argosmodel" in message
    assert models.installed(models_folder()) == []


def test_file_install_takes_sentence_model_from_local_cache(
    tmp_path: Path, mt_packages: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from minisbd import models as minisbd_models

    bare = without_sbd(mt_packages["ru"], tmp_path / mt_packages["ru"].name)
    result = dozor("models", "install", "--file", str(bare))
    assert result.exit_code == 0, result.output
    assert "sentencex (rule-based)" in result.output
    assert "fetches it when online" in " ".join(result.output.split())

    # MiniSBD's own cache (left by an earlier argostranslate run) is used, offline
    cache = tmp_path / "minisbd-cache"
    cache.mkdir()
    with zipfile.ZipFile(mt_packages["ru"]) as zf:
        onnx = next(n for n in zf.namelist() if n.endswith(".onnx"))
        (cache / "ru.onnx").write_bytes(zf.read(onnx))
    monkeypatch.setattr(minisbd_models, "cache_dir", str(cache))
    result = dozor("models", "install", "--file", str(bare))
    assert result.exit_code == 0 and "minisbd (ru.onnx)" in result.output
    (model,) = models.installed(models_folder())
    assert model.sbd_model.read_bytes() == (cache / "ru.onnx").read_bytes()

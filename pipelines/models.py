"""Argos Translate packages: where they live, what is installed, installing more.

Packages are argostranslate's own `.argosmodel` zip files, installed into one models
directory shared by every command (`models_dir`). argostranslate's package module
reads and describes them; installing is done here because its `install_from_path`
imports `argostranslate.translate`, which needs stanza and torch, and because a
package is checked before it replaces an installed one.

Sentence splitting: a package may ship a MiniSBD model (`minisbd/<lang>.onnx`, the
ONNX port of stanza's tokenizer that argostranslate itself prefers). Installing from
the index also fetches MiniSBD's model for the source language into the package when
the package has none, so argostranslate and Dozor split the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from packaging.version import InvalidVersion, Version

from pipelines.config.config import Config
from pipelines.errors import DozorError

TARGET = "en"
SBD_DIR = "minisbd"
TIMEOUT = 30  # seconds without a byte before a download is given up

Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


class ModelError(DozorError, RuntimeError):
    """A package could not be found, fetched or installed; str() says why and what to do."""


def models_dir(config: Config) -> Path:
    """`translation.models_dir` from the settings file, else $DOZOR_MODELS_DIR, else
    <data dir>/models."""
    if config.settings.translation.models_dir:
        return Path(config.settings.translation.models_dir).expanduser()
    return config.paths.models


def argos_package(directory: Path) -> ModuleType:
    """argostranslate.package, with argostranslate's package directory set to `directory`.

    argostranslate reads ARGOS_PACKAGES_DIR once, when its settings module is first
    imported; later calls (another models dir in the same process) repoint the settings
    it reads at call time, so argostranslate's own functions see the same packages.
    """
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["ARGOS_PACKAGES_DIR"] = str(directory)
    from argostranslate import package, settings

    settings.package_data_dir = directory
    settings.package_dirs = [directory]
    return package


def install_command(lang: str) -> str:
    return f"dozor models install {lang}"


@dataclass(frozen=True)
class InstalledModel:
    from_code: str
    to_code: str
    version: str
    path: Path
    size: int  # bytes on disk
    sbd_model: Path | None  # MiniSBD model the package carries, if any

    @property
    def pair(self) -> str:
        return f"{self.from_code}_{self.to_code}"

    @property
    def name(self) -> str:
        """'argos ru_en 1.9': what an article's translation_model records."""
        return f"argos {self.pair} {self.version}"

    def package(self):
        """argostranslate's Package for this directory (metadata, tokenizer)."""
        return argos_package(self.path.parent).Package(self.path)


def _sbd_model(package_dir: Path) -> Path | None:
    found = sorted((package_dir / SBD_DIR).glob("*.onnx"))
    return found[0] if found else None


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def installed(directory: Path) -> list[InstalledModel]:
    """Translation packages in `directory`, sorted by pair then newest version first.

    A directory without metadata.json (a half-copied folder, something else) is not a
    package and is left alone rather than failing the listing.
    """
    out: list[InstalledModel] = []
    if not directory.is_dir():
        return out
    for path in sorted(directory.iterdir()):
        meta_file = path / "metadata.json"
        if path.name.startswith(".") or not meta_file.is_file():
            continue
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get("type", "translate") != "translate" or not meta.get("from_code"):
            continue
        out.append(InstalledModel(
            from_code=meta["from_code"],
            to_code=meta.get("to_code", ""),
            version=str(meta.get("package_version", "")),
            path=path,
            size=_dir_size(path),
            sbd_model=_sbd_model(path),
        ))
    out.sort(key=lambda m: _version_key(m.version), reverse=True)
    out.sort(key=lambda m: m.pair)
    return out


def find(directory: Path, from_code: str, to_code: str = TARGET) -> InstalledModel | None:
    """The newest installed package for a pair."""
    for model in installed(directory):
        if model.from_code == from_code and model.to_code == to_code:
            return model
    return None


# --- installing ----------------------------------------------------------------------


def _check_archive(archive: Path) -> tuple[str, dict]:
    """The package's top folder and metadata, or a ModelError saying what is wrong."""
    if not archive.is_file():
        raise ModelError(f"{archive}: no such file")
    if not zipfile.is_zipfile(archive):
        raise ModelError(f"{archive}: not an Argos package (.argosmodel files are zip archives)")
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        tops = {n.split("/", 1)[0] for n in names if n.strip("/")}
        if len(tops) != 1:
            raise ModelError(f"{archive}: an Argos package holds one folder, found {len(tops)}")
        top = tops.pop()
        try:
            meta = json.loads(zf.read(f"{top}/metadata.json"))
        except KeyError:
            raise ModelError(f"{archive}: no {top}/metadata.json in the package") from None
        except ValueError as exc:
            raise ModelError(f"{archive}: metadata.json is not valid JSON: {exc}") from None
        missing = [need for need in ("model/model.bin",) if f"{top}/{need}" not in names]
        if not any(f"{top}/{t}" in names for t in ("sentencepiece.model", "bpe.model")):
            missing.append("sentencepiece.model")
        if missing:
            raise ModelError(f"{archive}: incomplete package, missing {', '.join(missing)}")
    if meta.get("type", "translate") != "translate" or not meta.get("from_code"):
        raise ModelError(f"{archive}: not a translation package (metadata.json)")
    if meta.get("to_code") != TARGET:
        raise ModelError(
            f"{archive}: translates {meta.get('from_code')} to {meta.get('to_code')}; "
            f"Dozor translates into English ({TARGET})"
        )
    return top, meta


def install_file(archive: Path, directory: Path) -> InstalledModel:
    """Install an .argosmodel file into `directory`, replacing older versions of its pair.

    The archive is unpacked beside the installed packages and only moved into place once
    it is complete and readable by argostranslate, so a bad file never removes a
    working model.
    """
    top, meta = _check_archive(archive)
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".install-", dir=directory))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging)  # zipfile drops absolute paths and '..' components
        unpacked = staging / top
        try:
            argos_package(directory).Package(unpacked)
        except Exception as exc:  # argostranslate raises plain exceptions
            raise ModelError(f"{archive}: argostranslate cannot read the package: {exc}") from exc
        for old in installed(directory):
            if old.from_code == meta["from_code"] and old.to_code == meta["to_code"]:
                shutil.rmtree(old.path)
        target = directory / top
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    model = find(directory, meta["from_code"], meta["to_code"])
    assert model is not None
    return model


def download(urls: list[str], target: Path, progress: Progress | None = None) -> None:
    """Fetch the first of `urls` that answers into `target` (written whole or not at all)."""
    errors: list[str] = []
    for url in urls:
        partial = target.with_name(target.name + ".part")
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "Dozor"})
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response, \
                    partial.open("wb") as out:
                total = int(response.headers.get("content-length") or 0) or None
                done = 0
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            partial.replace(target)
            return
        except (urllib.error.URLError, OSError, ValueError) as exc:
            partial.unlink(missing_ok=True)
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
    raise ModelError("download failed: " + "; ".join(errors or ["no download link"]))


def available(directory: Path) -> list:
    """The Argos package index (argostranslate AvailablePackage objects), fetched now."""
    package = argos_package(directory)
    from argostranslate import settings

    url = settings.remote_package_index  # ARGOS_PACKAGE_INDEX moves it
    index_file = directory / "index.json"
    try:
        download([url], index_file)
        entries = json.loads(index_file.read_text(encoding="utf-8"))
    except (ModelError, ValueError) as exc:
        raise ModelError(
            f"cannot read the Argos package index at {url} ({exc}). Without network "
            "access, download the .argosmodel file on another machine (e.g. "
            "translate-ru_en-1_9.argosmodel) and install it with: "
            "dozor models install --file PATH.argosmodel"
        ) from None
    return [package.AvailablePackage(entry) for entry in entries]


def install_from_index(
    lang: str, directory: Path, index: list, progress: Progress | None = None
) -> tuple[InstalledModel, str | None]:
    """Download and install the newest lang->en package of `index` (from `available`),
    plus a sentence-splitter model.

    Returns the installed model and a notice when the splitter model could not be had.
    """
    candidates = [
        p for p in index
        if p.type == "translate" and p.from_code == lang and p.to_code == TARGET
    ]
    if not candidates:
        raise ModelError(f"the Argos package index has no {lang}→{TARGET} package")
    best = max(candidates, key=lambda p: _version_key(p.package_version))
    archive = directory / f".download-{lang}_{TARGET}.argosmodel"
    try:
        download(list(best.links), archive, progress)
        model = install_file(archive, directory)
    finally:
        archive.unlink(missing_ok=True)
    notice = fetch_sbd_model(model)
    return find(directory, model.from_code) or model, notice


def fetch_sbd_model(model: InstalledModel, download_ok: bool = True) -> str | None:
    """Put MiniSBD's model for the source language into the package, if it lacks one:
    from MiniSBD's or argostranslate's cache when an earlier use left it there, else
    (when `download_ok`) from MiniSBD's release.

    Returns None when the package has a splitter model afterwards, else a notice.
    """
    if model.sbd_model is not None:
        return None
    from argostranslate import settings
    from minisbd import models as minisbd_models

    filename = minisbd_models.MODELS.get(model.from_code)
    if filename is None:
        return f"MiniSBD has no sentence model for {model.from_code}; rule-based splitting is used"
    target = model.path / SBD_DIR / filename
    for cache in (Path(minisbd_models.cache_dir), settings.data_dir / "minisbd"):
        if (cache / filename).is_file():
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(cache / filename, target)
            return None
    if not download_ok:
        return (f"no MiniSBD sentence model for {model.from_code} in the package; rule-based "
                f"splitting is used (`{install_command(model.from_code)}` fetches it when online)")
    target.parent.mkdir(exist_ok=True)
    try:
        download([minisbd_models.REPO_URL + filename], target)
    except ModelError as exc:
        with contextlib.suppress(OSError):  # leave no empty folder behind
            target.parent.rmdir()
        return (f"no MiniSBD sentence model for {model.from_code} ({exc}); "
                "rule-based splitting is used")
    return None

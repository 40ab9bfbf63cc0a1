from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.config.config import ENVIRONMENT
from pipelines.store.sqlite import SQLiteStore
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.support.httpserver import NewsServer
from tests.support.smtpserver import SmtpServer

REPO = Path(__file__).resolve().parents[1]
SHARED_PAGES = REPO.parent / "shared" / "fixtures" / "pages"


@pytest.fixture
def news_server() -> Iterator[NewsServer]:
    server = NewsServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A real SQLite database file; modules testing another backend override it."""
    with SQLiteStore(tmp_path / "dozor.db") as s:
        yield s


@pytest.fixture
def fake() -> Iterator[FakeElasticsearch]:
    """The loopback Elasticsearch, which must have seen no protocol problem."""
    with FakeElasticsearch() as server:
        yield server
        assert server.problems == []


@pytest.fixture(scope="session")
def mt_packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Toy ru→en and uk→en Argos packages (.argosmodel), built once: tests/support/mt_model.py."""
    from tests.support.mt_model import build_package

    out = tmp_path_factory.mktemp("mt")
    return {lang: build_package(out, lang) for lang in ("ru", "uk")}


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the user's data directory, outbox or models, nor sees a variable
    of the user's that a Config reads; a test's entry point (the CLI, or Config.from_env
    in the test) reads what the test set."""
    for var in ENVIRONMENT:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOZOR_DATA_DIR", str(tmp_path / "data"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The specification check runs last: it checks what the ES tests before it sent."""
    items.sort(key=lambda item: Path(str(item.fspath)).name == "test_es_spec.py")

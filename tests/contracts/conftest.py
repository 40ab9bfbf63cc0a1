"""Every store role's contract, run over each backend: a real SQLite file, the loopback
Elasticsearch, and a live cluster when ELASTICSEARCH_URL is set (skipped otherwise,
with the reason in the report: `pytest -rs`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.store import Store
from pipelines.store.elastic import BulkSettings, ElasticStore
from pipelines.store.spool import Spool
from pipelines.store.sqlite import SQLiteStore
from tests.fakes.elasticsearch import FakeElasticsearch, fast_store
from tests.support.live_es import LIVE_CREDENTIALS, LIVE_ES_URL, NO_LIVE_ES, live_names

BACKENDS = ("sqlite", "elasticsearch", "live-elasticsearch")


@dataclass
class Backend:
    name: str
    store: Store
    reopen: Callable[[], Store]  # a second store over the same data (a restart)

    @property
    def elastic(self) -> bool:
        return self.name != "sqlite"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        def open_sqlite() -> Store:
            return SQLiteStore(tmp_path / "dozor.db")

        with open_sqlite() as store:
            yield Backend("sqlite", store, open_sqlite)
    elif request.param == "elasticsearch":
        with FakeElasticsearch() as fake:
            def open_fake() -> Store:
                return fast_store(fake.url, tmp_path / "spool")

            with open_fake() as store:
                yield Backend("elasticsearch", store, open_fake)
            assert fake.problems == []
    else:
        if not LIVE_ES_URL:
            pytest.skip(NO_LIVE_ES)
        with live_names() as names:
            def open_live() -> Store:
                return ElasticStore(LIVE_ES_URL, prefix=names.prefix,
                                    spool=Spool(tmp_path / "spool"), credentials=LIVE_CREDENTIALS,
                                    bulk=BulkSettings(initial_backoff=0.5))

            with open_live() as store:
                yield Backend("live-elasticsearch", store, open_live)


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store

"""`ElasticStore.replay_spool`, which a long-running `dozor worker` calls on its own
backoff while Elasticsearch is out of reach: the breaker does not hold it back, a
refusal is one StoreError line and keeps the spool, and once the cluster answers the
spooled articles are stored and reported new. On the loopback Elasticsearch."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.store import StoreError
from tests.fakes.elasticsearch import FakeElasticsearch, fast_store
from tests.support.articles import corpus


def test_replay_spool_retries_now_and_stores_once_back(fake: FakeElasticsearch,
                                                       tmp_path: Path) -> None:
    articles = list(corpus().values())[:4]
    with fast_store(fake.url, tmp_path / "spool", client_retries=1) as store:
        assert store.replay_spool()[1] == 0  # nothing spooled: nothing asked
        faults = []
        for method in ("GET", "HEAD", "POST", "PUT"):
            fake.fail(method, ".", 503, times=10**9)
            faults.append(fake.faults[-1])
        assert store.write(articles).spooled == len(articles)  # the breaker is down now
        with pytest.raises(StoreError) as refused:
            store.replay_spool()
        assert str(refused.value).startswith(f"cannot store the spool on Elasticsearch at "
                                             f"{fake.url}: 503")
        assert "\n" not in str(refused.value)
        assert store.spool.count() == len(articles)
        for fault in faults:
            fault.times = 0
        # asked at once, not after the breaker's recheck time
        result, left = store.replay_spool()
        assert left == 0 and sorted(result.new) == sorted(a.id for a in articles)
        assert sorted(a.id for a in store.iter_articles()) == sorted(a.id for a in articles)
        assert store.replay_spool() == (type(result)(), 0)

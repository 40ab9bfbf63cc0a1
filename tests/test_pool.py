"""The stages in worker processes: the same articles as in-process, results handed back
in submission order under a bound, and no worker outliving a killed parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from pipelines import process, relevance
from pipelines.article import RawPage, utcnow
from pipelines.pool import StagePool, ordered
from pipelines.store.sqlite import SQLiteStore
from tests.conftest import REPO, SHARED_PAGES

TOPIC = REPO / "dozor" / "defaults" / "topic.yaml"
LANGUAGES = ("ru", "uk", "en")


def _pages() -> list[RawPage]:
    files = sorted(SHARED_PAGES.glob("*/*.html"))[:24]
    return [RawPage(url=f"https://site.example/{n}", final_url=f"https://site.example/{n}",
                    status=200, headers={"content-type": "text/html"}, body=f.read_bytes(),
                    source="corpus", fetched_at=utcnow()) for n, f in enumerate(files)]


def _stored(store: SQLiteStore) -> list[tuple]:
    return sorted((a.id, a.lang, a.terms, a.relevant, a.cluster_id, a.content_hash,
                   tuple(a.minhash)) for a in store.iter_articles())


def test_pooled_stages_store_what_the_in_process_stages_store(tmp_path: Path) -> None:
    pages = _pages()
    profile = relevance.load_topic(TOPIC)
    alone = SQLiteStore(tmp_path / "alone.db")
    process.Pipeline(store=alone, profile=profile).process(pages)

    pooled = SQLiteStore(tmp_path / "pooled.db")
    with StagePool(2, process._worker_setup, (LANGUAGES, str(TOPIC)),
                   preload=["pipelines.process"]) as pool:
        pipeline = process.Pipeline(store=pooled, profile=profile, pool=pool)
        batches = [pages[i:i + 5] for i in range(0, len(pages), 5)]
        for batch, analysed in ordered(batches, pipeline.submit, 4):
            pipeline.store_batch(batch, analysed.result())
    assert pipeline.totals.pages == len(pages)
    assert {"extract", "language", "terms", "relevance", "dedup", "store"} <= set(
        pipeline.totals.seconds)
    assert len(_stored(pooled)) > 15
    assert _stored(pooled) == _stored(alone)


def test_ordered_hands_results_back_in_order_with_at_most_limit_in_flight() -> None:
    handed_back: list[int] = []
    in_flight: list[int] = []

    def work(n: int) -> int:
        time.sleep(0.01 * (6 - n))  # the later ones finish first
        return n * n

    with ThreadPoolExecutor(4) as threads:
        def submit(n: int) -> Future[int]:
            in_flight.append(n - len(handed_back) + 1)
            return threads.submit(work, n)

        for n, future in ordered(range(6), submit, 3):
            assert future.done() and future.result() == n * n
            handed_back.append(n)
    assert handed_back == list(range(6))
    assert max(in_flight) <= 3


_KILLED_PARENT = """
import sys
from pipelines.pool import StagePool
from tests.test_pool import worker_pid
if __name__ == "__main__":
    pool = StagePool(2)
    pids = {pool.submit(worker_pid).result() for _ in range(8)}
    print(" ".join(map(str, pids)), flush=True)
    import time; time.sleep(600)
"""


def worker_pid() -> int:
    time.sleep(0.05)
    return os.getpid()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a reaped-late zombie is dead too
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_workers_end_when_the_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(_KILLED_PARENT, encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert parent.stdout is not None
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert pids and all(_alive(p) for p in pids)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)

"""Worker processes for CPU-bound stage work, beside the process that owns the store.

A `concurrent.futures.ProcessPoolExecutor` does the hand-off. Workers come from a fork
server (a clean interpreter that imported the stages once), never from a fork of the
crawling process with its reactor, threads and open database. A worker ends itself when
the process that started the pool is gone (killed, even by SIGKILL): the batches it held
were never stored or marked seen, so the next run fetches them again.

`ordered` runs batches through a pool with a bound on the batches in flight and hands
their results back in submission order: `dozor reprocess` and `dozor translate` use it,
the crawl's item pipeline (`crawler.batches`) does the same on the reactor.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# how often a worker checks that the process that started its pool is still there
_WATCH_SECONDS = 0.5


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity masks on this platform
        return max(1, os.cpu_count() or 1)


def worker_count(setting: int | None) -> int:
    """Worker processes for a `stage_workers` setting: None one per usable CPU, 0 none
    (the stages run in the calling process)."""
    return usable_cpus() if setting is None else setting


def _start_worker(creator: int, setup: Callable[..., None] | None,
                  args: tuple[Any, ...]) -> None:
    # Ctrl-C reaches the whole process group: the parent decides what stops
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s [%(name)s] %(levelname)s: %(message)s")
    threading.Thread(target=_watch_parent, args=(creator, os.getppid()), daemon=True,
                     name="parent-watch").start()
    if setup is not None:
        setup(*args)


def _watch_parent(creator: int, parent: int) -> None:
    # the process that made the pool is gone, or the fork server (which exits with it)
    # is, and this worker was re-parented
    while os.getppid() == parent and _exists(creator):
        time.sleep(_WATCH_SECONDS)
    os._exit(1)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StagePool:
    """`workers` processes, each set up once by `setup(*args)` (load a profile, compile
    rules), running the functions `submit` is given."""

    def __init__(self, workers: int, setup: Callable[..., None] | None = None,
                 args: tuple[Any, ...] = (), preload: Iterable[str] = ()) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(preload))
        self.workers = workers
        self._executor = ProcessPoolExecutor(workers, mp_context=context,
                                             initializer=_start_worker,
                                             initargs=(os.getpid(), setup, args))

    def start(self) -> None:
        """Every worker process up now, not at the first batch. Started lazily, the first
        `submit` blocks its caller until the fork server has imported the stages: seconds
        on an idle machine, far more with several crawlers starting on the same cores,
        and a crawl submitting from its reactor thread stops downloading, answering and
        renewing anything meanwhile. One submit per worker spawns them all."""
        for future in [self._executor.submit(os.getpid) for _ in range(self.workers)]:
            future.result()

    def submit(self, fn: Callable[..., R], *args: Any) -> Future[R]:
        return self._executor.submit(fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> StagePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ordered(items: Iterable[T], submit: Callable[[T], Future[R]], limit: int
            ) -> Iterator[tuple[T, Future[R]]]:
    """(item, its finished future) for every item, in the order of `items`, with at most
    `limit` submitted and not yet handed back: reading stops while the pool is behind."""
    waiting: deque[tuple[T, Future[R]]] = deque()
    for item in items:
        waiting.append((item, submit(item)))
        while len(waiting) >= max(1, limit):
            head = waiting.popleft()
            _wait(head[1])
            yield head
    while waiting:
        head = waiting.popleft()
        _wait(head[1])
        yield head


def _wait(future: Future[Any]) -> None:
    try:
        future.exception()  # blocks until done; the caller reads result() itself
    except Exception:  # cancelled: result() raises it again for the caller
        pass


def done_future(fn: Callable[..., R], *args: Any) -> Future[R]:
    """`fn(*args)` run here and now, as a finished future (no pool configured)."""
    future: Future[R] = Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:  # handed to whoever reads the result, as a pool would
        future.set_exception(exc)
    return future

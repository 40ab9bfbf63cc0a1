"""`dozor schedule`: the full cycle on a cron expression or an interval.

Each cycle is `dozor run` in a child process: Scrapy's Twisted reactor cannot be
started twice in one process, and a child that crashes or leaks takes nothing of the
scheduler with it. Cycles never overlap: APScheduler runs at most one instance of the
job (a tick that comes while a cycle is still running is skipped, late ticks are
coalesced into one), and the child takes the run lock (dozor.lock), so a `dozor run`
started by hand or by cron at the same time does not run either.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from dozor.lock import LOCK_BUSY_EXIT
from pipelines.errors import DozorError

log = logging.getLogger("dozor.schedule")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"(\d+)([smhd])")


class ScheduleError(DozorError, ValueError):
    """A bad --cron / --every / --timeout value; str() says which and why."""


def parse_duration(text: str, option: str = "--every") -> timedelta:
    """'30m', '1h30m', '90s', '1d' -> timedelta."""
    compact = text.replace(" ", "").lower()
    parts = _DURATION_RE.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ScheduleError(f"{option} {text!r}: expected a duration such as 30m, 1h30m, 90s or 1d")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ScheduleError(f"{option} {text!r}: must be longer than zero")
    return timedelta(seconds=seconds)


def make_trigger(cron: str | None, every: str | None) -> BaseTrigger:
    if cron and every:
        raise ScheduleError("give either --cron or --every, not both")
    if cron:
        try:
            return CronTrigger.from_crontab(cron)
        except ValueError as exc:
            raise ScheduleError(f"--cron {cron!r}: {exc}") from None
    return IntervalTrigger(seconds=parse_duration(every or "30m").total_seconds())


def run_command(run_args: Sequence[str]) -> list[str]:
    """`dozor run` with the given options, with this interpreter."""
    return [sys.executable, "-m", "dozor", "run", *run_args]


@dataclass
class CycleOutcome:
    number: int
    started: datetime
    seconds: float
    returncode: int | None  # None: killed at the timeout
    output: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.returncode == 0:
            return "done"
        if self.returncode == LOCK_BUSY_EXIT:
            return "skipped: another cycle holds the run lock"
        if self.returncode is None:
            return "killed at the timeout"
        return f"failed with exit code {self.returncode}"


class CycleRunner:
    """Runs one cycle as a child process and logs its output line by line as it comes."""

    def __init__(self, command: Sequence[str], timeout: timedelta | None = None) -> None:
        self.command = list(command)
        self.timeout = timeout
        self.cycles = 0

    def __call__(self) -> CycleOutcome:
        self.cycles += 1
        number, started, t0 = self.cycles, datetime.now().astimezone(), time.monotonic()
        log.info("cycle %d started: %s", number, " ".join(self.command[2:]))
        outcome = CycleOutcome(number, started, 0.0, None)
        # wide enough that the child's lines are not wrapped into the log
        env = {**os.environ, "COLUMNS": os.environ.get("DOZOR_LOG_COLUMNS", "200")}
        with subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, encoding="utf-8", errors="replace", env=env) as child:
            timer = None
            timed_out = threading.Event()
            if self.timeout:
                def kill() -> None:
                    timed_out.set()
                    child.kill()

                timer = threading.Timer(self.timeout.total_seconds(), kill)
                timer.start()
            assert child.stdout is not None
            for line in child.stdout:
                line = line.rstrip()
                if line:
                    outcome.output.append(line)
                    log.info("cycle %d | %s", number, line)
            child.wait()
            if timer:
                timer.cancel()
        outcome.returncode = None if timed_out.is_set() else child.returncode
        outcome.seconds = time.monotonic() - t0
        level = logging.INFO if outcome.returncode in (0, LOCK_BUSY_EXIT) else logging.ERROR
        log.log(level, "cycle %d %s in %.1fs", number, outcome.status, outcome.seconds)
        return outcome


def run_schedule(trigger: BaseTrigger, runner: CycleRunner, max_cycles: int | None = None,
                 start_now: bool = True) -> int:
    """Run `runner` on `trigger` until interrupted (or after `max_cycles`); returns cycles run."""
    scheduler = BlockingScheduler(
        executors={"default": ThreadPoolExecutor(1)},
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
    )

    def job() -> None:
        runner()
        if max_cycles is not None and runner.cycles >= max_cycles:
            scheduler.shutdown(wait=False)

    def overran(event: JobSubmissionEvent) -> None:
        tick = event.scheduled_run_times[0] if event.scheduled_run_times else None
        log.warning("tick at %s skipped: cycle %d is still running",
                    f"{tick:%H:%M:%S}" if tick else "?", runner.cycles)

    scheduler.add_listener(overran, EVENT_JOB_MAX_INSTANCES)

    now = datetime.now().astimezone()
    first = now if start_now else trigger.get_next_fire_time(None, now)
    scheduler.add_job(job, trigger, id="cycle", name="dozor run", next_run_time=first)
    log.info("schedule: %s; first cycle at %s", trigger, f"{first:%Y-%m-%d %H:%M:%S %Z}")
    # SIGTERM (systemd stop, docker stop) ends the schedule like Ctrl-C: the running
    # cycle is left to finish, no new one starts
    previous = signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        if scheduler.running:
            scheduler.shutdown(wait=False)
        log.info("schedule stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
    return runner.cycles

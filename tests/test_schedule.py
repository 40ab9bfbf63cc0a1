"""`dozor schedule` and the run lock: real `dozor run` child processes crawling the
bundled demo site on 127.0.0.1, a real SMTP server, and real competing processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from typer.testing import CliRunner

from dozor.cli import app
from dozor.demo.server import DemoServer
from dozor.lock import LOCK_BUSY_EXIT, LockBusy, lock_path, run_lock
from dozor.schedule import ScheduleError, make_trigger, parse_duration
from pipelines.config.config import Config
from pipelines.store import open_store
from tests.conftest import REPO
from tests.support.alerts import RECRUITMENT_RULES, rules_file
from tests.support.smtpserver import SmtpServer

# the demo site's on-topic stories: 3 Russian, 2 Ukrainian, 2 English, no copies
DIGEST_SUBJECT = "7 new stories — Prisoner recruitment: ru 3, en 2, uk 2"
HOLD_LOCK = (
    "import sys, time\n"
    "from dozor.lock import run_lock\n"
    "from pipelines.config.config import Config\n"
    "with run_lock(Config.from_env().paths.data, 'test holder'):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(120)\n"
)


@pytest.fixture
def site() -> Iterator[DemoServer]:
    with DemoServer() as server:
        yield server


@pytest.fixture
def cycle_files(tmp_path: Path, site: DemoServer) -> list[str]:
    """`dozor run` options for the demo site, a database file and a test rule."""
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump(site.site.sources()), encoding="utf-8")
    return ["--sources", str(sources), "--db", str(tmp_path / "dozor.db"),
            "--alerts", str(rules_file(tmp_path, RECRUITMENT_RULES)),
            "--allow-private-network"]


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


def dozor(*args: str, env: dict[str, str] | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dozor", *args], cwd=REPO, text=True,
                          capture_output=True, env=env or child_env(), timeout=timeout)


@pytest.fixture
def lock_holder() -> Iterator[subprocess.Popen[str]]:
    """Another process holding the run lock of this test's data directory."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK], cwd=REPO, text=True,
                              stdout=subprocess.PIPE, env=child_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait(10)


def test_durations_and_triggers() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1d") == timedelta(days=1)
    for bad in ("30", "m", "1h 30x", "-5m", "0s", "1.5h"):
        with pytest.raises(ScheduleError):
            parse_duration(bad)
    assert isinstance(make_trigger("*/30 * * * *", None), CronTrigger)
    every = make_trigger(None, "45m")
    assert isinstance(every, IntervalTrigger) and every.interval == timedelta(minutes=45)
    assert make_trigger(None, None).interval == timedelta(minutes=30)  # type: ignore[attr-defined]
    with pytest.raises(ScheduleError, match="Wrong number of fields"):
        make_trigger("*/30 * *", None)
    with pytest.raises(ScheduleError, match="either --cron or --every"):
        make_trigger("* * * * *", "5m")


def test_lock_is_exclusive_within_one_process_too() -> None:
    data = Config.from_env().paths.data
    with run_lock(data, "first"):
        with pytest.raises(LockBusy, match=r"another Dozor cycle is running \(first, pid"):
            with run_lock(data, "second"):
                pass
    with run_lock(data, "after"):
        assert "after, pid" in lock_path(data).read_text()


def test_no_second_cycle_while_another_holds_the_lock_and_a_crash_frees_it(
        lock_holder: subprocess.Popen[str], cycle_files: list[str]) -> None:
    db = Path(cycle_files[3])
    busy = dozor("run", *cycle_files)
    assert busy.returncode == LOCK_BUSY_EXIT
    message = " ".join(busy.stderr.split())
    assert f"another Dozor cycle is running (test holder, pid {lock_holder.pid}" in message
    assert "not starting a second one" in message and "Traceback" not in busy.stderr
    # the scheduler's cycle is skipped the same way, and the schedule goes on
    scheduled = dozor("schedule", "--every", "1h", "--cycles", "1", *cycle_files)
    assert scheduled.returncode == 0, scheduled.stderr
    assert "cycle 1 skipped: another cycle holds the run lock" in scheduled.stderr
    assert not db.exists()  # neither opened the database

    lock_holder.send_signal(signal.SIGKILL)  # a crash: no clean-up runs
    lock_holder.wait(10)
    freed = dozor("alerts", "send", *cycle_files[2:6])
    assert freed.returncode == 0, freed.stderr
    assert db.exists()


def test_schedule_runs_cycles_one_at_a_time_and_delivers_each_story_once(
        cycle_files: list[str], smtp: SmtpServer, site: DemoServer) -> None:
    """SMTP answers 451 during the first cycle and is back for the second: the digest
    arrives once, with every on-topic story of the site."""
    smtp.mode = "451 4.3.0 Mail server temporarily busy"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "dozor", "schedule", "--every", "1s", "--cycles", "2",
         *cycle_files],
        cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=child_env(**smtp.env()))
    log: list[str] = []

    def read() -> None:
        assert scheduler.stdout is not None
        for line in scheduler.stdout:
            log.append(line.rstrip())
            if re.search(r"cycle 1 (done|failed)", line):
                smtp.mode = "accept"

    reader = threading.Thread(target=read)
    reader.start()
    try:
        scheduler.wait(240)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
        reader.join(10)
    text = "\n".join(log)
    assert scheduler.returncode == 0, text

    # cycle 1 stored the stories but could not send; cycle 2 sent them once
    assert re.search(r"cycle 1 \| crawl: \d+ requests", text), text
    assert re.search(r"cycle 1 \| stages: \d+ articles, 7 relevant", text), text
    assert "cycle 1 |   recruitment: NOT sent, 7 stories stay pending" in text
    # cycle 2 comes a second later: no source is due, the pending digest goes all the same
    sources = len(site.site.sources()["sources"])
    assert f"cycle 1 | due: {sources} source(s) crawled, 0 not due yet" in text, text
    assert f"cycle 2 | due: 0 source(s) crawled, {sources} not due yet" in text, text
    assert "cycle 2 | crawl:" not in text
    assert "cycle 2 | alerts: 1 rule(s), 0 new match(es); 1 digest(s) sent" in text
    assert [m["Subject"] for m in smtp.messages()] == [DIGEST_SUBJECT]
    # never two cycles at once: each started after the previous one ended
    events = [line for line in log if re.search(r"cycle \d (started|done|failed)", line)]
    assert [re.search(r"cycle (\d) (\w+)", e).groups() for e in events] == [  # type: ignore[union-attr]
        ("1", "started"), ("1", "done"), ("2", "started"), ("2", "done")]
    assert re.search(r"cycle 2 done in \d+\.\ds", text)


def test_schedule_rejects_bad_options_before_starting(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["schedule", "--every", "soon"])
    assert result.exit_code == 2 and "--every 'soon'" in " ".join(result.output.split())
    bad = rules_file(tmp_path, "rules:\n  - name: x\n    query: '('\n    to: [a@example.org]\n")
    result = CliRunner().invoke(app, ["schedule", "--alerts", str(bad)])
    assert result.exit_code == 2 and "rules[0] (x) → query" in result.output


def test_a_cycle_over_its_timeout_is_killed_and_the_schedule_goes_on(
        cycle_files: list[str]) -> None:
    result = dozor("schedule", "--every", "1h", "--cycles", "1", "--timeout", "1s",
                   *cycle_files)
    assert result.returncode == 0, result.stderr
    assert re.search(r"cycle 1 killed at the timeout in 1\.\ds", result.stderr), result.stderr


def attempts(db: Path) -> dict[str, datetime | None]:
    store = open_store(db=db)
    try:
        return {r.url: r.last_attempt for r in store.health_records()}
    finally:
        store.close()


def test_a_tick_crawls_only_the_due_sources_and_all_crawls_every_one(
        cycle_files: list[str], site: DemoServer) -> None:
    db = Path(cycle_files[3])
    names = [s["name"] for s in site.site.sources()["sources"]]
    first = dozor("run", *cycle_files)
    assert first.returncode == 0, first.stderr
    fresh = attempts(db)
    assert fresh and len(names) > 1

    # right after a run nothing is due: the tick crawls nothing
    idle = dozor("schedule", "--every", "1h", "--cycles", "1", *cycle_files)
    assert idle.returncode == 0, idle.stderr
    assert f"due: 0 source(s) crawled, {len(names)} not due yet" in idle.stderr, idle.stderr
    assert "cycle 1 | crawl:" not in idle.stderr and attempts(db) == fresh

    # one source's poll falls due: the tick crawls that one only
    store = open_store(db=db)
    try:
        due = [r for r in store.health_records() if r.source == names[0]]
        for record in due:
            record.next_due = datetime.now(UTC) - timedelta(minutes=1)
        store.put_health(due)
    finally:
        store.close()
    tick = dozor("schedule", "--every", "1h", "--cycles", "1", *cycle_files)
    assert tick.returncode == 0, tick.stderr
    assert f"due: 1 source(s) crawled, {len(names) - 1} not due yet" in tick.stderr
    after = attempts(db)
    assert {url for url in fresh if after[url] != fresh[url]} == {r.url for r in due}

    # --all: every source at each tick, as before
    every = dozor("schedule", "--every", "1h", "--cycles", "1", "--all", *cycle_files)
    assert every.returncode == 0, every.stderr
    assert "due:" not in every.stderr and re.search(r"cycle 1 \| crawl: \d+ requests",
                                                    every.stderr)
    latest = attempts(db)
    assert all(latest[url] != after[url] for url in fresh)

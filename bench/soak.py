"""Soak: `dozor run` killed (SIGKILL) at random points over a news site on 127.0.0.1,
with a mail server that drops, stalls and refuses at random, again and again; then the
promises are checked.

    .venv/bin/python -m bench.soak [--iterations 50] [--seed N]

Each iteration starts from an empty database: one `dozor run` killed at a random
moment (a random time into the run, or from inside the SMTP server at a RCPT or right
after a whole message arrived, before its reply), one `dozor run` left to finish, both
with faults at the SMTP side (a connection dropped before DATA or after the end of the
message, a 250 slower than the client's timeout, a 451), then one `dozor alerts send`
with the faults off. Then, for the iteration:

- every reachable article of the site (tests/site_unseen/gold.yaml) is stored exactly
  once, and nothing else is;
- every on-topic story is in at least one digest (never lost), and in at most one
  digest not marked `X-Dozor-Possible-Repeat: yes` (never mailed twice unmarked); an
  off-topic one in none;
- nothing is left pending, and `PRAGMA integrity_check` answers ok.

It prints the counts and exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from aiosmtpd.smtp import Envelope, Session

from pipelines.config.paths import default_alerts
from tests.support.httpserver import NewsServer, serve_site
from tests.support.smtpserver import SmtpServer

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "tests" / "site_unseen"
GOLD = yaml.safe_load((SITE / "gold.yaml").read_text(encoding="utf-8"))
RULE = "prisoner-recruitment"
REPEAT = "X-Dozor-Possible-Repeat"
SMTP_TIMEOUT = 1.0
FAULTS = ("drop before DATA", "drop after the end of DATA", "250 after the timeout", "451")
KILLS = ("at a random time", "at RCPT", "after the whole message, before the reply")


class FaultySmtp(SmtpServer):
    """Answers each message with a random fault (or not), and can kill the sender at a
    chosen point of the conversation."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng
        self.fault_rate = 0.0
        self.faults: Counter[str] = Counter()
        self.victim: subprocess.Popen[str] | None = None
        self.kill_at: str | None = None  # one of KILLS[1:]
        self.killed_at: str | None = None
        self._session_fault: dict[int, str] = {}

    def _kill(self, point: str) -> None:
        if self.kill_at == point and self.victim is not None and self.victim.poll() is None:
            self.victim.send_signal(signal.SIGKILL)
            self.killed_at, self.kill_at = point, None

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        self._kill("at RCPT")
        key = id(session)
        if key not in self._session_fault:
            roll = self.rng.random() < self.fault_rate
            self._session_fault[key] = self.rng.choice(FAULTS) if roll else ""
        if self._session_fault[key] == "drop before DATA":
            self.faults["drop before DATA"] += 1
            server.transport.close()
            return "421 closing"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.attempts += 1
        fault = self._session_fault.pop(id(session), "")
        if fault:
            self.faults[fault] += 1
        if fault == "drop after the end of DATA":
            server.transport.close()
            return "421 closing"
        if fault == "451":
            return "451 4.3.0 Try again later"
        self.received.append(envelope)
        self._kill("after the whole message, before the reply")
        if fault == "250 after the timeout":
            await asyncio.sleep(SMTP_TIMEOUT * 1.5)
        return "250 2.0.0 Message accepted for delivery"


@dataclass
class Totals:
    iterations: int = 0
    runs: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    finished_before_kill: int = 0
    messages: int = 0
    repeats: int = 0  # messages marked as a possible repeat
    stored: int = 0
    stories: int = 0
    once: int = 0  # stories in exactly one message
    with_repeat: int = 0  # stories in one unmarked message and marked repeats, or only marked
    lost: int = 0
    unmarked_twice: int = 0
    off_topic_mailed: int = 0
    stored_wrong: int = 0  # iterations whose stored set was not the site's, once each
    left_pending: int = 0
    integrity_failures: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self, faults: Counter[str], seconds: float) -> list[str]:
        kills = ", ".join(f"{n} {k}" for k, n in sorted(self.kills.items())) or "none"
        return [
            f"soak: {self.iterations} iterations, {self.runs} dozor processes, "
            f"{seconds:.0f} s",
            f"  SIGKILLs: {sum(self.kills.values())} ({kills}); "
            f"{self.finished_before_kill} run(s) ended before their kill time",
            "  SMTP faults: " + (", ".join(f"{n} {k}" for k, n in sorted(faults.items()))
                                 or "none"),
            f"  articles stored: {self.stored} (each exactly once: "
            f"{'yes' if not self.stored_wrong else f'NO in {self.stored_wrong} iteration(s)'})",
            f"  digests received: {self.messages}, of them marked possible repeat: "
            f"{self.repeats}",
            f"  on-topic stories: {self.stories}; delivered exactly once: {self.once}; "
            f"once plus marked repeat(s): {self.with_repeat}; lost: {self.lost}; "
            f"twice unmarked: {self.unmarked_twice}; off-topic mailed: "
            f"{self.off_topic_mailed}",
            f"  left pending: {self.left_pending}; integrity_check failures: "
            f"{self.integrity_failures}",
        ]


def _serve(server: NewsServer) -> Path:
    site = serve_site(server, SITE)
    work = Path(tempfile.mkdtemp(prefix="dozor-soak-"))
    sources = work / "sources.yaml"
    sources.write_text(yaml.safe_dump(site.sources(), allow_unicode=True), encoding="utf-8")
    shipped = yaml.safe_load(default_alerts().read_text(encoding="utf-8"))
    rule = next(r for r in shipped["rules"] if r["name"] == RULE)
    (work / "alerts.yaml").write_text(
        yaml.safe_dump({"rules": [{**rule, "to": ["desk@example.org"]}]}, allow_unicode=True),
        encoding="utf-8")
    return work


def _env(work: Path, smtp: SmtpServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DOZOR_") and k != "ELASTICSEARCH_URL"}
    env.update(DOZOR_DATA_DIR=str(work / "data"), DOZOR_ALLOWED_NETWORKS="127.0.0.1/32",
               DOZOR_MAIL_FROM="dozor@example.org", **smtp.env(
                   DOZOR_SMTP_TIMEOUT=str(SMTP_TIMEOUT)))
    return env


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("a") as out:
        return subprocess.Popen([sys.executable, "-m", "dozor", *args], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, text=True)


def _listed(message: EmailMessage) -> list[str]:
    text = message.get_body(("plain",))
    content = text.get_content() if text is not None else ""  # type: ignore[union-attr]
    return [t.strip() for t in re.findall(r"^\d+\. (.+)$", content, flags=re.M)]


def iteration(n: int, work: Path, smtp: FaultySmtp, rng: random.Random, typical: float,
              totals: Totals) -> float:
    """One iteration; the duration of its unkilled run."""
    db = work / f"soak-{n}.db"
    env = _env(work, smtp)
    log = work / f"soak-{n}.log"
    run_args = ["run", "--sources", str(work / "sources.yaml"), "--db", str(db),
                "--alerts", str(work / "alerts.yaml")]
    first_mail = len(smtp.received)
    smtp.fault_rate = 0.5

    # 1. killed at a random point
    kill = rng.choice(KILLS)
    smtp.kill_at = kill if kill != KILLS[0] else None
    smtp.killed_at = None
    victim = _start(run_args, env, log)
    smtp.victim = victim
    deadline = time.monotonic() + rng.uniform(0.3, typical * 1.2)
    while victim.poll() is None:
        if time.monotonic() >= deadline and kill == KILLS[0]:
            victim.send_signal(signal.SIGKILL)
            break
        if time.monotonic() >= deadline + typical * 2:  # the SMTP point was never reached
            victim.send_signal(signal.SIGKILL)
            kill = KILLS[0]
            break
        time.sleep(0.02)
    victim.wait()
    smtp.victim, smtp.kill_at = None, None
    totals.runs += 1
    if victim.returncode == -signal.SIGKILL:
        totals.kills[smtp.killed_at or kill] += 1
    else:
        totals.finished_before_kill += 1

    # 2. a run left to finish, still with faults; 3. the faults off, what is pending sent
    started = time.monotonic()
    for args in (run_args, ["alerts", "send", "--db", str(db),
                            "--alerts", str(work / "alerts.yaml")]):
        process = _start(args, env, log)
        process.wait(timeout=300)
        totals.runs += 1
        smtp.fault_rate = 0.0
        if args[0] == "run":
            took = time.monotonic() - started
        elif process.returncode != 0:
            totals.problems.append(f"iteration {n}: alerts send exited {process.returncode}, "
                                   f"see {log}")
    time.sleep(SMTP_TIMEOUT * 2)  # a slow 250 in flight has been stored by now
    _check(n, db, smtp.messages()[first_mail:], totals)
    return took


def _check(n: int, db: Path, mail: list[EmailMessage], totals: Totals) -> None:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as raw:
        urls = [r[0] for r in raw.execute("SELECT canonical_url FROM articles")]
        pending = raw.execute("SELECT count(*) FROM deliveries "
                              "WHERE status IN ('pending', 'sending')").fetchone()[0]
        integrity = raw.execute("PRAGMA integrity_check").fetchall()
    stored = Counter(urlsplit(u).path for u in urls)
    gold = sorted(g["path"] for g in GOLD["articles"])
    totals.stored += len(urls)
    if sorted(stored) != gold or any(c != 1 for c in stored.values()):
        totals.stored_wrong += 1
        totals.problems.append(f"iteration {n}: stored {sorted(stored.elements())}")
    totals.left_pending += pending
    if integrity != [("ok",)]:
        totals.integrity_failures += 1
        totals.problems.append(f"iteration {n}: integrity_check {integrity}")
    totals.messages += len(mail)
    totals.repeats += sum(1 for m in mail if m.get(REPEAT) == "yes")
    on_topic = [g["title"] for g in GOLD["articles"] if g["relevant"] and "syndicated_of" not in g]
    for title in on_topic:
        carrying = [m for m in mail if title in _listed(m)]
        unmarked = [m for m in carrying if m.get(REPEAT) != "yes"]
        totals.stories += 1
        if not carrying:
            totals.lost += 1
            totals.problems.append(f"iteration {n}: story lost: {title}")
        elif len(unmarked) > 1:
            totals.unmarked_twice += 1
            totals.problems.append(f"iteration {n}: mailed {len(unmarked)} times "
                                   f"unmarked: {title}")
        elif len(carrying) == 1 and unmarked:
            totals.once += 1
        else:
            totals.with_repeat += 1
    off_topic = [g["title"] for g in GOLD["articles"] if not g["relevant"]]
    totals.off_topic_mailed += sum(1 for m in mail for t in _listed(m) if t in off_topic)


def soak(iterations: int, seed: int) -> tuple[Totals, Counter[str], float]:
    rng = random.Random(seed)
    totals = Totals()
    server = NewsServer().start()
    smtp = FaultySmtp(rng)
    smtp.start()
    started = time.monotonic()
    try:
        work = _serve(server)
        typical = 6.0  # until the first unkilled run says how long one takes
        for n in range(iterations):
            typical = iteration(n, work, smtp, rng, typical, totals)
            totals.iterations += 1
    finally:
        smtp.stop()
        server.stop()
    return totals, smtp.faults, time.monotonic() - started


def ok(totals: Totals) -> bool:
    return not totals.problems and totals.left_pending == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--seed", type=int, default=16)
    options = parser.parse_args(argv)
    totals, faults, seconds = soak(options.iterations, options.seed)
    for line in totals.lines(faults, seconds):
        print(line)
    for problem in totals.problems:
        print(f"  PROBLEM {problem}")
    return 0 if ok(totals) else 1


if __name__ == "__main__":
    sys.exit(main())

"""A short soak (bench/soak.py): `dozor run` killed at random points over the news site
on 127.0.0.1, with SMTP faults at the aiosmtpd side, then every promise checked: each
reachable article stored once, each on-topic story delivered exactly once or marked as
a possible repeat, never lost, nothing pending, `PRAGMA integrity_check` clean.
`python -m bench.soak --iterations 50` is the long one."""

from __future__ import annotations

from bench.soak import GOLD, ok, soak

ITERATIONS = 2


def test_a_short_soak_keeps_every_promise() -> None:
    totals, faults, _ = soak(ITERATIONS, seed=5)
    report = "\n".join(totals.lines(faults, 0) + totals.problems)
    assert ok(totals), report
    assert totals.iterations == ITERATIONS and sum(totals.kills.values()) + \
        totals.finished_before_kill == ITERATIONS
    assert totals.stored == ITERATIONS * len(GOLD["articles"])
    on_topic = sum(1 for g in GOLD["articles"] if g["relevant"] and "syndicated_of" not in g)
    assert totals.stories == ITERATIONS * on_topic == totals.once + totals.with_repeat
    assert totals.lost == totals.unmarked_twice == totals.off_topic_mailed == 0

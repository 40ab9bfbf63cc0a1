"""Where a long piece of work stands: the work says it, whoever started it shows it.

The crawl, revisits, `dozor reprocess` and `dozor translate` hand `Snapshot`s to a
`Reporter`; the CLI picks the reporter (a live display on a terminal, a plain line or
JSON log record every few seconds otherwise), so no layer below it knows how progress
looks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol


@dataclass(frozen=True)
class Count:
    label: str  # what is counted: "fetched", "processed", "translated", ...
    done: int
    total: int | None = None  # None: not known (yet)


@dataclass(frozen=True)
class Snapshot:
    """One piece of work (`work`: "crawl", "revisit", ...) as it stands. The first count
    is the headline, in `unit`s; `parts` break the counts down (per source), one figure
    per count, in the same order."""

    work: str
    unit: str
    counts: tuple[Count, ...]
    parts: dict[str, tuple[int, ...]] = field(default_factory=dict)
    final: bool = False  # the work is over: this is its last snapshot

    def adding(self, *counts: Count) -> Snapshot:
        return replace(self, counts=self.counts + counts)


class Reporter(Protocol):
    # seconds between the snapshots a producer driven by a timer sends (a producer that
    # loops may send one per step: the reporter keeps to its own pace)
    interval: float

    def __call__(self, snapshot: Snapshot) -> None: ...

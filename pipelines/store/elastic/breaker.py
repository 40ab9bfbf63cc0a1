"""After a failed contact the cluster is not asked again for a while."""

from __future__ import annotations

import time

from pipelines.store.elastic.connection import describe

# A crawl during an outage then goes straight to the spool instead of waiting out
# retries at every step.
RECHECK_SECONDS = 30.0


class Breaker:
    """Remembers the last failure and why, for RECHECK_SECONDS."""

    def __init__(self) -> None:
        self._down_at: float | None = None
        self._reason = ""

    def down(self) -> str | None:
        """Why the cluster counts as unavailable, when it failed less than
        RECHECK_SECONDS ago."""
        if self._down_at is not None and time.monotonic() - self._down_at < RECHECK_SECONDS:
            return self._reason
        return None

    def went_down(self, cause: BaseException | str) -> str:
        self._down_at = time.monotonic()
        self._reason = cause if isinstance(cause, str) else describe(cause)
        return self._reason

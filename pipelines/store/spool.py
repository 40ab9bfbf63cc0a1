"""Batches a remote index could not take, kept on disk until the next write replays them.

One file per batch, written atomically (temporary file, fsync, rename), so a crash
leaves either the whole batch or nothing. A file is deleted only after the index
acknowledged every article in it; replaying a batch twice is harmless because
documents are written by id (`Article.id`), so nothing is lost and nothing doubles.

Articles the index refused for a reason a retry cannot fix (a mapping error) go to
`rejected/`, with the error, for a person to look at: they are never dropped silently.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.article import Article, utcnow

log = logging.getLogger(__name__)

FORMAT = 1
SUFFIX = ".jsonl"
ANNOUNCED = "announced.json"


@dataclass
class SpooledBatch:
    path: Path
    articles: list[Article] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # canonical URLs marked seen, not stored


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def rejected_dir(self) -> Path:
        return self.directory / "rejected"

    @property
    def unreadable_dir(self) -> Path:
        return self.directory / "unreadable"

    def put(self, articles: Iterable[Article] = (), seen: Iterable[str] = (),
            reason: str = "") -> Path | None:
        """Keep one batch; returns its file, or None when there was nothing to keep."""
        lines = [{"article": a.to_dict()} for a in articles]
        lines += [{"seen": url} for url in seen]
        if not lines:
            return None
        return self._write(self.directory, [{"format": FORMAT, "reason": reason}, *lines])

    def reject(self, refused: Iterable[tuple[Article, str]]) -> Path | None:
        lines = [{"article": a.to_dict(), "error": error} for a, error in refused]
        if not lines:
            return None
        path = self._write(self.rejected_dir, [{"format": FORMAT}, *lines])
        log.error("%d article(s) refused by the index were kept in %s", len(lines), path)
        return path

    def batches(self) -> Iterator[SpooledBatch]:
        """Spooled batches, oldest first."""
        for path in self._files():
            batch = self._read(path)
            if batch is not None:
                yield batch

    def remove(self, batch: SpooledBatch) -> None:
        batch.path.unlink(missing_ok=True)

    def announce(self, ids: Iterable[str]) -> None:
        """Remember ids a replay stored for the first time, until `take_announced`: the
        replay may happen where nobody reports new articles (opening the store for a
        search), and a story must still reach the alerts once."""
        ids = list(ids)
        if not ids:
            return
        path = self.directory / ANNOUNCED
        known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
        self._replace(path, json.dumps(list(dict.fromkeys(known + ids))))

    def take_announced(self) -> list[str]:
        path = self.directory / ANNOUNCED
        try:
            ids = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        path.unlink()
        return ids

    def count(self) -> int:
        """Articles waiting in the spool."""
        return sum(len(b.articles) for b in self.batches())

    def batches_waiting(self) -> int:
        """Batches in the spool (articles, or seen URLs only)."""
        return len(self._files())

    def urls(self) -> set[str]:
        """Canonical URLs of everything spooled: fetched already, so not fetched again."""
        found: set[str] = set()
        for batch in self.batches():
            found.update(a.canonical_url for a in batch.articles)
            found.update(batch.seen)
        return found

    # ----------------------------------------------------------------- files

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        # names start with a UTC timestamp, so name order is age order
        return sorted(p for p in self.directory.iterdir() if p.suffix == SUFFIX and p.is_file())

    def _write(self, directory: Path, records: list[dict[str, Any]]) -> Path:
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        return self._replace(directory / f"{stamp}-{os.urandom(4).hex()}{SUFFIX}", text)

    def _replace(self, final: Path, text: str) -> Path:
        """Write `final` whole or not at all: temporary file, fsync, rename."""
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=final.name, suffix=".tmp", dir=final.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return final

    def _read(self, path: Path) -> SpooledBatch | None:
        batch = SpooledBatch(path)
        try:
            with path.open(encoding="utf-8") as lines:
                header = json.loads(next(lines))
                if header.get("format") != FORMAT:
                    raise ValueError(f"unknown spool format {header.get('format')!r}")
                for line in lines:
                    record = json.loads(line)
                    if "article" in record:
                        batch.articles.append(Article.from_dict(record["article"]))
                    else:
                        batch.seen.append(record["seen"])
        except FileNotFoundError:
            return None  # replayed by another process meanwhile
        except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
            # Moved aside, not deleted: a person can still recover what is in it.
            self.unreadable_dir.mkdir(parents=True, exist_ok=True)
            target = self.unreadable_dir / path.name
            os.replace(path, target)
            log.error("unreadable spool file moved to %s: %s", target, exc)
            return None
        return batch

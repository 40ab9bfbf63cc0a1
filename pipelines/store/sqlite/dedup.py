"""Near-duplicate candidates by content hash and by LSH band key."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from pipelines.store.base import DupCandidate, chunks
from pipelines.store.sqlite.codec import decode_minhash, from_column, key_digest
from pipelines.store.sqlite.connection import CHUNK, SQLiteConnection, marks


class SQLiteDuplicates(SQLiteConnection):
    """The DuplicateCandidates role."""

    def dup_candidates(
        self, content_hashes: Iterable[str], lsh_bands: Iterable[str]
    ) -> list[DupCandidate]:
        found: dict[str, DupCandidate] = {}
        columns = "a.id, a.cluster_id, a.content_hash, a.minhash, a.lsh_bands"

        def collect(rows: list[sqlite3.Row]) -> None:
            for r in rows:
                found.setdefault(
                    r["id"],
                    DupCandidate(
                        id=r["id"],
                        cluster_id=r["cluster_id"],
                        content_hash=r["content_hash"],
                        minhash=decode_minhash(r["minhash"]),
                        lsh_bands=from_column("packed_json", r["lsh_bands"]),
                    ),
                )

        hashes = [h for h in dict.fromkeys(content_hashes) if h]
        for chunk in chunks(hashes, CHUNK):
            collect(
                self._query(
                    f"SELECT {columns} FROM articles AS a "
                    f"WHERE a.content_hash IN ({marks(len(chunk))})",
                    chunk,
                )
            )
        keys = list(dict.fromkeys(key_digest(k) for k in lsh_bands))
        for chunk in chunks(keys, CHUNK):
            collect(
                self._query(
                    f"SELECT DISTINCT {columns} FROM article_keys AS k "
                    f"JOIN articles AS a ON a.n = k.n "
                    f"WHERE k.key IN ({marks(len(chunk))})",
                    chunk,
                )
            )
        return list(found.values())

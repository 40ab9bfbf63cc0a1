"""The full-text index of the articles' normalised terms, kept in step by the writes.

The index holds no copy of the terms (FTS5 contentless): the rows keep them, packed
(codec.pack), which SQL cannot unpack, so no trigger can feed the index. Every write
that changes a row's terms takes the row's indexed terms out first (`unindex`) and
puts its new ones in after (`index`), in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pipelines.store.base import chunks
from pipelines.store.sqlite.codec import unpack
from pipelines.store.sqlite.connection import CHUNK, marks


def _terms(db: sqlite3.Connection, ids: Sequence[str]) -> list[tuple[int, str, str]]:
    """Row number, terms and title terms of the stored articles among `ids`."""
    return [(n, unpack(terms), title_terms)
            for chunk in chunks(list(ids), CHUNK)
            for n, terms, title_terms in db.execute(
                "SELECT n, terms, title_terms FROM articles "
                f"WHERE id IN ({marks(len(chunk))})", chunk).fetchall()]


def unindex(db: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Take the stored articles among `ids` out of the index, before their terms
    change (a contentless index is told what it indexed)."""
    db.executemany(
        "INSERT INTO articles_fts(articles_fts, rowid, terms, title_terms) "
        "VALUES ('delete', ?, ?, ?)", _terms(db, ids))


def index(db: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Index the stored articles among `ids` by the terms their rows now hold."""
    db.executemany("INSERT INTO articles_fts(rowid, terms, title_terms) VALUES (?, ?, ?)",
                   _terms(db, ids))

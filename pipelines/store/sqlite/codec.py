"""Article and delivery fields to and from SQLite columns."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from pipelines.article import Article
from pipelines.store.base import Delivery
from pipelines.store.sqlite.schema import COLUMNS
from pipelines.terms.normalisation import title_terms as title_terms


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    # one spelling (UTC) so that dates compare correctly as strings
    return (value.astimezone(UTC) if value.tzinfo else value).isoformat()


def _encode_minhash(values: list[int]) -> bytes | None:
    return np.asarray(values, dtype="<u4").tobytes() if values else None


def decode_minhash(blob: bytes | None) -> list[int]:
    return np.frombuffer(blob, dtype="<u4").tolist() if blob else []


def key_digest(key: str) -> int:
    """A dedup lookup key (Article.lsh_bands) as the 64-bit integer the lookup table
    holds: a fifth of its text's room, with a chance of two keys colliding far below
    that of two texts' bands colliding (a collision only adds a candidate to verify)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def pack(value: str | None) -> str | bytes | None:
    """A text as its zlib stream (a BLOB) when that is shorter, else as it is: a news
    text takes half its room, and no query reads it in SQL (the index holds the terms)."""
    if not value:
        return value
    raw = value.encode("utf-8")
    packed = zlib.compress(raw)
    return packed if len(packed) < len(raw) else value


def unpack(value: str | bytes | None) -> str | None:
    """The text `pack` kept; a text kept as it is comes back as it is."""
    return zlib.decompress(value).decode("utf-8") if isinstance(value, bytes) else value


def to_column(kind: str, value: Any) -> Any:
    if kind == "json":
        return json.dumps(value, ensure_ascii=False)
    if kind == "packed":
        return pack(value)
    if kind == "packed_json":
        return pack(json.dumps(value, ensure_ascii=False))
    if kind == "datetime":
        return iso(value)
    if kind == "bool":
        return int(bool(value))
    if kind == "minhash":
        return _encode_minhash(value)
    return value


def _datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "json": json.loads, "datetime": _datetime, "bool": bool, "minhash": decode_minhash,
    "packed": unpack, "packed_json": lambda value: json.loads(unpack(value)),
}


def from_column(kind: str, value: Any) -> Any:
    decode = _DECODERS.get(kind)
    return decode(value) if decode else value


class ArticleColumns:
    """Some of an article's columns, as a SELECT lists them, and the article of their
    values in that order (the fields not read left at their defaults): each decoded by
    a function chosen once per column, not by comparing kinds per value."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        self.sql = ", ".join(self.names)
        self._decoders = tuple((name, _DECODERS.get(COLUMNS[name])) for name in self.names)

    def article(self, values: Iterable[Any]) -> Article:
        return Article(**{name: decode(value) if decode else value
                          for (name, decode), value in zip(self._decoders, values, strict=True)})


ALL_COLUMNS = ArticleColumns(COLUMNS)


def row_to_article(row: sqlite3.Row) -> Article:
    # one pass over the row: a Row looks a name up by comparing it with each column's
    values = dict(zip(row.keys(), row, strict=True))
    return ALL_COLUMNS.article(values[name] for name in COLUMNS)


def row_to_delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        rule=row["rule"],
        article_id=row["article_id"],
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        created_at=from_column("datetime", row["created_at"]),
        sent_at=from_column("datetime", row["sent_at"]),
        message_id=row["message_id"],
        folded_into=row["folded_into"],
        stage=row["stage"],
        possible_repeat=bool(row["possible_repeat"]),
    )

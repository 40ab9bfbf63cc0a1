"""Dates as the documents hold them (ISO 8601 strings)."""

from __future__ import annotations

from datetime import datetime


def parse_date(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


"""The alert rules as every command that reads them loads them."""

from __future__ import annotations

from pathlib import Path

from pipelines.alert import Rule, load_rules
from pipelines.config import paths
from pipelines.config.sources import load_sources


def alert_rules(alerts: Path | None, sources: Path | None) -> list[Rule]:
    """The rules of `alerts` (default: the shipped file); a rule whose
    `sources:` names a source the sources file (`sources`, default: DOZOR_SOURCES or the
    shipped file) does not have is refused, naming the file, the rule and the field."""
    names = {s.name for s in load_sources(sources or paths.default_sources())}
    return load_rules(alerts or paths.default_alerts(), sources=names)

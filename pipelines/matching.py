"""Which articles each alert rule matches: the AlertMatcher seam between backends.

The embedded default evaluates the compiled queries in Python (`PythonMatcher`). A
store offers its own matcher through its alert inbox (`AlertInbox.alert_matcher`):
Elasticsearch percolates, SQLite answers with this one. This module sits below the
store and the alerts, so it knows rules only by what matching reads of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from pipelines.article import Article
from pipelines.query import Query


class MatchRule(Protocol):
    """What matching reads of an alert rule (pipelines.alert.rules.Rule)."""

    @property
    def name(self) -> str: ...
    @property
    def query(self) -> Query: ...


class AlertMatcher(Protocol):
    def match(self, rules: Sequence[MatchRule],
              articles: Iterable[Article]) -> dict[str, list[str]]:
        """Article ids per rule name, in the order the articles came; every rule is a key."""
        ...


class PythonMatcher:
    def match(self, rules: Sequence[MatchRule],
              articles: Iterable[Article]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {rule.name: [] for rule in rules}
        for article in articles:
            for rule in rules:
                if rule.query.matches(article):
                    found[rule.name].append(article.id)
        return found

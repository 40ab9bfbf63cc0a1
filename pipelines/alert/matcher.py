"""Which new articles each rule matches: the AlertMatcher seam between backends.

The embedded default evaluates the compiled queries in Python. A store that can match
better itself (Elasticsearch: percolator queries built from `Query.to_es()`) offers an
`alert_matcher()` method; `matcher_for` uses it, so this module never imports a backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from pipelines.alert.rules import Rule
from pipelines.article import Article
from pipelines.store import Store


class AlertMatcher(Protocol):
    def match(self, rules: Sequence[Rule], articles: Iterable[Article]) -> dict[str, list[str]]:
        """Article ids per rule name, in the order the articles came; every rule is a key."""
        ...


class PythonMatcher:
    def match(self, rules: Sequence[Rule], articles: Iterable[Article]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {rule.name: [] for rule in rules}
        for article in articles:
            for rule in rules:
                if rule.matches(article):
                    found[rule.name].append(article.id)
        return found


def matcher_for(store: Store) -> AlertMatcher:
    factory = getattr(store, "alert_matcher", None)
    return factory() if callable(factory) else PythonMatcher()

"""What an alert rule matches among the stored articles now (`dozor alerts test`)."""

from __future__ import annotations

from pipelines.alert.rules import Rule
from pipelines.article import Article
from pipelines.matching import AlertMatcher, PythonMatcher
from pipelines.store import ArticlesReader

SCAN_BATCH = 500  # articles matched at a time: memory stays flat on a large store


def stored_matches(store: ArticlesReader, rule: Rule) -> list[Article]:
    """Every stored article `rule` matches, in the store's order.

    Evaluated here, not by the store's own matcher: a percolator would be re-synced to
    this one rule; both give the same answer by construction.
    """
    matcher = PythonMatcher()
    matched: list[Article] = []
    batch: list[Article] = []
    for article in store.iter_articles():
        batch.append(article)
        if len(batch) >= SCAN_BATCH:
            matched += _matching(matcher, rule, batch)
            batch = []
    return matched + _matching(matcher, rule, batch)


def _matching(matcher: AlertMatcher, rule: Rule, batch: list[Article]) -> list[Article]:
    if not batch:
        return []
    ids = set(matcher.match([rule], batch)[rule.name])
    return [a for a in batch if a.id in ids]

"""Which articles each alert rule matches: the AlertMatcher seam between backends.

The embedded default evaluates the compiled queries in Python (`PythonMatcher`). A
store offers its own matcher through its alert inbox (`AlertInbox.alert_matcher`):
Elasticsearch percolates, SQLite answers with this one. This module sits below the
store and the alerts, so it knows rules only by what matching reads of them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Protocol

from pipelines.article import Article
from pipelines.query import Query
from pipelines.terms.matching import TermDoc


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
    """Every rule's `Query.matches`, asked only of the articles that can match it.

    The batch's articles are indexed once by their normalised terms (and language); a
    rule's candidates are the articles holding a term of its cover (the terms one of
    which every match holds, as `Query.fts5_candidates` searches them), narrowed to its
    language. The full query, phrases and NOTs included, is then evaluated on the
    candidates alone: the answers are those of evaluating it on every article.
    """

    def match(self, rules: Sequence[MatchRule],
              articles: Iterable[Article]) -> dict[str, list[str]]:
        batch = list(articles)
        found: dict[str, list[str]] = {rule.name: [] for rule in rules}
        if not batch or not rules:
            return found
        index = _TermIndex(batch)
        for rule in rules:
            hits = found[rule.name]
            for i in index.candidates(rule.query):
                if rule.query.matches(batch[i], index.docs[i]):
                    hits.append(batch[i].id)
        return found


class _TermIndex:
    """Positions (in the batch) of the articles holding each normalised term."""

    def __init__(self, batch: list[Article]) -> None:
        self.batch = batch
        self.postings: dict[str, set[int]] = {}
        self.by_lang: dict[str, set[int]] = {}
        self.docs = [TermDoc(article.terms.split()) for article in batch]
        for i, (article, doc) in enumerate(zip(batch, self.docs, strict=True)):
            for term in doc.present:
                self.postings.setdefault(term, set()).add(i)
            self.by_lang.setdefault(article.lang, set()).add(i)
        self.terms = sorted(self.postings)  # for prefixes
        self.everything = range(len(batch))

    def candidates(self, query: Query) -> Iterable[int]:
        cover = query.term_cover()
        if cover is None:
            chosen: Iterable[int] = self.everything
        else:
            terms, prefixes = cover
            union: set[int] = set()
            for term in terms:
                union |= self.postings.get(term, set())
            for prefix in prefixes:
                start = bisect_left(self.terms, prefix)
                for term in self.terms[start:]:
                    if not term.startswith(prefix):
                        break
                    union |= self.postings[term]
            chosen = union
        if query.lang:
            chosen = set(chosen) & self.by_lang.get(query.lang, set())
        return sorted(chosen)  # in the order the articles came

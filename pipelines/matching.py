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
from pipelines.query import Query, positions
from pipelines.terms.matching import Slot, TermDoc, wildcard_regex
from pipelines.terms.normalisation import wildcard_prefix


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
    """Every rule's `Query.matches`, answered for the whole batch at once.

    The batch's articles are indexed once by their normalised terms and field values
    (`_BatchIndex`); each rule's query is then evaluated by set algebra over the article
    sets of its terms and filters (`Query.select`), and only its phrases (and title:,
    text:, dates) are checked article by article, on the articles the rest of the query
    leaves. The answers are those of evaluating it on every article.
    """

    def match(self, rules: Sequence[MatchRule],
              articles: Iterable[Article]) -> dict[str, list[str]]:
        batch = list(articles)
        found: dict[str, list[str]] = {rule.name: [] for rule in rules}
        if not batch or not rules:
            return found
        index = _BatchIndex(batch, frozenset().union(*(rule.query.term_forms
                                                        for rule in rules)))
        ids = [article.id for article in batch]
        for rule in rules:
            found[rule.name].extend(ids[i] for i in positions(rule.query.select(index)))
        return found


class _BatchIndex:
    """A batch's articles as bit masks (bit i: the i-th article) per normalised term and
    per field value, built on first use (`pipelines.query.Batch`).

    The terms the rules name (`wanted`) are indexed up front, each article's terms
    intersected with them at C speed; any other term (one a wildcard fits) is looked
    up in every article's set of terms, made when first asked."""

    def __init__(self, batch: list[Article], wanted: frozenset[str]) -> None:
        self.batch = batch
        self.everything = (1 << len(batch)) - 1
        self._terms = [article.terms.split() for article in batch]
        self._sets: list[frozenset[str]] | None = None
        self._docs: list[TermDoc | None] = [None] * len(batch)
        self._wanted = wanted
        self._postings: dict[str, list[int]] = {}
        for i, terms in enumerate(self._terms):
            for term in wanted.intersection(terms):
                self._postings.setdefault(term, []).append(i)
        self._vocabulary: list[str] | None = None  # sorted, for wildcards
        self._masks: dict[str, int] = {}
        self._globs: dict[str, int] = {}
        self._values: dict[str, dict[str, int]] = {}
        self._truths: dict[str, dict[bool, int]] = {}

    @property
    def _present(self) -> list[frozenset[str]]:
        if self._sets is None:
            self._sets = [frozenset(terms) for terms in self._terms]
        return self._sets

    def article(self, i: int) -> Article:
        return self.batch[i]

    def doc(self, i: int) -> TermDoc:
        doc = self._docs[i]
        if doc is None:
            doc = self._docs[i] = TermDoc(self._terms[i])
        return doc

    def _term_mask(self, term: str) -> int:
        mask = self._masks.get(term)
        if mask is None:
            mask = 0
            if term in self._wanted:
                for i in self._postings.get(term, ()):
                    mask |= 1 << i
            else:
                for i, present in enumerate(self._present):
                    if term in present:
                        mask |= 1 << i
            self._masks[term] = mask
        return mask

    def slot_mask(self, slot: Slot) -> int:
        mask = 0
        for form in slot.forms:
            mask |= self._term_mask(form)
        if slot.glob is not None:
            mask |= self._glob_mask(slot.glob)
        return mask

    def _glob_mask(self, glob: str) -> int:
        mask = self._globs.get(glob)
        if mask is None:
            if self._vocabulary is None:
                self._vocabulary = sorted(frozenset().union(*self._present))
            # the wildcard's letters before its first * or ? start every term it fits
            prefix = wildcard_prefix(glob)
            rx = wildcard_regex(glob)
            mask = 0
            for term in self._vocabulary[bisect_left(self._vocabulary, prefix):]:
                if not term.startswith(prefix):
                    break
                if rx.fullmatch(term):
                    mask |= self._term_mask(term)
            self._globs[glob] = mask
        return mask

    def _field(self, attr: str) -> None:
        values: dict[str, int] = {}
        truths: dict[bool, int] = {}
        for i, article in enumerate(self.batch):
            actual = getattr(article, attr)
            bit = 1 << i
            for value in actual if isinstance(actual, list) else [actual]:
                truths[bool(value)] = truths.get(bool(value), 0) | bit
                if value is not None:
                    values[str(value)] = values.get(str(value), 0) | bit
        self._values[attr] = values
        self._truths[attr] = truths

    def values(self, attr: str) -> dict[str, int]:
        if attr not in self._values:
            self._field(attr)
        return self._values[attr]

    def truths(self, attr: str) -> dict[bool, int]:
        if attr not in self._truths:
            self._field(attr)
        return self._truths[attr]

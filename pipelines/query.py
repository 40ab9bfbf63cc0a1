"""The query language of topic rules, alert rules and search: Lucene syntax (luqum).

One compiled `Query` is evaluated three ways that must agree:

* `Query.matches(article)` in Python (embedded default: topic profile, SQLite alerts);
* `Query.to_es()` as Elasticsearch query DSL (search and percolator);
* `Query.fts5_match()` to narrow an SQLite FTS5 search before `matches()`.

Syntax
------
``AND`` / ``&&``, ``OR`` / ``||``, ``NOT`` / ``!`` / ``-x``, ``+x``, parentheses,
phrases ``"a b"`` with optional slop ``"a b"~2``, wildcards ``*`` and ``?``, and fields
``lang:``, ``source:``, ``relevant:true|false``, ``possible:true|false`` (the topic's
possibly relevant tier), ``translation_status:``,
``cluster_id:``, ``event:`` (what a revisit found: edited, title_changed, date_changed,
removed, restored; an article matches the kinds of every event it has had, an alert
rule each new event once); ``terms:`` names the default field explicitly. Bare terms next to each
other are joined by **AND** (``Вагнер колония`` = ``Вагнер AND колония``). Operators are
plain boolean logic: ``+x`` is ``x`` and ``-x`` is ``NOT x`` wherever they stand (not
Lucene's scoring "should/must" rules). A lower-case ``and``/``or``/``not`` is refused
(Lucene would search it as a word; quote it to do that). Boosts, fuzzy terms, ranges
and regular expressions are rejected. Field values: ``lang``, ``source`` and
``translation_status`` are compared lower-cased, ``cluster_id`` as written; all four
take wildcards.

Words in the default field are normalised like article text (`pipelines.terms`): a
Cyrillic word matches every lemma its inflections may have in Russian or Ukrainian
(``колонии`` matches ``колония``), a Latin word its English stem; a hyphenated word is
a phrase of its parts (``Шторм-Z`` = ``"Шторм Z"``). A wildcard matches the normalised
terms it fits (lower case, ё -> е: ``вербов*`` matches ``вербовка`` and ``вербовать``)
and the terms of the words written that way (``mobiliz*`` also matches the stem
``mobil`` of mobilization: `pipelines.terms.normalisation.wildcard_forms`). Russian and Ukrainian
spellings are different words (``колония`` / ``колонія``). Title, text and the English
fields run on as one sequence of terms (`pipelines.terms.normalisation`), on both backends.

Contract with the Elasticsearch mapping
---------------------------------------
* ``terms``: a ``text`` field whose analyzer is the ``whitespace`` tokenizer and
  nothing else (no lowercase, no stemming, no folding) — `Article.terms` is already
  normalised, and the values in these queries are normalised the same way. Positions
  must be kept (the default for ``text``) for phrases.
* ``lang``, ``source``, ``translation_status``, ``cluster_id``: ``keyword`` fields.
* ``relevant``, ``possible``: ``boolean``.
* ``title_terms``, ``text_terms`` (``title:``, ``text:``): as ``terms``, the normalised
  terms of the titles and of the texts alone (`scope_fields`).
* ``published_at``, ``fetched_at`` (``published:``, ``fetched:``): ``date``; a query's
  dates are instants resolved when it compiles.
* ``events`` (queried as ``event:``): ``keyword``, one value per kind of event.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

from luqum import tree
from luqum.exceptions import ParseError
from luqum.thread import parse as luqum_parse

from pipelines.article import EVENT_KINDS, TRANSLATION_STATUSES, Article, utcnow
from pipelines.errors import DozorError
from pipelines.terms.matching import (
    Pattern,
    Slot,
    TermDoc,
    TermError,
    term_doc,
    wildcard_regex,
)
from pipelines.terms.normalisation import QUERY_TOKEN_RE, text_terms, title_terms

TERMS_FIELD = "terms"
KEYWORD_FIELDS = ("lang", "source", "translation_status", "cluster_id")
# query fields named apart from the multi-valued keyword article (and index) field they
# read: `event:removed` reads `events`
FIELD_ATTRS = {"event": "events"}
BOOLEAN_FIELDS = ("relevant", "possible")
FIELDS = (TERMS_FIELD, *KEYWORD_FIELDS, *FIELD_ATTRS, *BOOLEAN_FIELDS)
# date fields and the article (and index) field each reads; ranges and day values
DATE_FIELDS = {"published": "published_at", "fetched": "fetched_at"}
# words searched in a part of the article: the index field of its normalised terms
SCOPE_FIELDS = {"title": "title_terms", "text": "text_terms"}
_SCOPE_TERMS = {"title": title_terms, "text": text_terms}
QUERY_FIELDS = (*FIELDS, *SCOPE_FIELDS, *DATE_FIELDS)
_RELATIVE = re.compile(r"now(?:([+-])(\d+)([mhdw]))?")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
LANG_VALUES = ("ru", "uk", "en", "other")
# a phrase whose words have many lemma readings becomes one match_phrase per reading
MAX_PHRASE_VARIANTS = 256
_WILDCARD = re.compile(r"(?<!\\)[*?]")
_POSITION_RE = re.compile(r"at position (\d+)")
_OPERATORS = ("AND", "OR", "NOT")


# levels of parentheses, NOT and field groups; real rules use a handful
MAX_DEPTH = 40


class QueryError(DozorError, ValueError):
    """A query that cannot be compiled; str() names the rule and the position."""

    def __init__(self, name: str, text: str, offset: int, reason: str) -> None:
        self.name = name
        self.text = text
        self.offset = offset
        self.reason = reason
        before = text[:offset]
        self.line = before.count("\n") + 1
        self.column = offset - (before.rfind("\n") + 1) + 1
        super().__init__(f"{name}: {reason} at line {self.line}, column {self.column}")


# --- compiled nodes -----------------------------------------------------------------


class Batch(Protocol):
    """A batch of articles indexed for `Query.select`: article sets are bit masks over
    the batch's positions (bit i: the i-th article)."""

    everything: int

    def article(self, i: int) -> Article: ...
    def doc(self, i: int) -> TermDoc: ...
    def slot_mask(self, slot: Slot) -> int:
        """The articles holding a term `slot` accepts (`TermDoc.has`)."""
        ...
    def values(self, attr: str) -> dict[str, int]:
        """Per str() of a value of the article field `attr` (None left out; each value
        of a list), the articles having it."""
        ...
    def truths(self, attr: str) -> dict[bool, int]:
        """Per truth of a value of `attr` (each value of a list), the articles having it."""
        ...


def positions(mask: int) -> Iterator[int]:
    """The batch positions in `mask`, in order."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _each(node: _Node, batch: Batch, within: int) -> int:
    """The articles of `within` that `node` matches, asked one by one."""
    found = 0
    for i in positions(within):
        if node.evaluate(batch.doc(i), batch.article(i)):
            found |= 1 << i
    return found


def _cost(node: _Node) -> int:
    """0 for what `select` answers from the batch's index alone, 1 for what it asks of
    articles one by one (phrases, title:/text:, dates): the cheap first narrows the rest."""
    if isinstance(node, _And | _Or):
        return max(map(_cost, node.children))
    if isinstance(node, _Not):
        return _cost(node.child)
    if isinstance(node, _Terms):
        return int(bool(node.scope) or len(node.pattern.slots) > 1)
    return int(isinstance(node, _Dates))


class _Node(Protocol):
    def evaluate(self, doc: TermDoc, article: Article) -> bool: ...
    def select(self, batch: Batch, within: int) -> int:
        """The articles of `within` it matches: those `evaluate` says true of."""
        ...
    def possible(self, doc: TermDoc, article: Article) -> bool: ...
    def es(self) -> dict[str, Any]: ...
    def cover(self) -> frozenset[str] | None: ...
    def matched(self, doc: TermDoc, positive: bool) -> Iterator[str]: ...


class _WordLess:
    """A node that names no word: it gives no full-text candidates and marks no term."""

    def cover(self) -> frozenset[str] | None:
        return None

    def matched(self, doc: TermDoc, positive: bool) -> Iterator[str]:
        return iter(())


def _fts5_quote(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _best_cover(covers: list[frozenset[str]]) -> frozenset[str] | None:
    """Any one cover of an AND's operands is enough; prefer long, few alternatives
    (long words are rarer, so the candidate set is smaller)."""
    if not covers:
        return None
    return max(covers, key=lambda c: (min(len(x) for x in c), -len(c)))


@dataclass(frozen=True)
class _Terms:
    """A word, wildcard or phrase on the normalised terms."""

    pattern: Pattern
    text: str  # as the query wrote it: what matched_terms reports
    scope: str | None = None  # title or text: only that part's terms (title_en, text_en too)

    def evaluate(self, doc: TermDoc, article: Article) -> bool:
        if self.scope:
            doc = term_doc(_SCOPE_TERMS[self.scope](article))
        return self.pattern.found_in(doc)

    possible = evaluate

    def select(self, batch: Batch, within: int) -> int:
        if self.scope:
            return _each(self, batch, within)
        for slot in self.pattern.slots:  # a phrase needs each of its words
            within &= batch.slot_mask(slot)
            if not within:
                return 0
        if len(self.pattern.slots) == 1:
            return within
        return _each(self, batch, within)

    def es(self) -> dict[str, Any]:
        field = SCOPE_FIELDS[self.scope] if self.scope else TERMS_FIELD
        slots = self.pattern.slots
        if len(slots) == 1:
            slot = slots[0]
            if slot.glob is not None:
                wildcard = {"wildcard": {field: {"value": slot.glob}}}
                if not slot.forms:
                    return wildcard
                # the terms of the words it stands for that the pattern does not fit
                return _should([wildcard, {"terms": {field: sorted(slot.forms)}}])
            forms = sorted(slot.forms)
            if len(forms) == 1:
                return {"term": {field: forms[0]}}
            return {"terms": {field: forms}}
        phrases = [
            {"match_phrase": {field: {"query": " ".join(words),
                                            "slop": self.pattern.slop}}}
            for words in itertools.product(*(sorted(s.forms) for s in slots))
        ]
        return phrases[0] if len(phrases) == 1 else _should(phrases)

    def cover(self) -> frozenset[str] | None:
        covers = []
        for slot in self.pattern.slots:
            if slot.glob is None:
                covers.append(frozenset(_fts5_quote(f) for f in slot.forms))
            else:
                prefix = _WILDCARD.split(slot.glob, 1)[0]
                if prefix:
                    covers.append(frozenset({_fts5_quote(prefix) + "*"}
                                            | {_fts5_quote(f) for f in slot.forms}))
        return _best_cover(covers)

    def matched(self, doc: TermDoc, positive: bool) -> Iterator[str]:
        if positive and self.pattern.found_in(doc):
            yield self.text


@dataclass(frozen=True)
class _Field(_WordLess):
    """A filter on one of the article's keyword or boolean fields."""

    field: str
    value: str | bool
    glob: bool = False

    def evaluate(self, doc: TermDoc, article: Article) -> bool:
        actual = getattr(article, FIELD_ATTRS.get(self.field, self.field))
        # a multi-valued field (events) matches when any of its values does
        return any(self._holds(v) for v in (actual if isinstance(actual, list) else [actual]))

    def _holds(self, actual: object) -> bool:
        if isinstance(self.value, bool):
            return bool(actual) is self.value
        if actual is None:
            return False
        if self.glob:
            return wildcard_regex(self.value).fullmatch(str(actual)) is not None
        return str(actual) == self.value

    possible = evaluate

    def select(self, batch: Batch, within: int) -> int:
        attr = FIELD_ATTRS.get(self.field, self.field)
        if isinstance(self.value, bool):
            return within & batch.truths(attr).get(self.value, 0)
        values = batch.values(attr)
        if not self.glob:
            return within & values.get(self.value, 0)
        rx = wildcard_regex(self.value)
        found = 0
        for value, mask in values.items():
            if rx.fullmatch(value):
                found |= mask
        return within & found

    def es(self) -> dict[str, Any]:
        name = FIELD_ATTRS.get(self.field, self.field)
        if self.glob:
            return {"wildcard": {name: {"value": self.value}}}
        return {"term": {name: self.value}}


@dataclass(frozen=True)
class _Dates(_WordLess):
    """A date field between two instants (None: open); resolved when the query compiles,
    so `now-7d` is the same instant for every backend."""

    field: str  # the article field: published_at or fetched_at
    low: datetime | None
    low_inclusive: bool
    high: datetime | None
    high_inclusive: bool

    def evaluate(self, doc: TermDoc, article: Article) -> bool:
        value = getattr(article, self.field)
        if value is None:
            return False
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if self.low is not None and (value < self.low if self.low_inclusive
                                     else value <= self.low):
            return False
        return self.high is None or (value <= self.high if self.high_inclusive
                                     else value < self.high)

    possible = evaluate

    def select(self, batch: Batch, within: int) -> int:
        return _each(self, batch, within)

    def es(self) -> dict[str, Any]:
        bounds: dict[str, str] = {}
        if self.low is not None:
            bounds["gte" if self.low_inclusive else "gt"] = self.low.isoformat()
        if self.high is not None:
            bounds["lte" if self.high_inclusive else "lt"] = self.high.isoformat()
        if not bounds:
            return {"exists": {"field": self.field}}
        return {"range": {self.field: bounds}}


@dataclass(frozen=True)
class _Every(_WordLess):
    """Every article (an export or a listing without a query)."""

    def evaluate(self, doc: TermDoc, article: Article) -> bool:
        return True

    possible = evaluate

    def select(self, batch: Batch, within: int) -> int:
        return within

    def es(self) -> dict[str, Any]:
        return {"match_all": {}}


@dataclass(frozen=True)
class _And:
    children: tuple[_Node, ...]

    def evaluate(self, doc: TermDoc, article: Article) -> bool:
        return all(c.evaluate(doc, article) for c in self.children)

    def possible(self, doc: TermDoc, article: Article) -> bool:
        return all(c.possible(doc, article) for c in self.children)

    def select(self, batch: Batch, within: int) -> int:
        for c in sorted(self.children, key=_cost):
            within = c.select(batch, within)
            if not within:
                break
        return within

    def es(self) -> dict[str, Any]:
        return {"bool": {"must": [c.es() for c in self.children]}}

    def cover(self) -> frozenset[str] | None:
        return _best_cover([c for c in (ch.cover() for ch in self.children) if c is not None])

    def matched(self, doc: TermDoc, positive: bool) -> Iterator[str]:
        for c in self.children:
            yield from c.matched(doc, positive)


@dataclass(frozen=True)
class _Or:
    children: tuple[_Node, ...]

    def evaluate(self, doc: TermDoc, article: Article) -> bool:
        return any(c.evaluate(doc, article) for c in self.children)

    def possible(self, doc: TermDoc, article: Article) -> bool:
        return any(c.possible(doc, article) for c in self.children)

    def select(self, batch: Batch, within: int) -> int:
        found = 0
        for c in sorted(self.children, key=_cost):  # each asked only of the rest
            found |= c.select(batch, within & ~found)
            if found == within:
                break
        return found

    def es(self) -> dict[str, Any]:
        return _should([c.es() for c in self.children])

    def cover(self) -> frozenset[str] | None:
        covers = [c.cover() for c in self.children]
        if any(c is None for c in covers):
            return None  # a match may hold none of the positive terms
        return frozenset().union(*covers)

    def matched(self, doc: TermDoc, positive: bool) -> Iterator[str]:
        for c in self.children:
            yield from c.matched(doc, positive)


@dataclass(frozen=True)
class _Not:
    child: _Node

    def evaluate(self, doc: TermDoc, article: Article) -> bool:
        return not self.child.evaluate(doc, article)

    def possible(self, doc: TermDoc, article: Article) -> bool:
        return True  # a part of the text may lack what the whole text has

    def select(self, batch: Batch, within: int) -> int:
        return within & ~self.child.select(batch, within)

    def es(self) -> dict[str, Any]:
        # match_all spelled out: a bool of must_not alone reads as "nothing" to some
        return {"bool": {"must": [{"match_all": {}}], "must_not": [self.child.es()]}}

    def cover(self) -> frozenset[str] | None:
        return None

    def matched(self, doc: TermDoc, positive: bool) -> Iterator[str]:
        return self.child.matched(doc, not positive)


def _should(clauses: list[dict[str, Any]]) -> dict[str, Any]:
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


# --- the query ----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldEquals:
    """A keyword or boolean article field that every match has with this value."""

    field: str
    value: str | bool


@dataclass(frozen=True)
class DateBetween:
    """A date article field every match has from `low` to `high` (None: open), bounds
    included: a superset of the query's own bounds, which may exclude them."""

    field: str
    low: datetime | None
    high: datetime | None



class Query:
    """A compiled query. Build with `parse_query` (or `Query.where`), then narrow it with
    `restrict` and `in_language`: filters join the compiled tree, never the text."""

    def __init__(self, text: str, name: str, root: _Node, words: tuple[str, ...] = (),
                 lang: str | None = None) -> None:
        self.text = text
        self.name = name
        self._root = root
        # the words outside field filters and NOT, that rank and highlight a search
        self.words = words
        # a language every match has, applied by the stores as their own filter (the
        # Elasticsearch `filter` clause, SQLite's language index) beside the tree
        self.lang = lang

    def __repr__(self) -> str:
        return f"Query({self.name!r}, {self.text!r})"

    @classmethod
    def where(cls, *filters: tuple[str, Sequence[str | bool]], name: str = "query") -> Query:
        """Articles whose fields have these values: per (field, values), any of the
        values; all the fields. Values are checked as in a query (`lang:xx`)."""
        parts, texts = _filter_nodes(filters, name)
        if not parts:
            raise QueryError(name, "", 0, "empty query")
        root = parts[0] if len(parts) == 1 else _And(tuple(parts))
        return cls(" AND ".join(texts), name, root)

    @classmethod
    def every(cls, name: str = "query") -> Query:
        """The query every article matches, to narrow with `restrict` and `between`."""
        return cls("*", name, _Every())

    def restrict(self, *filters: tuple[str, Sequence[str | bool]]) -> Query:
        """This query AND, per (field, values) with values, any of the values."""
        parts, texts = _filter_nodes(filters, self.name)
        if not parts:
            return self
        text = " AND ".join([f"({self.text})", *(f"({t})" for t in texts)])
        return Query(text, self.name, _And((self._root, *parts)), self.words, self.lang)

    def between(self, field: str, since: str | None, until: str | None) -> Query:
        """This query AND `field` (published or fetched) from `since` to `until`, both
        included, written as in a query (2026-01-31, now-7d); None leaves a side open."""
        if since is None and until is None:
            return self
        text = f'{field}:["{since or "*"}" TO "{until or "*"}"]'.replace('"*"', "*")
        other = parse_query(text, self.name)
        return Query(f"({self.text}) AND {text}", self.name, _And((self._root, other._root)),
                     self.words, self.lang)

    def either(self, other: Query) -> Query:
        """This query OR `other` (whose words do not rank or highlight)."""
        text = f"({self.text}) OR ({other.text})"
        return Query(text, self.name, _Or((self._root, other._root)), self.words, self.lang)

    def in_language(self, lang: str | None) -> Query:
        """Only articles in `lang` (None: any): any configured language, as stored."""
        if not lang:
            return self
        return Query(self.text, self.name, self._root, self.words, lang)

    @property
    def on_events(self) -> bool:
        """Whether the query filters on `event:`: an alert rule on what revisits find."""
        stack: list[Any] = [self._root]
        while stack:
            node = stack.pop()
            if isinstance(node, _Field) and node.field == "event":
                return True
            stack.extend(getattr(node, "children", ()))
            if (child := getattr(node, "child", None)) is not None:
                stack.append(child)
        return False

    def matches(self, article: Article, doc: TermDoc | None = None) -> bool:
        """Whether the article matches; `doc` replaces its terms (a passage of them)."""
        if self.lang and article.lang != self.lang:
            return False
        return self._root.evaluate(doc if doc is not None else term_doc(article.terms), article)

    @cached_property
    def reads_terms(self) -> bool:
        """Whether matching reads the article's terms (the query has words or phrases),
        not only its keyword, boolean and date fields."""
        return next(self._term_nodes(), None) is not None

    @cached_property
    def reads_texts(self) -> bool:
        """Whether matching reads the titles and texts themselves (`title:`, `text:`)."""
        return any(node.scope for node in self._term_nodes())

    @cached_property
    def term_forms(self) -> frozenset[str]:
        """The normalised terms its words and phrases name (wildcards' own terms aside):
        what a `Batch` indexes beforehand."""
        return frozenset(form for node in self._term_nodes()
                         for slot in node.pattern.slots for form in slot.forms)

    def _term_nodes(self) -> Iterator[_Terms]:
        """Its words and phrases, under any AND, OR or NOT."""
        pending: list[_Node] = [self._root]
        while pending:
            node = pending.pop()
            if isinstance(node, _And | _Or):
                pending.extend(node.children)
            elif isinstance(node, _Not):
                pending.append(node.child)
            elif isinstance(node, _Terms):
                yield node

    def select(self, batch: Batch) -> int:
        """The articles of the batch that match (those `matches` says true of), by set
        algebra over the batch's index: only phrases and the like ask articles one by one,
        and only those the rest of the query leaves."""
        within = batch.everything
        if self.lang:
            within &= batch.values("lang").get(self.lang, 0)
        return self._root.select(batch, within) if within else 0

    def may_match_part(self, article: Article) -> bool:
        """False when no passage of the article's text can match: the query with every
        NOT read as true (which only widens it, and makes it monotone) fails on the
        whole text."""
        return self._root.possible(term_doc(article.terms), article)

    def matched_terms(self, article: Article, doc: TermDoc | None = None) -> list[str]:
        """The query's terms, as written, found in the article (or `doc`), outside any
        NOT."""
        found = self._root.matched(doc if doc is not None else term_doc(article.terms), True)
        return list(dict.fromkeys(found))

    def to_es(self) -> dict[str, Any]:
        return self._root.es()

    def unmatchable_wildcards(self) -> list[str]:
        """The query's wildcards, as written, that fit no word Dozor knows: a text
        would hold a term they match only by chance (said at load, not an error)."""
        return sorted(node.text for node in self._term_nodes()
                      if not all(s.can_match() for s in node.pattern.slots))

    def wildcard_warnings(self, where: str) -> list[str]:
        """What loading the query says of each of its unmatchable wildcards; `where`
        names the file and rule it comes from."""
        return [f"{where}: the wildcard {wildcard} fits no known word and can only match "
                "by chance; write the word itself" for wildcard in self.unmatchable_wildcards()]

    def fts5_candidates(self, column: str | None = None) -> str | None:
        """An FTS5 MATCH expression over the normalised terms that every matching
        article satisfies (an OR of terms and prefixes), or None when no positive term
        narrows the search. Terms are quoted, so any FTS5 tokenizer that splits at
        least at spaces works (unicode61 splits ``ув'язнений`` into a two-word phrase,
        which still selects a superset). With `column`, restricted to that column."""
        cover = self._root.cover()
        if cover is None:
            return None
        expr = " OR ".join(sorted(cover))
        return f"{column} : ({expr})" if column else expr

    def fts5_match(self, column: str | None = None) -> str | None:
        """An FTS5 MATCH expression every matching article satisfies that follows the
        query's ANDs, ORs and exact phrases (so it narrows far more than
        `fts5_candidates`' one cover when a query combines words), or None when no
        positive term narrows the search. With `column`, restricted to that column."""
        expr = _fts5_expr(self._root)
        if expr is None:
            return None
        return f"{column} : ({expr})" if column else expr

    def required_filters(self) -> list[FieldEquals | DateBetween]:
        """Conditions on single-valued fields that every match meets (the query's
        language and the field and date filters its top-level AND requires), for a
        store to apply with its own indexes before `matches` decides. Wildcards and
        `event:` (a multi-valued field) are left to `matches`."""
        out: list[FieldEquals | DateBetween] = []
        if self.lang:
            out.append(FieldEquals("lang", self.lang))
        pending: list[_Node] = [self._root]
        while pending:
            node = pending.pop()
            if isinstance(node, _And):
                pending.extend(node.children)
            elif isinstance(node, _Field) and not node.glob and node.field not in FIELD_ATTRS:
                out.append(FieldEquals(node.field, node.value))
            elif isinstance(node, _Dates):
                out.append(DateBetween(node.field, node.low, node.high))
        return out

    def term_cover(self) -> tuple[frozenset[str], frozenset[str]] | None:
        """The cover `fts5_candidates` searches, as (normalised terms, prefixes): every
        matching article holds one of the terms or a term starting with one of the
        prefixes; None when no positive term narrows the search."""
        cover = self._root.cover()
        if cover is None:
            return None
        terms, prefixes = set(), set()
        for quoted in cover:
            if quoted.endswith("*"):
                prefixes.add(quoted[1:-2].replace('""', '"'))
            else:
                terms.add(quoted[1:-1].replace('""', '"'))
        return frozenset(terms), frozenset(prefixes)


def _fts5_slot(slot: Slot) -> str | None:
    """Any of the slot's normalised terms, or its wildcard's prefix; None: anything."""
    quoted = sorted(_fts5_quote(f) for f in slot.forms)
    if slot.glob is not None:
        prefix = _WILDCARD.split(slot.glob, 1)[0]
        if not prefix:
            return None
        quoted.insert(0, _fts5_quote(prefix) + "*")
    return " OR ".join(quoted) if quoted else None


def _fts5_all(parts: list[str | None]) -> str | None:
    """Every part that narrows (None: none does)."""
    narrowing = [p for p in parts if p is not None]
    if len(narrowing) <= 1:
        return narrowing[0] if narrowing else None
    return " AND ".join(f"({p})" for p in narrowing)


def _fts5_expr(node: _Node) -> str | None:
    """The FTS5 expression `Query.fts5_match` builds for `node`: each part a superset of
    the node's matches on the normalised terms; None where a part cannot narrow (a
    field, a date, NOT)."""
    if isinstance(node, _Terms):
        slots = node.pattern.slots
        if len(slots) > 1 and node.pattern.slop == 0 and all(s.glob is None and s.forms
                                                             for s in slots):
            # an exact phrase: one FTS5 phrase per reading of its words
            return " OR ".join(" + ".join(_fts5_quote(w) for w in words)
                               for words in itertools.product(*(sorted(s.forms)
                                                                for s in slots)))
        # one word, a wildcard or a sloppy phrase: every slot somewhere in the text
        return _fts5_all([_fts5_slot(s) for s in slots])
    if isinstance(node, _And):
        return _fts5_all([_fts5_expr(c) for c in node.children])
    if isinstance(node, _Or):
        parts = [_fts5_expr(c) for c in node.children]
        if any(p is None for p in parts):
            return None  # a match may hold none of the positive terms
        return " OR ".join(f"({p})" for p in parts)
    return None


def scope_fields(article: Article) -> dict[str, str]:
    """The normalised terms of the title and of the text, the index fields ``title:``
    and ``text:`` search on Elasticsearch (SQLite computes them as it matches)."""
    return {field: _SCOPE_TERMS[scope](article) for scope, field in SCOPE_FIELDS.items()}


def parse_query(text: str, name: str = "query") -> Query:
    """Compile `text`; `name` (rule or profile name) prefixes every error message."""
    rewritten, origin = _rewrite_operators(text)
    if not rewritten.strip():
        raise QueryError(name, text, 0, "empty query")
    try:
        luqum_tree = luqum_parse(rewritten)
    except RecursionError:
        raise QueryError(name, text, 0, f"nested more than {MAX_DEPTH} levels deep") from None
    except ParseError as exc:
        m = _POSITION_RE.search(str(exc))
        offset = origin[int(m.group(1))] if m else len(text)
        reason = str(exc).replace("Syntax error in input : ", "").rstrip("!")
        reason = _POSITION_RE.sub("", reason).replace(" at the end", "").strip()
        raise QueryError(name, text, offset, f"syntax error: {' '.join(reason.split())}") \
            from None
    _check_depth(luqum_tree, name, text, origin)
    return Query(text, name, _Compiler(name, text, origin).node(luqum_tree, None),
                 tuple(_positive_words(luqum_tree)))


def _filter_nodes(filters: Iterable[tuple[str, Sequence[str | bool]]],
                  name: str) -> tuple[list[_Node], list[str]]:
    """Per (field, values) with values, the node matching any of them and its text,
    checked and normalised as the same filter written in a query."""
    nodes: list[_Node] = []
    texts: list[str] = []
    for field, values in filters:
        if not values:
            continue
        if field not in FIELDS or field == TERMS_FIELD:
            raise ValueError(f"not a filter field: {field!r}")
        written = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
        text = " OR ".join(f"{field}:{v}" for v in written)
        compiler = _Compiler(name, text, list(range(len(text) + 1)))
        # a value compared as written: a phrase, never a wildcard (escaped, as the
        # compiler reads a phrase's backslashes as escapes)
        leaves: list[_Node] = [
            compiler.field_leaf(tree.Phrase(f'"{v}"'), field, v.replace("\\", "\\\\"), True)
            for v in written]
        nodes.append(leaves[0] if len(leaves) == 1 else _Or(tuple(leaves)))
        texts.append(text)
    return nodes, texts


def _check_depth(root: tree.Item, name: str, text: str, origin: list[int]) -> None:
    """Refuse a query nested deeper than MAX_DEPTH before anything walks it recursively
    (999 parentheses would exhaust Python's stack in the compiler)."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            pos = getattr(node, "pos", None)
            offset = origin[pos] if pos is not None and pos < len(origin) else 0
            raise QueryError(name, text, offset, f"nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in node.children)


def _rewrite_operators(text: str) -> tuple[str, list[int]]:
    """Spell ``&&``, ``||`` and a leading ``!`` as AND, OR and NOT (luqum knows only
    the words), outside phrases and escapes. Returns the new text and, for each of
    its characters (and its end), the offset in `text` it came from."""
    out: list[str] = []
    origin: list[int] = []

    def emit(s: str, at: int) -> None:
        out.append(s)
        origin.extend([at] * len(s))

    i, quoted = 0, False
    while i < len(text):
        c = text[i]
        if c == "\\":
            emit(text[i:i + 2], i)
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif not quoted and text.startswith(("&&", "||"), i):
            emit(" AND " if c == "&" else " OR ", i)
            i += 2
            continue
        elif not quoted and c == "!" and (i == 0 or text[i - 1].isspace() or text[i - 1] == "("):
            emit("NOT ", i)
            i += 1
            continue
        emit(c, i)
        i += 1
    origin.append(len(text))
    return "".join(out), origin


class _Compiler:
    def __init__(self, name: str, text: str, origin: list[int]) -> None:
        self.name = name
        self.text = text
        self.origin = origin

    def error(self, node: tree.Item, reason: str) -> QueryError:
        pos = getattr(node, "pos", None)
        offset = self.origin[min(pos, len(self.origin) - 1)] if pos is not None else 0
        return QueryError(self.name, self.text, offset, reason)

    def node(self, item: tree.Item, field: str | None) -> _Node:
        if isinstance(item, tree.SearchField):
            if field is not None:
                raise self.error(item, f"field {item.name!r} inside field {field!r}")
            if item.name not in QUERY_FIELDS:
                raise self.error(item, f"unknown field {item.name!r} "
                                       f"(known: {', '.join(QUERY_FIELDS)})")
            return self.node(item.expr, item.name)
        if field in DATE_FIELDS and not isinstance(item, tree.Group | tree.FieldGroup
                                                   | tree.BaseOperation | tree.Not
                                                   | tree.Prohibit | tree.Plus):
            return self.dates(item, field)
        if isinstance(item, tree.Group | tree.FieldGroup):
            return self.node(item.expr, field)
        if isinstance(item, tree.AndOperation | tree.UnknownOperation):
            return _And(tuple(self.node(c, field) for c in item.children))
        if isinstance(item, tree.OrOperation):
            return _Or(tuple(self.node(c, field) for c in item.children))
        if isinstance(item, tree.Not | tree.Prohibit):
            return _Not(self.node(item.a, field))
        if isinstance(item, tree.Plus):
            return self.node(item.a, field)
        if isinstance(item, tree.Proximity):
            if not isinstance(item.term, tree.Phrase):
                raise self.error(item, "proximity (~N) applies to a phrase only")
            return self.leaf(item.term, field, int(item.degree or 0))
        if isinstance(item, tree.Word | tree.Phrase):
            return self.leaf(item, field, 0)
        kind = {tree.Boost: "boosts (^)", tree.Fuzzy: "fuzzy terms (~)",
                tree.Range: "ranges", tree.Regex: "regular expressions"}
        what = next((v for k, v in kind.items() if isinstance(item, k)), type(item).__name__)
        raise self.error(item, f"{what} are not supported")

    def leaf(self, item: tree.Word | tree.Phrase, field: str | None, slop: int) -> _Node:
        phrase = isinstance(item, tree.Phrase)
        raw = item.value[1:-1] if phrase else item.value
        if not phrase and raw.upper() in _OPERATORS and raw != raw.upper():
            # Lucene reads a lower-case "and" as a word to search for: never what is meant
            raise self.error(item, f"{raw!r} would be searched as a word: write "
                                   f"{raw.upper()} for the operator, or \"{raw}\" for the word")
        if field is None or field == TERMS_FIELD or field in SCOPE_FIELDS:
            # an escaped wildcard is a literal * or ?, which no normalised term holds
            words = re.sub(r"\\(.)", r"\1", re.sub(r"\\[*?]", " ", raw))
            try:
                pattern = Pattern.from_text(words, slop, phrase=phrase)
            except TermError as exc:
                raise self.error(item, str(exc)) from None
            written = str(item) if slop == 0 else f"{item}~{slop}"
            if len(pattern.slots) > 1:
                variants = 1
                for s in pattern.slots:
                    variants *= len(s.forms)
                if variants > MAX_PHRASE_VARIANTS:
                    raise self.error(item, f"{written!r} has {variants} lemma readings; "
                                           "use fewer or less ambiguous words")
            scope = field if field in SCOPE_FIELDS else None
            return _Terms(pattern, written.strip(), scope)
        return self.field_leaf(item, field, raw, phrase)

    def dates(self, item: tree.Item, field: str) -> _Node:
        """published:/fetched: a range ``[a TO b]`` / ``{a TO b}`` (``*`` open), a bound
        ``>a`` ``>=a`` ``<a`` ``<=a``, or one day. A day (2026-01-31) covers all of it
        (UTC); an instant is an ISO date-time or ``now``, ``now-7d`` (m, h, d, w)."""
        name = DATE_FIELDS[field]
        if isinstance(item, tree.Range):
            low = self.bound(item.low, field, item.include_low, upper=False)
            high = self.bound(item.high, field, item.include_high, upper=True)
        elif isinstance(item, tree.From):
            low, high = self.bound(item.a, field, item.include, upper=False), (None, False)
        elif isinstance(item, tree.To):
            low, high = (None, False), self.bound(item.a, field, item.include, upper=True)
        elif isinstance(item, tree.Word | tree.Phrase):
            day = self.instant(item, field)
            if not isinstance(day, date) or isinstance(day, datetime):
                raise self.error(item, f"{field}: takes a day, a range [a TO b] or a bound "
                                       f"such as >{_value(item)}")
            low = self.bound(item, field, True, upper=False)
            high = self.bound(item, field, True, upper=True)
        else:
            raise self.error(item, f"{field}: takes a day, a range [a TO b] or a bound >a")
        return _Dates(name, low[0], low[1], high[0], high[1])

    def bound(self, item: tree.Item, field: str, inclusive: bool,
              upper: bool) -> tuple[datetime | None, bool]:
        value = self.instant(item, field)
        if value is None:
            return None, False
        if isinstance(value, datetime):
            return value, inclusive
        # a day is the interval [start, next day): its bound is one of the two ends
        start = datetime(value.year, value.month, value.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        if upper:
            return (end, False) if inclusive else (start, False)
        return (start, True) if inclusive else (end, True)

    def instant(self, item: tree.Item, field: str) -> date | datetime | None:
        raw = _value(item)
        if raw == "*":
            return None
        relative = _RELATIVE.fullmatch(raw.lower())
        if relative:
            sign, amount, unit = relative.groups()
            shift = timedelta(**{_UNITS[unit]: int(amount)}) if unit else timedelta()
            return utcnow() - shift if sign == "-" else utcnow() + shift
        try:
            if len(raw) == 10:
                return date.fromisoformat(raw)
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise self.error(item, f"{field}: {raw!r} is not a date (2026-01-31, "
                                   "2026-01-31T08:00Z, now, now-7d)") from None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def field_leaf(self, item: tree.Item, field: str, raw: str, phrase: bool) -> _Node:
        glob = not phrase and bool(_WILDCARD.search(raw))
        value = re.sub(r"\\(.)", r"\1", raw)
        if field in BOOLEAN_FIELDS:
            if value.lower() not in ("true", "false"):
                raise self.error(item, f"{field}: takes true or false, not {value!r}")
            return _Field(field, value.lower() == "true")
        if field != "cluster_id":
            value = value.lower()
        if field == "lang" and not glob and value not in LANG_VALUES:
            raise self.error(item, f"unknown language {value!r} "
                                   f"(use {', '.join(LANG_VALUES)})")
        if field == "translation_status" and not glob and value not in TRANSLATION_STATUSES:
            raise self.error(item, f"unknown translation status {value!r} "
                                   f"(use {', '.join(TRANSLATION_STATUSES)})")
        if field == "event" and not glob and value not in EVENT_KINDS:
            raise self.error(item, f"unknown event {value!r} (use {', '.join(EVENT_KINDS)})")
        return _Field(field, value, glob)



def _value(item: tree.Item) -> str:
    text = str(getattr(item, "value", item)).strip()
    return text[1:-1] if text.startswith('"') and text.endswith('"') else text


def _positive_words(root: tree.Item) -> list[str]:
    """Words of the query outside field filters and NOT, to rank and highlight by."""
    words: list[str] = []

    def walk(node: tree.Item, negated: bool) -> None:
        if isinstance(node, tree.SearchField) and node.name not in (TERMS_FIELD, *SCOPE_FIELDS):
            return
        if isinstance(node, tree.Not | tree.Prohibit):
            negated = not negated
        if isinstance(node, tree.Word | tree.Phrase) and not negated:
            words.extend(QUERY_TOKEN_RE.findall(node.value.strip('"')))
            return
        for child in node.children:
            walk(child, negated)

    walk(root, False)
    return [w.replace("*", "").replace("?", "") for w in words if w.strip("*?")]

"""Search over the FTS5 index, decided by the query's own matcher."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from pipelines.article import Article
from pipelines.query import DateBetween, FieldEquals, Query
from pipelines.store.base import (
    FACETS,
    SearchHit,
    SearchSummary,
    StoreError,
    as_stories,
    check_offset,
    check_sort,
    chunks,
    facet_values,
    story_key,
)
from pipelines.store.sqlite.codec import ALL_COLUMNS, ArticleColumns, iso, row_to_article
from pipelines.store.sqlite.connection import CHUNK, SQLiteConnection, marks
from pipelines.store.sqlite.schema import BM25_WEIGHTS
from pipelines.terms.matching import TermDoc, term_doc
from pipelines.terms.snippets import article_snippet

# queries match normalised terms (pipelines.query), so candidates come from these
_TERM_COLUMNS = "{terms title_terms}"
# how far a date filter's SQL bounds are widened (see _required_sql)
_SLACK = timedelta(seconds=1)
# by publication date, undated articles last, then by fetch time: as Elasticsearch sorts
# (published_at with missing _last, then fetched_at). SQLite sorts NULL lowest, so
# newest needs no IS NULL term and reads the publication index in order.
_BY_DATE = {
    "newest": "a.published_at DESC, a.fetched_at DESC, a.n DESC",
    "oldest": "a.published_at IS NULL, a.published_at ASC, a.fetched_at ASC, a.n ASC",
}


class SQLiteSearch(SQLiteConnection):
    """The ArticlesReader role's search."""

    def search(self, query: Query, limit: int = 20, offset: int = 0,
               sort: str = "relevance", collapse: bool = False) -> list[SearchHit]:
        """Best `limit` articles matching `query` (compiled over normalised terms), after
        the best `offset`; its language goes to the language index. `sort` newest or
        oldest orders by publication date instead. `collapse`: stories instead of
        articles (`as_stories`), ranked and counted by their best-ranked copy.

        FTS5 selects a superset of candidates on the normalised terms and ranks them by
        bm25; the query's own matcher decides, so the semantics are exactly those of the
        topic profile and the alert rules.
        """
        check_offset(offset)
        check_sort(sort)
        hits: list[SearchHit] = []
        to_skip = offset
        seen: set[str] = set()  # collapse: the clusters already ranked
        with self._lock:
            # rows past the first limit + offset are read only when the query's
            # matcher turned some down
            for article, bm25, doc in self._matching(query, sort, page=max(limit, 50),
                                                     first=limit + offset):
                if collapse:
                    if story_key(article) in seen:
                        continue
                    seen.add(story_key(article))
                # the query's matcher, not FTS5, decides what a hit is, so the
                # offset counts matching articles rather than candidate rows
                if to_skip:
                    to_skip -= 1
                    continue
                terms = query.matched_terms(article, doc)
                hits.append(SearchHit(
                    article=article,
                    rank=-bm25 or 0.0,  # no -0.0 in output
                    snippet=article_snippet(article, terms),
                    matched_terms=terms,
                ))
                if len(hits) == limit:
                    break
        return as_stories(query, hits, self._members(query, hits)) if collapse else hits

    def _members(self, query: Query, tops: list[SearchHit]) -> list[Article]:
        """The articles of the clusters of `tops` that `query` matches."""
        clusters = [c for c in dict.fromkeys(h.article.cluster_id for h in tops) if c]
        rows = [r for chunk in chunks(clusters, CHUNK) for r in self._query(
            f"SELECT * FROM articles WHERE cluster_id IN ({marks(len(chunk))})", chunk)]
        members = (row_to_article(r) for r in rows)
        return [a for a in members if (not query.lang or a.lang == query.lang)
                and query.matches(a)]

    def summarise(self, query: Query) -> SearchSummary:
        """How many articles match `query`, and how many per facet value."""
        counts: dict[str, Counter[str]] = {name: Counter() for name in FACETS}
        total = 0
        stories: set[str] = set()
        with self._lock:
            for article, _, _ in self._matching(query, "relevance", page=500,
                                                columns=_counted(query)):
                total += 1
                stories.add(story_key(article))
                for name in FACETS:
                    counts[name].update(facet_values(article, name))
        return SearchSummary(total, {k: dict(c.most_common()) for k, c in counts.items()},
                             stories=len(stories))

    def _matching(self, query: Query, sort: str, page: int, first: int | None = None,
                  columns: ArticleColumns = ALL_COLUMNS,
                  ) -> Iterator[tuple[Article, float, TermDoc]]:
        """The articles matching `query` in the order `sort` asks, with their bm25 (0.0
        when nothing is looked up in the index) and the terms they were matched on,
        read `first` rows then `page` rows at a time, each with `columns` only (what
        matching and the caller read); the caller holds the lock."""
        match = query.fts5_match(column=_TERM_COLUMNS)
        where, params = _required_sql(query, ranked_by_index=match is not None)
        # Ranking reads only row numbers and scores; whole rows are fetched a page at a
        # time, so sorting many candidates never carries their texts along.
        scores_sql = None  # sort newest: bm25 of a page's rows, looked up by row
        if match:
            weights = ", ".join(str(w) for w in BM25_WEIGHTS)
            score = f"bm25(articles_fts, {weights})"
            if sort == "newest":
                # the publication index read newest first, each row looked up among the
                # index's candidates: no sort of them all by a date stored past the text
                ranked = (
                    f"SELECT a.n, 0.0 FROM articles AS a INDEXED BY articles_published "
                    f"WHERE a.n IN (SELECT rowid FROM articles_fts WHERE articles_fts "
                    f"MATCH ?) {where} ORDER BY {_BY_DATE[sort]}"
                )
                # scored within the page's span of row numbers: as many rows as the
                # page when the newest are stored together, never more than every
                # candidate (bm25 counts its documents over the whole index)
                scores_sql = (f"SELECT rowid, {score} FROM articles_fts "
                              "WHERE articles_fts MATCH ? AND rowid BETWEEN ? AND ?")
            elif where and sort not in _BY_DATE and _covered(query):
                # the rows the filters allow, read from an index that holds their
                # fields: a candidate's own row, fields past its text, is never read
                ranked = (f"SELECT rowid, {score} FROM articles_fts "
                          f"WHERE articles_fts MATCH ? AND +rowid IN "
                          f"(SELECT a.n FROM articles AS a WHERE 1 {where}) "
                          "ORDER BY 2, rowid DESC")
            elif where or sort in _BY_DATE:
                order = _BY_DATE.get(sort, "2, a.n DESC")
                ranked = (
                    f"SELECT a.n, {score} FROM articles_fts "
                    f"JOIN articles AS a ON a.n = articles_fts.rowid "
                    f"WHERE articles_fts MATCH ? {where} ORDER BY {order}"
                )
            else:
                # nothing asked of the rows: ranked by the index alone, no row looked up
                ranked = (f"SELECT rowid, {score} FROM articles_fts "
                          "WHERE articles_fts MATCH ? ORDER BY 2, rowid DESC")
            params = [match, *params]
        else:
            # nothing to look up in the index (e.g. `lang:uk AND relevant:true`): newest
            # first; a required publication date makes that the date's own index order
            dated = any(isinstance(f, DateBetween) and f.field == "published_at"
                        for f in query.required_filters())
            order = _BY_DATE.get(sort, "a.published_at DESC, a.n DESC" if dated else
                                 "coalesce(a.published_at, a.fetched_at) DESC, a.n DESC")
            ranked = f"SELECT a.n, 0.0 FROM articles AS a WHERE 1 {where} ORDER BY {order}"
        try:
            cursor = self._db.execute(ranked, params)
            reader = self._db.cursor()
            reader.row_factory = None  # tuples, decoded by position
            try:
                size = first or page
                while rows_page := cursor.fetchmany(size):
                    size = page
                    numbers = [n for n, _ in rows_page]
                    if scores_sql:
                        scores = dict(self._db.execute(
                            scores_sql, [match, min(numbers), max(numbers)]))
                        rows_page = [(n, scores[n]) for n, _ in rows_page]
                    rows = {
                        r[0]: r
                        for r in reader.execute(
                            f"SELECT n, {columns.sql} FROM articles "
                            f"WHERE n IN ({marks(len(numbers))})",
                            numbers,
                        )
                    }
                    for n, bm25 in rows_page:
                        article = columns.article(rows[n][1:])
                        doc = term_doc(article.terms if query.reads_terms else "")
                        if query.matches(article, doc):
                            yield article, bm25, doc
            finally:
                cursor.close()
                reader.close()
        except sqlite3.Error as exc:
            raise StoreError(f"search {query.text!r} failed in {self.path}: {exc}") from exc


# what counting a search's matches reads of each: its facets, its story, the fields a
# query filters on (keyword, boolean, date), and what an Article cannot be without
_COUNTED = ("id", "url", "canonical_url", "source", "fetched_at", "published_at", "lang",
            "relevant", "possible", "translation_status", "cluster_id", "events")
_COUNTED_COLUMNS = {
    (terms, texts): ArticleColumns([*_COUNTED, *(["terms"] if terms else []),
                                    *(["title", "title_en", "text", "text_en"] if texts else [])])
    for terms in (False, True) for texts in (False, True)}


def _counted(query: Query) -> ArticleColumns:
    """The columns `summarise` reads for `query`: no text is unpacked that the query
    does not match on (`title:` and `text:` read the texts, words the terms)."""
    return _COUNTED_COLUMNS[query.reads_terms, query.reads_texts]


# fields one index holds with the row number (articles_overview, articles_published)
_INDEXED_TOGETHER = (frozenset({"lang", "source", "translation_status", "relevant"}),
                     frozenset({"published_at"}))


def _covered(query: Query) -> bool:
    """Whether one index holds every field the query's required filters ask."""
    fields = {f.field for f in query.required_filters()}
    return any(fields <= together for together in _INDEXED_TOGETHER)


def _required_sql(query: Query, ranked_by_index: bool) -> tuple[str, list[Any]]:
    """The query's required field and date filters as SQL conditions on the indexed
    columns (`AND ...`), so rows that cannot match are never read; `matches` still
    decides. Date bounds are widened by a second: a stored date without a zone (read
    as UTC) compares as text with a bound that has one. Without an FTS5 lookup, field
    values are checked on rows read in date order (`+` keeps SQLite from sorting all
    of a language's rows by its index instead); a date range still reads its index."""
    conditions: list[str] = []
    params: list[Any] = []
    unindexed = "" if ranked_by_index else "+"
    for required in query.required_filters():
        if isinstance(required, FieldEquals):
            conditions.append(f"{unindexed}a.{required.field} = ?")
            value = required.value
            params.append(int(value) if isinstance(value, bool) else value)
            continue
        if required.low is not None:
            conditions.append(f"a.{required.field} >= ?")
            params.append(iso(required.low - _SLACK))
        if required.high is not None:
            conditions.append(f"a.{required.field} <= ?")
            params.append(iso(required.high + _SLACK))
        if required.low is None and required.high is None:
            conditions.append(f"a.{required.field} IS NOT NULL")
    return "".join(f" AND {c}" for c in conditions), params

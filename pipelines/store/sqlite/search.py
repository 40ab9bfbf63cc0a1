"""Search over the FTS5 index, decided by the query's own matcher."""

from __future__ import annotations

import sqlite3
from typing import Any

from pipelines.query import Query
from pipelines.store.base import SearchHit, StoreError, check_offset
from pipelines.store.sqlite.codec import row_to_article
from pipelines.store.sqlite.connection import SQLiteConnection, marks
from pipelines.store.sqlite.schema import BM25_WEIGHTS
from pipelines.terms.snippets import article_snippet

# queries match normalised terms (pipelines.query), so candidates come from these
_TERM_COLUMNS = "{terms title_terms}"


class SQLiteSearch(SQLiteConnection):
    """The ArticlesReader role's search."""

    def search(self, query: Query, limit: int = 20, offset: int = 0) -> list[SearchHit]:
        """Best `limit` articles matching `query` (compiled over normalised terms), after
        the best `offset`; its language goes to the language index.

        FTS5 selects a superset of candidates on the normalised terms and ranks them by
        bm25; the query's own matcher decides, so the semantics are exactly those of the
        topic profile and the alert rules.
        """
        check_offset(offset)
        lang = query.lang
        match = query.fts5_candidates(column=_TERM_COLUMNS)
        lang_filter = "AND a.lang = ?" if lang else ""
        lang_params = [lang] if lang else []
        # the language index answers (lang, rowid) without reading the row
        by_lang = "INDEXED BY articles_lang" if lang else ""
        # Ranking reads only row numbers and scores; whole rows are fetched a page at a
        # time, so sorting many candidates never carries their texts along.
        if match:
            weights = ", ".join(str(w) for w in BM25_WEIGHTS)
            ranked = (
                f"SELECT a.n, bm25(articles_fts, {weights}) FROM articles_fts "
                f"JOIN articles AS a {by_lang} ON a.n = articles_fts.rowid "
                f"WHERE articles_fts MATCH ? {lang_filter} ORDER BY 2, a.n DESC"
            )
            params: list[Any] = [match, *lang_params]
        else:
            # nothing to look up in the index (e.g. `lang:uk AND relevant:true`): newest first
            ranked = (
                f"SELECT a.n, 0.0 FROM articles AS a WHERE 1 {lang_filter} "
                "ORDER BY coalesce(a.published_at, a.fetched_at) DESC, a.n DESC"
            )
            params = lang_params
        hits: list[SearchHit] = []
        to_skip = offset
        with self._lock:
            try:
                cursor = self._db.execute(ranked, params)
                while len(hits) < limit and (page := cursor.fetchmany(max(limit, 50))):
                    numbers = [n for n, _ in page]
                    rows = {
                        r["n"]: r
                        for r in self._db.execute(
                            f"SELECT * FROM articles WHERE n IN ({marks(len(numbers))})",
                            numbers,
                        )
                    }
                    for n, bm25 in page:
                        article = row_to_article(rows[n])
                        if not query.matches(article):
                            continue
                        # the query's matcher, not FTS5, decides what a hit is, so the
                        # offset counts matching articles rather than candidate rows
                        if to_skip:
                            to_skip -= 1
                            continue
                        terms = query.matched_terms(article)
                        hits.append(SearchHit(
                            article=article,
                            rank=-bm25 or 0.0,  # no -0.0 in output
                            snippet=article_snippet(article, terms),
                            matched_terms=terms,
                        ))
                        if len(hits) == limit:
                            break
                cursor.close()
            except sqlite3.Error as exc:
                raise StoreError(f"search {query.text!r} failed in {self.path}: {exc}") from exc
        return hits

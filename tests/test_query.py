"""The query language: syntax, errors, Python matching, Elasticsearch DSL, FTS5 candidates.

Elasticsearch cannot run here, so the DSL is checked two ways: its exact shape for a
few queries, and a small reference evaluator of the DSL subset `to_es()` emits (written
from Elasticsearch's documented semantics, independently of `pipelines.query`) that must
agree with `Query.matches()` on every query x article pair. The FTS5 candidates run in a
real SQLite FTS5 table.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest

from pipelines.article import Article
from pipelines.query import QueryError, parse_query
from pipelines.terms.matching import TermDoc
from pipelines.terms.normalisation import analyse


def _article(n: int, lang: str, title: str, text: str, **kw: Any) -> Article:
    url = f"https://news.test/{n}"
    art = Article(url=url, canonical_url=url, source=kw.pop("source", "meduza"),
                  fetched_at=datetime.now(UTC), lang=lang, title=title, text=text,
                  **kw)
    return art


CORPUS = analyse([
    _article(1, "ru", "Осуждённые ИК-6 подписали контракт с Минобороны",
             "Заключённых исправительной колонии отправили на фронт в отряды «Шторм-Z».",
             relevant=True, cluster_id="c1", translation_status="done",
             title_en="Convicts of IK-6 signed a contract with the Defence Ministry",
             text_en="Prisoners of the penal colony were sent to the front."),
    _article(2, "ru", "Вербовка в колониях",
             "Вербовщики ЧВК «Вагнер» приезжали в колонию, говорил Пригожин.",
             source="mediazona", relevant=True, cluster_id="c2"),
    _article(3, "ru", "Премьера в Мариинском театре",
             "Опера Рихарда Вагнера «Лоэнгрин» вернулась на сцену. Вербовать зрителей не нужно.",
             source="tass", cluster_id="c3"),
    _article(4, "uk", "Ув’язнені підписали контракт з Міноборони",
             "Засуджених колонії завербували до загонів Шторм-Z, повідомляє джерело.",
             source="suspilne", relevant=True, cluster_id="c4", translation_status="pending"),
    _article(5, "uk", "Вербування айтівців",
             "Компанії вербують ІТ-фахівців, ув'язнених серед них немає.",
             source="suspilne", cluster_id="c5"),
    _article(6, "en", "Wagner recruited prisoners",
             "Convicts signed up to fight; Prigozhin toured prisons. Storm Z followed.",
             source="bbc", relevant=True, cluster_id="c6"),
    _article(7, "en", "Bayreuth opens with Wagner",
             "The opera festival opened with Parsifal; a contract with the orchestra was signed.",
             source="bbc", cluster_id="c7"),
    _article(8, "en", "Prison riot in Alabama",
             "Inmates rioted over prison conditions; guards were injured.",
             source="apnews", cluster_id="c8", translation_status="skipped"),
    _article(9, "other", "Wojna i więzienia", "Więźniowie podpisali kontrakty.",
             source="onet", cluster_id="c9"),
    _article(10, "ru", "Контракт с колонией",
             "Колония заключила контракт на поставку хлеба, а не с Минобороны.",
             source="ura", cluster_id="c1"),
])

QUERIES = [
    "колонии", "колония AND контракт", "колония контракт", "колония OR ув'язнений",
    "вербов*", "вербов* AND NOT Вагнер", "Шторм-Z", '"Шторм Z"', "Storm-Z", "storm*",
    '"контракт с Минобороны"', '"контракт Минобороны"~1', '"контракт Минобороны"~2',
    '"Минобороны контракт"~3', "Вагнер AND (опера OR opera)", "(Вагнер OR Wagner) -опера",
    "Wagner && !opera", "+Пригожин -опера", "Пригожина || Prigozhin",
    "lang:ru", "lang:(uk OR en)", "lang:ru AND колония", "NOT lang:ru", "source:bbc",
    "source:media*", "source:s?spilne", "relevant:true", "relevant:false AND контракт",
    "translation_status:pending", "cluster_id:c1", "cluster_id:c1 AND NOT relevant:true",
    "terms:колония", "prison*", "prisoners", "inmate OR convict", "ИК-6", "IK-6",
    "ув’язнені", "засуджені", '"contract with the orchestra"', "*", "в?рбовка",
    "NOT (колония OR prison)", "(lang:ru OR lang:uk) AND (вербов* OR завербовать)",
    "(колония AND NOT контракт) OR (prison AND NOT riot)", "Więźniowie",
]


# --- a reference evaluator of the DSL subset ----------------------------------------

def _glob(value: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                              for c in value))


def _phrase(positions: list[list[int]], slop: int) -> bool:
    """Lucene sloppy phrase by brute force: distinct positions p_i with
    max(p_i - i) - min(p_i - i) <= slop."""
    for combo in itertools.product(*positions):
        if len(set(combo)) == len(combo):
            offsets = [p - i for i, p in enumerate(combo)]
            if max(offsets) - min(offsets) <= slop:
                return True
    return False


def es_eval(query: dict[str, Any], doc: dict[str, Any]) -> bool:
    assert len(query) == 1, query
    kind, body = next(iter(query.items()))
    if kind == "match_all":
        assert body == {}
        return True
    if kind == "bool":
        assert set(body) <= {"must", "should", "must_not", "minimum_should_match"}, body
        ok = all(es_eval(q, doc) for q in body.get("must", []))
        ok = ok and not any(es_eval(q, doc) for q in body.get("must_not", []))
        if "should" in body:
            ok = ok and sum(es_eval(q, doc) for q in body["should"]) >= body[
                "minimum_should_match"]
        return ok
    ((field, arg),) = body.items()
    tokens = doc["terms"]
    if kind == "term":
        return arg in tokens if field == "terms" else doc[field] == arg
    if kind == "terms":
        assert field == "terms" and isinstance(arg, list)
        return any(t in tokens for t in arg)
    if kind == "wildcard":
        rx = _glob(arg["value"])
        values = tokens if field == "terms" else [doc[field]]
        return any(rx.fullmatch(str(v)) for v in values)
    if kind == "match_phrase":
        assert field == "terms" and set(arg) == {"query", "slop"}
        words = arg["query"].split(" ")  # the whitespace analyzer
        positions = [[i for i, t in enumerate(tokens) if t == w] for w in words]
        return _phrase(positions, arg["slop"])
    raise AssertionError(f"unexpected query type {kind}")


def _es_doc(article: Article) -> dict[str, Any]:
    doc = {k: getattr(article, k) for k in ("lang", "source", "translation_status",
                                            "cluster_id", "relevant")}
    doc["terms"] = article.terms.split()
    return doc


@pytest.mark.parametrize("text", QUERIES)
def test_python_and_elasticsearch_semantics_agree(text: str) -> None:
    query = parse_query(text)
    dsl = json.loads(json.dumps(query.to_es()))  # what the client would send
    for article in CORPUS:
        assert query.matches(article) == es_eval(dsl, _es_doc(article)), (text, article.url)


@pytest.mark.parametrize("text", QUERIES)
def test_may_match_part_never_rules_out_a_matching_passage(text: str) -> None:
    query = parse_query(text)
    for article in CORPUS:
        words = article.terms.split()
        passages = [TermDoc(words[i:i + 4]) for i in range(0, len(words), 2)]
        if any(query.matches(article, doc) for doc in passages):
            assert query.may_match_part(article), article.url


def test_may_match_part_reads_not_as_true() -> None:
    riot = CORPUS[7]
    assert not parse_query("prison AND NOT riot").matches(riot)
    assert parse_query("prison AND NOT riot").may_match_part(riot)
    assert not parse_query("prison AND опера").may_match_part(riot)


def _matching(text: str) -> set[int]:
    query = parse_query(text)
    return {int(a.url.rsplit("/", 1)[1]) for a in CORPUS if query.matches(a)}


@pytest.mark.parametrize(("text", "expected"), [
    ("колонии", {1, 2, 10}),  # колонии / колонию / колонией; Ukrainian колонія is another word
    ("колонии OR колонії", {1, 2, 4, 10}),
    ("колония контракт", {1, 10}),  # implicit AND
    ("вербов*", {2, 3}),  # вербовка, вербовщик, вербовать — not вербування (uk)
    ("вербу*", {5}),  # вербування, вербують; завербували is завербувати
    ("Шторм-Z", {1, 4}),
    ('"контракт с Минобороны"', {1}),
    ('"контракт Минобороны"~1', {1}),
    ("Вагнер AND (опера OR opera)", {3}),
    ("Wagner && !opera", {6}),
    ("+Пригожин -опера", {2}),
    ("lang:(uk OR en) AND (контракт OR contract)", {4, 7}),
    ("relevant:true AND lang:uk", {4}),
    ("NOT (колония OR prison)", {3, 4, 5, 7, 9}),
    ("source:media*", {2}),
    ("cluster_id:c1", {1, 10}),
    ("translation_status:done", {1}),
    ("ИК-6 OR IK-6", {1}),
    ("ув’язнені", {4, 5}),
])
def test_matches(text: str, expected: set[int]) -> None:
    assert _matching(text) == expected


def test_storm_z_in_latin_and_cyrillic_are_different_words() -> None:
    # the profile lists both spellings; the query language does not transliterate
    assert _matching("Storm-Z") == {6}


def test_or_and_precedence_and_grouping() -> None:
    assert _matching("опера OR колония AND Пригожин") == _matching(
        "опера OR (колония AND Пригожин)") == {2, 3}
    assert _matching("(опера OR колония) AND Пригожин") == {2}


def test_matched_terms_are_the_query_terms_as_written() -> None:
    query = parse_query('колонии OR "контракт с Минобороны" OR Шторм-Z OR вербов* OR '
                        "Вагнер -опера")
    assert query.matched_terms(CORPUS[0]) == ["колонии", '"контракт с Минобороны"', "Шторм-Z"]
    assert query.matched_terms(CORPUS[1]) == ["колонии", "вербов*", "Вагнер"]
    # a term under NOT is never reported, even when present
    assert "опера" not in parse_query("колония OR NOT опера").matched_terms(CORPUS[2])
    assert parse_query('"a b"~2 OR колония').matched_terms(CORPUS[0]) == ["колония"]


def test_es_dsl_shapes() -> None:
    assert parse_query("вербовки").to_es() == {"term": {"terms": "вербовка"}}
    assert parse_query("вербов*").to_es() == {"wildcard": {"terms": {"value": "вербов*"}}}
    assert parse_query("Пригожин").to_es() == {"terms": {"terms": ["пригожин", "пригожина"]}}
    assert parse_query('"контракт с Минобороны"~2 AND lang:ru').to_es() == {"bool": {"must": [
        {"bool": {"should": [
            {"match_phrase": {"terms": {"query": "контракт с минобороны", "slop": 2}}},
            {"match_phrase": {"terms": {"query": "контрактовий с минобороны", "slop": 2}}},
        ], "minimum_should_match": 1}},
        {"term": {"lang": "ru"}},
    ]}}
    assert parse_query("relevant:TRUE OR NOT source:Meduza").to_es() == {"bool": {
        "should": [
            {"term": {"relevant": True}},
            {"bool": {"must": [{"match_all": {}}],
                      "must_not": [{"term": {"source": "meduza"}}]}},
        ], "minimum_should_match": 1}}


@pytest.mark.parametrize(("text", "message", "line", "column"), [
    ("колония AND", "syntax error", 1, 12),
    ("(колония OR тюрьма", "syntax error", 1, 19),
    ("колония ) тюрьма", "unexpected ')'", 1, 9),
    ("колония AND\n  author:Вагнер", "unknown field 'author'", 2, 3),
    ("lang:ua", "unknown language 'ua'", 1, 6),
    ("relevant:yes", "true or false", 1, 10),
    ("translation_status:ready", "unknown translation status", 1, 20),
    ("колония^2", "boosts", 1, 1),
    ("колония~", "fuzzy", 1, 1),
    ("published_at:[2024 TO 2025]", "unknown field", 1, 1),
    ("lang:[a TO b]", "ranges", 1, 6),
    ("/вербов.*/", "regular expressions", 1, 1),
    ('колония AND "вербов* колон"', "wildcard cannot be part of a phrase", 1, 13),
    ('колония OR "«»"', "no word", 1, 12),
    ("lang:(source:x)", "inside field", 1, 7),
    ("колония &&  && тюрьма", "syntax error", 1, 13),
    ('"незакрытая фраза', "syntax error", 1, 1),
    ("   ", "empty query", 1, 1),
    ("колония and тюрьма", "write AND for the operator", 1, 9),
    ("колония OR\n Not тюрьма", "write NOT for the operator", 2, 2),
])
def test_errors_name_the_rule_and_the_position(text: str, message: str, line: int,
                                               column: int) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(text, name="recruitment-uk")
    err = info.value
    assert str(err).startswith("recruitment-uk: ")
    assert message in str(err)
    assert (err.line, err.column) == (line, column), str(err)


def test_operator_words_can_be_searched_quoted() -> None:
    assert parse_query('"and"').to_es() == {"term": {"terms": "and"}}


def test_too_ambiguous_phrase_is_refused() -> None:
    with pytest.raises(QueryError, match="lemma readings"):
        parse_query('"' + " ".join(["стали"] * 4) + '"')


def test_escaped_characters() -> None:
    # an escaped space makes one word of two: a phrase of its parts
    assert _matching(r"Проект\ К") == _matching('"Проект К"')
    # an escaped * is not a wildcard
    assert parse_query(r"вербов\*").to_es() == {"terms": {"terms": ["вербов", "вербовый"]}}


# --- FTS5 candidates ---------------------------------------------------------------

@pytest.fixture(scope="module")
def fts() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE idx USING fts5(terms, tokenize='unicode61 "
               "remove_diacritics 0')")
    db.executemany("INSERT INTO idx(rowid, terms) VALUES (?, ?)",
                   [(int(a.url.rsplit("/", 1)[1]), a.terms) for a in CORPUS])
    return db


@pytest.mark.parametrize("text", QUERIES)
def test_fts5_candidates_are_a_superset(fts: sqlite3.Connection, text: str) -> None:
    query = parse_query(text)
    expr = query.fts5_candidates()
    if expr is None:
        return
    found = {r[0] for r in fts.execute("SELECT rowid FROM idx WHERE idx MATCH ?", (expr,))}
    assert _matching(text) <= found, expr
    column = {r[0] for r in fts.execute("SELECT rowid FROM idx WHERE idx MATCH ?",
                                        (query.fts5_candidates("terms"),))}
    assert column == found


@pytest.mark.parametrize("text", QUERIES)
def test_fts5_match_is_a_superset_within_the_candidates(fts: sqlite3.Connection,
                                                        text: str) -> None:
    query = parse_query(text)
    expr = query.fts5_match()
    if expr is None:
        assert query.fts5_candidates() is None
        return
    found = {r[0] for r in fts.execute("SELECT rowid FROM idx WHERE idx MATCH ?", (expr,))}
    assert _matching(text) <= found, expr
    # it follows the query, so it never selects more than the one cover does
    cover = {r[0] for r in fts.execute("SELECT rowid FROM idx WHERE idx MATCH ?",
                                       (query.fts5_candidates(),))}
    assert found <= cover, expr


def test_fts5_match_follows_ands_and_phrases() -> None:
    assert parse_query("колонии AND Минобороны").fts5_match("terms") == (
        'terms : (("колонии" OR "колония") AND ("минобороны"))')
    assert parse_query("Шторм-Z AND lang:uk").fts5_match() == (
        '"шторм" + "z" OR "штормовий" + "z"')
    assert parse_query('"Шторм Z"~2').fts5_match() == '("шторм" OR "штормовий") AND ("z")'
    assert parse_query("Пригожин OR NOT Минобороны").fts5_match() is None


def test_fts5_candidates_narrow() -> None:
    assert parse_query("вербов* AND lang:ru").fts5_candidates() == '"вербов"*'
    assert parse_query("Пригожин OR Минобороны").fts5_candidates() == (
        '"минобороны" OR "пригожин" OR "пригожина"')
    assert parse_query("колонии AND Минобороны").fts5_candidates("terms") == (
        'terms : ("минобороны")')


@pytest.mark.parametrize("text", ["NOT колония", "lang:ru", "relevant:true OR колония",
                                  "*", "?ербовка", "колония OR -тюрьма"])
def test_fts5_candidates_none_without_positive_terms(text: str) -> None:
    assert parse_query(text).fts5_candidates() is None


def test_fts5_hit_count_on_selective_query(fts: sqlite3.Connection) -> None:
    expr = parse_query("Пригожин AND lang:ru").fts5_candidates()
    rows = {r[0] for r in fts.execute("SELECT rowid FROM idx WHERE idx MATCH ?", (expr,))}
    assert rows == {2}


# --- wildcards mean the words written that way ---------------------------------------

WILDCARD_TEXTS = [
    # (language, wildcard, texts it must match, a text it must not match)
    ("en", "mobiliz*", ["The mobilization of convicts began.", "Convicts were mobilized."],
     "The mobs were dispersed."),
    ("en", "inmate*", ["Two inmates escaped.", "An inmate wrote to us."], "Immates? No."),
    ("ru", "осуждённ*", ["Осужденных отправили на фронт.", "Осуждённые подписали контракты."],
     "Суд осудил его заочно."),
    ("ru", "мобилиз*", ["Мобилизованных заключённых стало больше.", "Мобилизация идёт."],
     "Мобильные телефоны изъяли."),
    ("uk", "ув'язнен*", ["Серед ув’язнених є хворі.", "Увʼязнені підписали контракт."],
     "В'язниця переповнена."),
    ("uk", "в'язню*", ["Адвокат пише в’язню щотижня.", "Він передав в'язню ліки."],
     "В'язниця переповнена."),
]


@pytest.mark.parametrize(("lang", "wildcard", "texts", "other"), WILDCARD_TEXTS,
                         ids=[w for _, w, _, _ in WILDCARD_TEXTS])
def test_wildcards_match_the_words_written_that_way(fts: sqlite3.Connection, lang: str,
                                                    wildcard: str, texts: list[str],
                                                    other: str) -> None:
    query = parse_query(wildcard)
    dsl = json.loads(json.dumps(query.to_es()))
    articles = analyse([_article(100 + i, lang, "", t) for i, t in enumerate([*texts, other])])
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE idx USING fts5(terms, tokenize='unicode61 "
               "remove_diacritics 0')")
    db.executemany("INSERT INTO idx(rowid, terms) VALUES (?, ?)",
                   [(i, a.terms) for i, a in enumerate(articles)])
    candidates = {r[0] for r in db.execute("SELECT rowid FROM idx WHERE idx MATCH ?",
                                           (query.fts5_candidates(),))}
    for i, article in enumerate(articles):
        expected = i < len(texts)
        assert query.matches(article) is expected, (article.text, article.terms)
        # Elasticsearch (the DSL sent on the `terms` field) decides the same, and the
        # FTS5 prefilter SQLite runs first never drops a match
        assert es_eval(dsl, _es_doc(article)) is expected, dsl
        assert not expected or i in candidates


def test_a_wildcard_whose_prefix_outruns_the_stem_is_sent_with_the_stem() -> None:
    assert parse_query("mobiliz*").to_es() == {"bool": {"should": [
        {"wildcard": {"terms": {"value": "mobiliz*"}}},
        {"terms": {"terms": ["mobil"]}}], "minimum_should_match": 1}}
    assert parse_query("mobiliz*").fts5_candidates() == '"mobil" OR "mobiliz"*'


@pytest.mark.parametrize(("text", "unmatchable"), [
    ("organi?ation OR recruit*", ["organi?ation"]),
    ("колон?ия AND вербов*", ["колон?ия"]),
    ("колон?ія OR NOT в'язню*", ["колон?ія"]),
    ("mobiliz* OR вербую* OR по*", []),
])
def test_wildcards_that_fit_no_word_are_named(text: str, unmatchable: list[str]) -> None:
    assert parse_query(text).unmatchable_wildcards() == unmatchable

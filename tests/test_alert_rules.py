"""Alert rule files: the schema as analysts write it, compiled queries, load-time errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.alert import load_rules
from pipelines.config import paths
from pipelines.errors import ConfigError
from pipelines.matching import PythonMatcher
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import OFF_TOPIC, RELEVANT, rules_file
from tests.support.articles import corpus


def test_minimal_schema_from_the_issue_loads(tmp_path: Path) -> None:
    path = rules_file(tmp_path, """\
        rules:
          - name: recruitment-uk
            query: 'relevant:true AND lang:uk'
            to: [uk-desk@example.org]
    """)
    [rule] = load_rules(path)
    assert rule.name == "recruitment-uk"
    assert rule.title == "recruitment-uk"
    assert rule.spec.to == ["uk-desk@example.org"]
    assert rule.spec.digest_limit == 50
    docs = corpus()
    assert rule.matches(docs["uk"])
    assert not rule.matches(docs["ru_wire"])  # relevant, but Russian
    assert not rule.matches(docs["ru_it"])


def test_shipped_rule_matches_exactly_the_relevant_stories() -> None:
    [rule] = load_rules(paths.default_alerts())
    docs = corpus()
    matched = PythonMatcher().match([rule], docs.values())[rule.name]
    assert set(matched) == {docs[n].id for n in RELEVANT}
    assert not {docs[n].id for n in OFF_TOPIC} & set(matched)


def test_languages_and_sources_narrow_the_query(tmp_path: Path) -> None:
    path = rules_file(tmp_path, """\
        rules:
          - name: colonies
            query: 'колония OR colony OR колонія'
            to: [a@example.org]
            languages: [ru, en]
            sources: [ria, guardian, pravda-uk]
    """)
    [rule] = load_rules(path)
    docs = corpus()
    hits = {name for name, a in docs.items() if rule.matches(a)}
    # pravda-uk is Ukrainian (not in languages); ural-news and reuters are not in sources
    assert hits == {"ru_wire", "en_other"}


def test_query_words_match_inflected_forms_in_every_language(tmp_path: Path) -> None:
    path = rules_file(tmp_path, """\
        rules:
          - name: pardons
            query: 'помилование OR pardon'
            to: [a@example.org]
    """)
    [rule] = load_rules(path)
    docs = corpus()
    # "помилование" (ru), "помилування" is a different Ukrainian word; "pardons" stems to pardon
    assert rule.matches(docs["ru_wire"])
    assert rule.matches(docs["en_wire"])
    assert "помилование" in rule.matched_terms(docs["ru_wire"])
    assert not rule.matches(docs["ru_composer"])


def test_bad_query_fails_at_load_with_rule_name_and_position(tmp_path: Path) -> None:
    path = rules_file(tmp_path, """\
        rules:
          - name: fine
            query: 'relevant:true'
            to: [a@example.org]
          - name: broken-parens
            query: 'вагнер AND (колония OR'
            to: [a@example.org]
    """)
    with pytest.raises(ConfigError) as err:
        load_rules(path)
    message = str(err.value)
    assert "rules[1] (broken-parens)" in message
    assert "line 1, column 23" in message
    assert message.endswith("вагнер AND (колония OR\n" + " " * 4 + " " * 22 + "^")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("    query: 'a'\n", "to: Field required"),
        ("    query: 'a'\n    to: [not-an-address]\n", "not an email address"),
        ("    query: 'a'\n    to: [\"a@example.org\\r\\nBcc: x@evil.example\"]\n",
         "not an email address"),
        ("    query: 'a'\n    to: [a@example.org]\n    languages: [de]\n", "languages"),
        ("    query: 'a'\n    to: [a@example.org]\n    digest_limit: 0\n", "digest_limit"),
        ("    query: 'a'\n    to: [a@example.org]\n    recipients: [b@example.org]\n",
         "recipients: Extra inputs are not permitted"),
    ],
)
def test_schema_errors_name_the_rule_and_field(tmp_path: Path, entry: str,
                                               expected: str) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("rules:\n  - name: desk\n" + entry, "utf-8")
    with pytest.raises(ConfigError) as err:
        load_rules(path)
    assert "rules[0] (desk)" in str(err.value)
    assert expected in str(err.value)


def test_duplicate_rule_names_are_refused(tmp_path: Path) -> None:
    rule = "  - name: same\n    query: 'relevant:true'\n    to: [a@example.org]\n"
    path = tmp_path / "alerts.yaml"
    path.write_text("rules:\n" + rule + rule, "utf-8")
    with pytest.raises(ConfigError, match="'same' is used twice"):
        load_rules(path)


def test_embedded_store_uses_the_python_matcher(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.db")
    try:
        assert isinstance(store.alert_matcher(), PythonMatcher)
    finally:
        store.close()


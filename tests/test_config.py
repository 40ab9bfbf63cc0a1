"""sources.yaml validation: every problem names the file, the source and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import paths
from pipelines.config.config import Config
from pipelines.config.sources import load_sources
from pipelines.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_minimal_schema_from_the_docs_loads(tmp_path: Path) -> None:
    path = write(tmp_path, """
sources:
  - name: meduza
    lang: ru
    feeds: [https://meduza.io/rss/all]
    sitemaps: [https://example.org/news-sitemap.xml]
    keep: all
""")
    [source] = load_sources(path)
    assert (source.name, source.lang, source.keep) == ("meduza", "ru", "all")
    assert source.feeds == ["https://meduza.io/rss/all"]


def test_the_shipped_sources_cover_three_languages() -> None:
    sources = load_sources(paths.default_sources())
    assert {s.lang for s in sources} >= {"ru", "uk", "en"}
    assert len({s.name for s in sources}) == len(sources)


def test_a_bad_field_names_file_source_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, """
sources:
  - name: good
    feeds: [https://example.org/rss]
  - name: broken
    lang: de
    feeds: [ftp://example.org/rss]
""")
    with pytest.raises(ConfigError) as err:
        load_sources(path)
    message = str(err.value)
    assert str(path) in message
    assert "sources[1] (broken) → lang" in message
    assert "sources[1] (broken) → feeds" in message
    assert "ftp://example.org/rss" in message


def test_unknown_field_is_refused_not_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, """
sources:
  - name: typo
    feed: [https://example.org/rss]
""")
    with pytest.raises(ConfigError, match=r"sources\[0\] \(typo\) → feed: Extra inputs"):
        load_sources(path)


def test_duplicate_names_and_empty_sources(tmp_path: Path) -> None:
    twice = write(tmp_path, """
sources:
  - {name: a, feeds: [https://example.org/1]}
  - {name: a, feeds: [https://example.org/2]}
""")
    with pytest.raises(ConfigError, match="source name 'a' is used twice"):
        load_sources(twice)
    empty = write(tmp_path, "sources:\n  - {name: lonely}\n")
    with pytest.raises(ConfigError, match="source 'lonely' has no feeds, sitemaps or listings"):
        load_sources(empty)


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  - name: x\n    feeds: [https://a.example/rss\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+.*invalid YAML"):
        load_sources(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_sources(tmp_path / "nope.yaml")


def test_an_analysts_own_topic_profile_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.article import Article, utcnow
    from pipelines.relevance import classify, load_topic
    from pipelines.terms.normalisation import analyse

    topic = tmp_path / "floods.yaml"
    topic.write_text("""
name: floods
threshold: 1.0
rules:
  - name: flood
    weight: 1.0
    query: 'паводок OR повінь OR flood'
""", encoding="utf-8")
    monkeypatch.setenv("DOZOR_TOPIC", str(topic))
    profile = load_topic(Config.from_env().paths.topic)
    story = Article(url="https://news.example/1", canonical_url="https://news.example/1",
                    source="news", fetched_at=utcnow(), lang="ru",
                    title="Паводки в Якутии", text="Паводком затоплены сёла.")
    [story] = classify(analyse([story]), profile)
    assert story.relevant and story.matched_terms == ["паводок"]

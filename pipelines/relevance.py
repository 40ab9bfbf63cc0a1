"""Topic relevance: a profile of weighted Lucene rules decides what is on topic.

A topic profile is YAML an analyst edits (the shipped one is
``dozor/defaults/topic.yaml``)::

    name: prisoner-recruitment
    title: Prisoner recruitment into Russia's war
    languages: [ru, uk, en]      # articles in other languages are never relevant
    threshold: 1.0
    rules:
      - name: storm-z
        weight: 1.0              # positive: evidence for the topic
        query: 'Шторм-Z OR Storm-Z'
      - name: composer-trap
        weight: -2.0             # negative: a known look-alike
        query: '(Вагнер OR Wagner) AND (опера OR opera) AND NOT (ЧВК OR PMC)'

Queries use the language of `pipelines.query` over the article's normalised terms,
so inflected forms match in all three languages.

Score: ``raw`` is the sum of the weights of the rules that match. The article is
relevant when ``raw >= threshold``; ``score = max(raw, 0) / (max(raw, 0) + threshold)``
lies in [0, 1), grows with the evidence and is exactly 0.5 at the threshold.
``matched_terms`` are the query terms, as written, that matched in the positive
rules that fired (for highlighting and for the analyst to see why).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import Field, field_validator

from dozor.config import ConfigError, Lang, StrictModel, load_yaml
from pipelines.article import Article
from pipelines.query import Query, QueryError, parse_query


class TopicRule(StrictModel):
    name: str = Field(min_length=1)
    query: str = Field(min_length=1)
    weight: float
    note: str = ""

    @field_validator("weight")
    @classmethod
    def _nonzero(cls, weight: float) -> float:
        if weight == 0:
            raise ValueError("weight 0 makes the rule do nothing; remove the rule instead")
        return weight


class TopicFile(StrictModel):
    name: str = Field(min_length=1)
    title: str = ""
    description: str = ""
    languages: list[Lang] = ["ru", "uk", "en"]
    threshold: float = Field(gt=0)
    rules: list[TopicRule] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[TopicRule]) -> list[TopicRule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        if not any(rule.weight > 0 for rule in rules):
            raise ValueError("no rule has a positive weight: nothing could be relevant")
        return rules


@dataclass(frozen=True)
class CompiledRule:
    name: str
    weight: float
    query: Query


@dataclass(frozen=True)
class TopicProfile:
    name: str
    title: str
    languages: tuple[str, ...]
    threshold: float
    rules: tuple[CompiledRule, ...]

    def fired(self, article: Article) -> list[CompiledRule]:
        """The rules that match `article` (whatever its language)."""
        return [rule for rule in self.rules if rule.query.matches(article)]


def load_topic(path: Path | str) -> TopicProfile:
    """Read and compile a topic profile; every problem is a `ConfigError` naming the
    file, the rule and the position in its query."""
    path = Path(path)
    spec = load_yaml(path, TopicFile)
    rules = []
    for i, rule in enumerate(spec.rules):
        try:
            query = parse_query(rule.query, name=rule.name)
        except QueryError as exc:
            line = _query_line(path, i)
            at = f" (query starts at line {line})" if line else ""
            raise ConfigError(
                f"{path}: rules[{i}] ({rule.name}) → query{at}: {exc.reason} "
                f"at line {exc.line}, column {exc.column} of the query"
            ) from None
        rules.append(CompiledRule(rule.name, rule.weight, query))
    return TopicProfile(spec.name, spec.title or spec.name, tuple(spec.languages),
                        spec.threshold, tuple(rules))


def _query_line(path: Path, index: int) -> int | None:
    """1-based line of the file where rules[index].query begins (for error messages)."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
        rules = next(v for k, v in root.value if k.value == "rules")
        query = next(v for k, v in rules.value[index].value if k.value == "query")
    except (yaml.YAMLError, StopIteration, AttributeError, IndexError, TypeError):
        return None
    # a block scalar (| or >) starts on the line after its indicator
    return query.start_mark.line + (2 if query.style in ("|", ">") else 1)


def classify(articles: list[Article], profile: TopicProfile) -> list[Article]:
    """Set `relevant`, `score` and `matched_terms` of each article (formula above)."""
    for article in articles:
        if article.lang not in profile.languages:
            article.relevant, article.score, article.matched_terms = False, 0.0, []
            continue
        fired = profile.fired(article)
        raw = sum(rule.weight for rule in fired)
        evidence = max(raw, 0.0)
        article.relevant = raw >= profile.threshold
        article.score = round(evidence / (evidence + profile.threshold), 4)
        terms: dict[str, None] = {}
        for rule in fired:
            if rule.weight > 0:
                terms.update(dict.fromkeys(rule.query.matched_terms(article)))
        article.matched_terms = list(terms)
    return articles

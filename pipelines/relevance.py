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
so inflected forms match in all three languages. A rule with ``window: N`` must match
within one passage of N words (title and text run on as one sequence): in a long report,
"convicts" in one chapter and "the front" in another are not one story.

Score: ``raw`` is the sum of the weights of the rules that match. The article is
relevant when ``raw >= threshold``; ``score = max(raw, 0) / (max(raw, 0) + threshold)``
lies in [0, 1), grows with the evidence and is exactly 0.5 at the threshold. With
``possible_threshold: P`` (below the threshold) an article with ``P <= raw`` that is not
relevant is ``possible``: the stores keep it as possibly relevant, the UI shows it, and
an alert rule with ``possible: true`` mails it in a section of its own, so an analyst
sees what the rules nearly missed.
``matched_terms`` are the query terms, as written, of the positive rules that fired,
found anywhere in the article (for highlighting and for the analyst to see why).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import Field, field_validator, model_validator

from pipelines.article import Article
from pipelines.config.yamlfile import Lang, StrictModel, load_yaml, require_unique_names
from pipelines.errors import ConfigError
from pipelines.query import Query, QueryError, parse_query
from pipelines.terms.matching import TermDoc

log = logging.getLogger(__name__)


class TopicRule(StrictModel):
    name: str = Field(min_length=1)
    query: str = Field(min_length=1)
    weight: float
    # match within one passage of this many words, not anywhere in a long text
    window: int | None = Field(default=None, ge=10)
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
    # stories scoring at least this, but under `threshold`, are kept as possibly relevant
    possible_threshold: float | None = Field(default=None, gt=0)
    rules: list[TopicRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _possible_below_threshold(self) -> TopicFile:
        if self.possible_threshold is not None and self.possible_threshold >= self.threshold:
            raise ValueError(f"possible_threshold ({self.possible_threshold}) must be below "
                             f"threshold ({self.threshold})")
        return self

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[TopicRule]) -> list[TopicRule]:
        require_unique_names(rules, "rule")
        if not any(rule.weight > 0 for rule in rules):
            raise ValueError("no rule has a positive weight: nothing could be relevant")
        return rules


@dataclass(frozen=True)
class CompiledRule:
    name: str
    weight: float
    query: Query
    window: int | None = None

    def fires(self, article: Article, passages: dict[int, _Passages] | None = None) -> bool:
        """Whether the rule matches; `passages` shares built windows between the rules
        evaluated on one article."""
        if self.window is None:
            return self.query.matches(article)
        if not self.query.may_match_part(article):
            return False  # the cheap exit for most articles and rules
        if passages is None:
            passages = {}
        windows = passages.get(self.window)
        if windows is None:
            windows = passages[self.window] = _Passages(article.terms, self.window)
        return any(self.query.matches(article, doc) for doc in windows)


class _Passages:
    """Overlapping windows of `size` words, each starting half a window after the last
    (words up to size/2 apart are always seen together). Built as far as a rule needs
    them."""

    def __init__(self, terms: str, size: int) -> None:
        self.words = terms.split()
        self.size = size
        self.built: list[TermDoc] = []

    def __iter__(self) -> Iterator[TermDoc]:
        step = self.size // 2
        for n, start in enumerate(range(0, max(len(self.words) - step, 1), step)):
            if n == len(self.built):
                self.built.append(TermDoc(self.words[start:start + self.size]))
            yield self.built[n]


@dataclass(frozen=True)
class TopicProfile:
    name: str
    title: str
    languages: tuple[str, ...]
    threshold: float
    rules: tuple[CompiledRule, ...]
    possible_threshold: float | None = None

    def fired(self, article: Article) -> list[CompiledRule]:
        """The rules that match `article` (whatever its language)."""
        passages: dict[int, _Passages] = {}
        return [rule for rule in self.rules if rule.fires(article, passages)]


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
        for warning in query.wildcard_warnings(f"{path}: rules[{i}] ({rule.name})"):
            log.warning("%s", warning)
        rules.append(CompiledRule(rule.name, rule.weight, query, rule.window))
    return TopicProfile(spec.name, spec.title or spec.name, tuple(spec.languages),
                        spec.threshold, tuple(rules), spec.possible_threshold)


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
    """Set `relevant`, `possible`, `score` and `matched_terms` of each article (formula
    above)."""
    for article in articles:
        if article.lang not in profile.languages:
            article.relevant, article.score, article.matched_terms = False, 0.0, []
            article.possible = False
            continue
        fired = profile.fired(article)
        raw = sum(rule.weight for rule in fired)
        terms: dict[str, None] = {}
        for rule in fired:
            if rule.weight > 0:
                terms.update(dict.fromkeys(rule.query.matched_terms(article)))
        evidence = max(raw, 0.0)
        article.relevant = raw >= profile.threshold
        article.possible = (not article.relevant and profile.possible_threshold is not None
                            and raw >= profile.possible_threshold)
        article.score = round(evidence / (evidence + profile.threshold), 4)
        article.matched_terms = list(terms)
    return articles

"""Alert rules: the YAML an analyst edits, validated and compiled at load time.

A rule's query is Lucene syntax (pipelines.query). Its optional `languages` and
`sources` lists are folded into that query as field filters, so one compiled `Query`
carries the whole rule: the Python matcher and the Elasticsearch percolator then
evaluate exactly the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path

from pydantic import Field, field_validator

from pipelines.article import Article
from pipelines.config.yamlfile import Lang, StrictModel, load_yaml, require_unique_names
from pipelines.errors import ConfigError
from pipelines.query import Query, QueryError, parse_query

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"


class AlertRule(StrictModel):
    name: str = Field(pattern=NAME_PATTERN)
    query: str = Field(min_length=1)
    to: list[str] = Field(min_length=1)
    title: str = ""  # the topic as the subject and heading name it; default: the name
    languages: list[Lang] = []  # only stories in these languages (default: any)
    sources: list[str] = []  # only stories from these sources (default: any)
    # stories per digest; the oldest pending ones go first and the rest stay pending
    # for the next digest, which the email says
    digest_limit: int = Field(default=50, ge=1, le=1000)
    subject_prefix: str = ""  # e.g. "[Dozor]", for mail filters
    # also every story of the topic's possibly relevant tier (in the rule's languages
    # and sources), in a section of the digest of its own
    possible: bool = False
    # false: the rule neither matches nor sends (kept in the file, switched off)
    enabled: bool = True
    # until then nothing is sent; stories matched meanwhile wait for the first digest
    # after it (a date-time with its offset, or a day, UTC)
    mute_until: datetime | None = None

    @field_validator("mute_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value

    @field_validator("to")
    @classmethod
    def _addresses(cls, recipients: list[str]) -> list[str]:
        for value in recipients:
            _, addr = parseaddr(value)
            local, _, domain = addr.rpartition("@")
            if not local or "." not in domain or any(ord(ch) < 32 for ch in value):
                raise ValueError(f"not an email address: {value!r}")
        return recipients

    @field_validator("sources")
    @classmethod
    def _source_names(cls, sources: list[str]) -> list[str]:
        for name in sources:
            if not re.fullmatch(NAME_PATTERN, name):
                raise ValueError(f"not a source name: {name!r}")
        return sources


class HealthAlerts(StrictModel):
    """The alerts file's `health` section: who hears of a source entering a bad state
    (and of its recovery), and when a state is bad enough."""

    to: list[str] = Field(min_length=1)
    failing_after: int = Field(3, ge=1, le=100)  # consecutive errors before `failing`
    # `silent` after this many times the source's usual gap between items without one
    silent_factor: float = Field(4.0, ge=1.0, le=100.0)
    subject_prefix: str = ""

    _addresses = field_validator("to")(AlertRule._addresses.__func__)  # type: ignore[attr-defined]


class RulesFile(StrictModel):
    rules: list[AlertRule]
    health: HealthAlerts | None = None

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[AlertRule]) -> list[AlertRule]:
        require_unique_names(rules, "rule")
        return rules


@dataclass(frozen=True)
class Rule:
    """A validated rule with its compiled query (the user's query plus its filters)."""

    spec: AlertRule
    query: Query

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def title(self) -> str:
        return self.spec.title or self.spec.name

    def matches(self, article: Article) -> bool:
        return self.query.matches(article)

    def sends(self, now: datetime) -> bool:
        """Whether the rule mails its digest at `now`: enabled and not muted."""
        return self.spec.enabled and (self.spec.mute_until is None
                                      or now >= self.spec.mute_until)

    def matched_terms(self, article: Article) -> list[str]:
        return self.query.matched_terms(article)


def compile_rule(spec: AlertRule) -> Rule:
    """The rule's query with its language and source lists joined to it as field filters
    (on the compiled tree); an error position points into what the analyst wrote."""
    scope = (("lang", spec.languages), ("source", spec.sources))
    query = parse_query(spec.query, name=spec.name).restrict(*scope)
    if spec.possible:
        query = query.either(Query.where(("possible", [True]), *scope, name=spec.name))
    return Rule(spec=spec, query=query)


# Compiled rules by their spec: a rule is compiled once per process (`dozor schedule`
# and the UI load the file again and again; 1,000 rules take seconds to compile).
_COMPILED: dict[str, Rule] = {}


def enabled(rules: Iterable[Rule]) -> list[Rule]:
    return [r for r in rules if r.spec.enabled]


def load_rules(path: Path | str, sources: Collection[str] | None = None) -> list[Rule]:
    """The rules of an alerts file; a bad rule fails here, naming the rule and position.
    With `sources` (the sources file's names), a rule naming another source fails too."""
    specs = load_yaml(path, RulesFile).rules
    rules = []
    for index, spec in enumerate(specs):
        unknown = [s for s in spec.sources if sources is not None and s not in sources]
        if unknown:
            raise ConfigError(
                f"{path}: rules[{index}] ({spec.name}) → sources: unknown source "
                f"{unknown[0]!r} (the sources file has {', '.join(sorted(sources or ()))})")
        key = spec.model_dump_json()
        if key in _COMPILED:
            rules.append(_COMPILED[key])
            continue
        try:
            rules.append(_COMPILED.setdefault(key, compile_rule(spec)))
        except QueryError as exc:
            line = exc.text.splitlines()[exc.line - 1] if exc.text.strip() else ""
            raise ConfigError(
                f"{path}: rules[{index}] ({spec.name}) → query: {exc.reason} "
                f"at line {exc.line}, column {exc.column}\n    {line}\n    "
                + " " * (exc.column - 1) + "^"
            ) from None
    return rules


def load_health(path: Path | str) -> HealthAlerts | None:
    """The alerts file's `health` section, if it has one."""
    return load_yaml(path, RulesFile).health

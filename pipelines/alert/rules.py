"""Alert rules: the YAML an analyst edits, validated and compiled at load time.

A rule's query is Lucene syntax (pipelines.query). Its optional `languages` and
`sources` lists are folded into that query as field filters, so one compiled `Query`
carries the whole rule: the Python matcher and the Elasticsearch percolator then
evaluate exactly the same thing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, HttpUrl, field_validator

from pipelines.article import Article
from pipelines.config.yamlfile import Lang, StrictModel, load_yaml, require_unique_names
from pipelines.errors import ConfigError
from pipelines.query import Query, QueryError, parse_query

if TYPE_CHECKING:
    from apprise import NotifyBase

log = logging.getLogger(__name__)

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SCHEDULE = re.compile(r"immediate|hourly|daily (\d\d):(\d\d)"
                       r"|weekly (mon|tue|wed|thu|fri|sat|sun) (\d\d):(\d\d)")


@dataclass(frozen=True)
class Schedule:
    """When a rule's digest may go: `immediate` (each run), `hourly`, `daily HH:MM` or
    `weekly DAY HH:MM`, wall-clock times in the alerts file's time zone."""

    kind: str = "immediate"
    weekday: int = 0  # weekly: 0 = Monday
    hour: int = 0
    minute: int = 0

    @classmethod
    def parse(cls, text: str) -> Schedule:
        found = _SCHEDULE.fullmatch(" ".join(text.lower().split()))
        if not found:
            raise ValueError(f"{text!r}: expected immediate, hourly, 'daily HH:MM' or "
                             "'weekly DAY HH:MM' (DAY one of mon..sun)")
        kind = found.group(0).split()[0]
        day = WEEKDAYS.index(found.group(3)) if found.group(3) else 0
        hour, minute = {"daily": found.group(1, 2),
                        "weekly": found.group(4, 5)}.get(kind, ("0", "0"))
        if int(hour) > 23 or int(minute) > 59:
            raise ValueError(f"{text!r}: no such time of day")
        return cls(kind, day, int(hour), int(minute))

    def last_slot(self, now: datetime, zone: ZoneInfo) -> datetime:
        """The latest due time at or before `now` (immediate: `now` itself)."""
        if self.kind == "immediate":
            return now
        local = now.astimezone(zone)
        if self.kind == "hourly":
            slot = local.replace(minute=0, second=0, microsecond=0)
        else:
            slot = local.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
            back = (local.weekday() - self.weekday) % 7 if self.kind == "weekly" else 0
            slot -= timedelta(days=back)
            if slot > local:
                slot = slot - timedelta(days=7 if self.kind == "weekly" else 1)
        # wall-clock arithmetic, then resolved in the zone (a DST change keeps 08:00)
        return slot.replace(tzinfo=zone).astimezone(UTC)


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
    # immediate (each run) | hourly | daily HH:MM | weekly DAY HH:MM, in the file's
    # timezone; the stories matched in between wait for the next due digest
    schedule: str = "immediate"

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        Schedule.parse(value)
        return value

    @field_validator("mute_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value

    @field_validator("to")
    @classmethod
    def _recipients(cls, recipients: list[str]) -> list[str]:
        """E-mail addresses and Apprise URLs (json://, ntfy://, tgram://, slack://...)."""
        urls = [value for value in recipients if is_channel(value)]
        for url in urls:
            if _channel(url) is None:
                raise ValueError(f"not an Apprise URL it can send to: {_private(url)!r}")
        cls._addresses([v for v in recipients if v not in urls])
        return recipients

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


def is_channel(recipient: str) -> bool:
    """An Apprise URL rather than an e-mail address."""
    return "://" in recipient


def _channel(url: str) -> NotifyBase | None:
    """Apprise's plugin for `url`, None when it cannot send there."""
    import apprise  # start-up cost: Apprise and its plugins load only for a chat channel

    return apprise.Apprise.instantiate(url, suppress_exceptions=True)


def _private(url: str) -> str:
    """The URL with its tokens and passwords hidden, for messages and reports."""
    found = _channel(url)
    return found.url(privacy=True) if found else url.split("://", 1)[0] + "://..."


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
    timezone: str = "UTC"  # of the rules' schedules (an IANA name: Europe/Kyiv)
    # where `dozor serve` is reached: digests then link each story to its UI page
    ui_url: HttpUrl | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as "
                             "Europe/Kyiv or UTC)") from None
        return value

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
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    ui_url: str = ""  # the UI's base URL, no trailing slash (the file's ui_url)
    channel: str = ""  # one Apprise URL of `to`; "": the rule's e-mail addresses

    @property
    def emails(self) -> list[str]:
        return [t for t in self.spec.to if not is_channel(t)]

    def channels(self) -> list[Rule]:
        """The rule once per channel it sends to: its e-mail addresses (one digest to
        all of them) and each Apprise URL, each with a delivery log of its own."""
        urls = [t for t in self.spec.to if is_channel(t)]
        return ([replace(self, channel="")] if self.emails else []) + [
            replace(self, channel=url) for url in urls]

    @property
    def log_key(self) -> str:
        """The rule's name in the delivery log: the name for e-mail (as before Apprise
        channels), the name and a digest of the URL for a channel ('@' is never in a
        rule's name)."""
        if not self.channel:
            return self.name
        return f"{self.name}@{hashlib.sha1(self.channel.encode()).hexdigest()[:12]}"

    @property
    def label(self) -> str:
        """The rule and, for a channel, its URL with secrets hidden, for reports."""
        return f"{self.name} ({_private(self.channel)})" if self.channel else self.name

    @property
    def schedule(self) -> Schedule:
        return Schedule.parse(self.spec.schedule)

    def due(self, now: datetime, since: datetime | None) -> bool:
        """Whether the digest may go at `now`, `since` being when the rule last sent
        one (or, never sent, when its oldest waiting story was queued): a due time of
        its schedule has passed since then."""
        return since is None or self.schedule.last_slot(now, self.zone) > since

    def search_url(self) -> str:
        """The rule's query (with its language and source filters) as a UI search."""
        q = f"({self.spec.query})"
        for name, values in (("lang", self.spec.languages), ("source", self.spec.sources)):
            if values:
                q += f" AND {name}:({' OR '.join(values)})"
        return f"{self.ui_url}/search?q={quote(q)}&sort=newest"

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
    file = load_yaml(path, RulesFile)
    shared = {"zone": ZoneInfo(file.timezone),
              "ui_url": str(file.ui_url).rstrip("/") if file.ui_url else ""}
    rules = []
    for index, spec in enumerate(file.rules):
        unknown = [s for s in spec.sources if sources is not None and s not in sources]
        if unknown:
            raise ConfigError(
                f"{path}: rules[{index}] ({spec.name}) → sources: unknown source "
                f"{unknown[0]!r} (the sources file has {', '.join(sorted(sources or ()))})")
        key = spec.model_dump_json()
        if key in _COMPILED:
            rules.append(replace(_COMPILED[key], **shared))
            continue
        try:
            rule = _COMPILED.setdefault(key, compile_rule(spec))
        except QueryError as exc:
            line = exc.text.splitlines()[exc.line - 1] if exc.text.strip() else ""
            raise ConfigError(
                f"{path}: rules[{index}] ({spec.name}) → query: {exc.reason} "
                f"at line {exc.line}, column {exc.column}\n    {line}\n    "
                + " " * (exc.column - 1) + "^"
            ) from None
        # said once per process, when the rule is compiled
        for warning in rule.query.wildcard_warnings(f"{path}: rules[{index}] ({spec.name})"):
            log.warning("%s", warning)
        rules.append(replace(rule, **shared))
    return rules


def load_health(path: Path | str) -> HealthAlerts | None:
    """The alerts file's `health` section, if it has one."""
    return load_yaml(path, RulesFile).health

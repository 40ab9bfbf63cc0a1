"""What both backends share: the records a store returns, its error, and the
constants and checks both apply (the role protocols are in `pipelines.store.roles`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from pipelines.article import TRANSLATION_STATUSES, Article
from pipelines.errors import DozorError
from pipelines.query import Query
from pipelines.terms.snippets import article_snippet

T = TypeVar("T")

# the fields a translation rewrites (mark_translation); `terms` holds the English ones too
TRANSLATION_FIELDS = (
    "title_en",
    "text_en",
    "translation_status",
    "translation_engine",
    "translation_model",
    "terms",
)
DELIVERY_STATUSES = ("pending", "sending", "sent", "folded")
OPEN_DELIVERY = ("pending", "sending")  # what pending_deliveries returns, what may change
# How far a digest's hand-over got, recorded in its deliveries before each step:
# "connecting" (session, MAIL, RCPT), "data" (DATA sent, the message going out: the
# server cannot have accepted it yet), "end-of-data" (the final dot sent: accepted or
# not, nobody here knows until the reply), "acknowledged" (the server's 250).
STAGES = ("connecting", "data", "end-of-data", "acknowledged")
UNKNOWN_OUTCOME = "end-of-data"  # the stage a digest may be in a mailbox from


class StoreError(DozorError, RuntimeError):
    """A backend could not do what was asked; the message says what and why."""


class DeliveryLogBusy(StoreError):
    """Another process holds the delivery log's lock (DeliveryLock); str() names it."""


class DatabaseUnusable(StoreError):
    """The database itself is broken (corrupt, not a database): nothing more can be
    stored in it, so a run stops here rather than carry on and lose its batches."""


GONE_FIRST_RETRY = 3600.0  # seconds before a 404/410 URL is asked again; doubles each time
GONE_MAX_RETRY = 7 * 86_400.0


def gone_retry(attempts: int) -> float:
    """Seconds before a URL that answered 404/410 `attempts` times is asked again."""
    return min(GONE_MAX_RETRY, GONE_FIRST_RETRY * 2 ** max(0, attempts - 1))


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def check_statuses(articles: Sequence[Article], named_by: str = "canonical_url") -> None:
    """Refuse an article whose translation_status no backend can store."""
    for article in articles:
        if article.translation_status not in TRANSLATION_STATUSES:
            raise StoreError(
                f"article {getattr(article, named_by)}: translation_status "
                f"{article.translation_status!r} is not one of {TRANSLATION_STATUSES}"
            )


def check_offset(offset: int) -> None:
    if offset < 0:
        raise ValueError(f"search offset must be 0 or more, not {offset}")


@dataclass(slots=True)
class SearchHit:
    article: Article
    rank: float  # higher is better; only comparable within one result list
    snippet: str  # text with the matching words wrapped in [ ] (terminal) or <mark> (UI)
    matched_terms: list[str] = field(default_factory=list)  # normalised terms the query hit
    # search(collapse=True): the other articles of its cluster the query matches
    copies: list[Article] = field(default_factory=list)


# the orders a search can take: best first, or by publication date (undated last)
SORTS = ("relevance", "newest", "oldest")
# what a search summary counts its hits by; relevance is relevant, possible or other,
# event each kind of event a revisit recorded (an article counts once per kind it had)
FACETS = ("lang", "source", "relevance", "translation_status", "event")


def check_sort(sort: str) -> None:
    if sort not in SORTS:
        raise StoreError(f"unknown sort {sort!r} (use {', '.join(SORTS)})")


def relevance_of(article: Article) -> str:
    return "relevant" if article.relevant else "possible" if article.possible else "other"


def facet_values(article: Article, name: str) -> list[str]:
    """The values `article` is counted under in facet `name` (of FACETS)."""
    if name == "relevance":
        return [relevance_of(article)]
    if name == "event":
        return list(dict.fromkeys(article.events))
    return [str(getattr(article, name))]


@dataclass(slots=True)
class SearchSummary:
    """How many articles a query matches, in how many stories (clusters of copies), and
    how many articles per value of each facet."""

    total: int
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    stories: int = 0


def story_key(article: Article) -> str:
    """The cluster an article's copies share (dedup names every stored one; an article
    stored without it is a story of its own)."""
    return article.cluster_id or article.id


def as_stories(query: Query, tops: Sequence[SearchHit],
               members: Iterable[Article]) -> list[SearchHit]:
    """`tops` (the best-ranked hit of each cluster, in rank order) as stories: led, as a
    digest leads, by the cluster's founder when the query matches it, else by its
    earliest stored matching member, with the other matching `members` as its copies."""
    by_key: dict[str, list[Article]] = {story_key(hit.article): [] for hit in tops}
    for article in members:
        group = by_key.get(story_key(article))
        if group is not None and all(a.id != article.id for a in group):
            group.append(article)
    out = []
    for hit in tops:
        key = story_key(hit.article)
        group = by_key[key] or [hit.article]
        lead = min(group, key=lambda a: (a.id != key, a.stored_at or a.fetched_at, a.id))
        if lead.id != hit.article.id:
            terms = query.matched_terms(lead)
            hit = SearchHit(lead, hit.rank, article_snippet(lead, terms), terms)
        hit.copies = [a for a in group if a.id != lead.id]
        out.append(hit)
    return out


@dataclass(slots=True)
class StoreStats:
    """Article counts for an overview (the analyst UI's front page)."""

    total: int = 0
    relevant: int = 0
    by_lang: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)
    by_translation: dict[str, int] = field(default_factory=dict)  # translation_status -> n


@dataclass(slots=True)
class WriteResult:
    new: list[str] = field(default_factory=list)  # ids stored for the first time
    updated: list[str] = field(default_factory=list)
    spooled: int = 0  # articles kept on disk for a later retry (backend unreachable)


@dataclass(slots=True)
class DupCandidate:
    """A stored article sharing a content hash or an LSH band key with a new one."""

    id: str
    cluster_id: str
    content_hash: str
    minhash: list[int]  # Article.minhash as stored; empty for short texts
    lsh_bands: list[str] = field(default_factory=list)  # Article.lsh_bands as stored


@dataclass(slots=True)
class Delivery:
    rule: str
    article_id: str
    status: str  # pending | sending | sent | folded
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime | None = None
    sent_at: datetime | None = None
    message_id: str | None = None  # the digest that carries it, set by mark_sending
    folded_into: str | None = None  # status "folded": the article carrying the story
    stage: str = ""  # of STAGES, while and after its digest is handed over
    # an earlier hand-over of its digest (message_id) ended with the outcome unknown: it
    # goes out again with that Message-ID, marked as a possible repeat
    possible_repeat: bool = False


class OneRuleDeliveries:
    """DeliveryLog's one-rule calls as the one-rule case of the many-rule ones, which the
    backend defines: add_many_deliveries and many_cluster_deliveries (a batch of matches
    is recorded in one write)."""

    def add_deliveries(self, rule: str, article_ids: Iterable[str],
                       folded_into: Mapping[str, str] | None = None) -> list[str]:
        return self.add_many_deliveries({rule: list(article_ids)},
                                        {rule: folded_into or {}})[rule]

    def cluster_deliveries(self, rule: str, cluster_ids: Iterable[str]) -> dict[str, str]:
        return self.many_cluster_deliveries({rule: cluster_ids})[rule]

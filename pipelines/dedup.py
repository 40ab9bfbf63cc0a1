"""Duplicates: one record per canonical URL, and copies of a story grouped in a cluster.

An exact copy (same text once whitespace and case are folded) shares a content hash.
A near copy — the same wire story on another site under its own headline, with an
agency line, a "read more" tail, a photo credit or a few words edited — is found with
MinHash over word shingles and LSH banding (datasketch). The band keys are stored with
the article, so each backend finds candidates by key lookup; candidates are then
confirmed from their signatures. Two texts are one story when

* their estimated Jaccard similarity reaches THRESHOLD (the whole text copied), or
* most of the shorter one is contained in the longer (CONTAINMENT, estimated as
  Jaccard x |union| / |shorter| from the signatures' cardinality estimates) and they
  still share MIN_SHARED of their shingles: a copy cut to the first half. A shared
  boilerplate block or quoted statement is a small part of either story and stays
  under both bounds; or
* they have the same headline and the same lead (the first LEAD_WORDS words), or the
  shorter is exactly the opening paragraphs of the longer: a teaser of a story, too
  short for a signature, stored before or after it.

Containment candidates come from a second family of bands tuned for MIN_SHARED, and
headline-and-lead candidates from one more key, both stored with the other band keys.
A cluster is named after its first stored member.

Changing NUM_PERM, SEED, SHINGLE_WORDS, THRESHOLD, MIN_SHARED or LEAD_WORDS changes
signatures or keys: articles stored before would no longer be found as candidates.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np
from datasketch import MinHash, MinHashLSH

from pipelines.article import Article, article_id
from pipelines.store import ArticlesReader, Ingest

NUM_PERM = 128
SEED = 1
# Bumped whenever a change here gives a stored article another signature (content hash,
# MinHash, bands): older records are then stale (pipelines.process.DERIVED_VERSION).
SIGNATURE_VERSION = 1
# Word pairs: each edited word changes only two shingles, so a copy with a few words
# changed stays close (the sample wire copies score 0.79-0.87), while different reports
# of the same event share almost none (0.02).
SHINGLE_WORDS = 2
# Estimated Jaccard similarity of shingle sets from which two texts are one story.
THRESHOLD = 0.7
# Below this many words a text has too few shingles for a reliable estimate; such
# texts are only grouped when identical.
MIN_WORDS = 50

# Bands from datasketch's own optimiser for THRESHOLD, weighting a missed candidate
# 9x a false one: a miss is a copy the analyst reads twice, a false candidate costs one
# signature comparison. With 128 permutations this gives 20 bands of 6 rows: a pair at
# similarity 0.7 becomes a candidate with p=0.92, at 0.8 with p=0.998, at 0.3 with p=0.014.
_BANDS = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, weights=(0.1, 0.9)).hashranges
# Share of the shorter text found in the longer from which a shortened copy is one
# story, and the Jaccard similarity it must still have. Measured on copies built from
# the shared corpus (bench/dedup.py): the first half of a story has containment 0.83-1.0
# and similarity 0.42-0.68; cut, edited, with an agency line, a photo credit and a
# "read more" tail at once 0.6-0.99 and 0.3-0.55; two different stories ending in the
# same boilerplate block or quoting the same paragraph at most 0.51 and 0.16.
CONTAINMENT = 0.6
MIN_SHARED = 0.25
# Candidates for containment: 42 bands of 3 rows (datasketch's optimiser at 0.4) make
# a pair at similarity 0.4 a candidate with p=0.94, at 0.3 with 0.68, at 0.02 with
# 0.0003 (few false candidates in a large store), and a key on the lead alone finds
# the shortened copies that keep the opening below that.
_CONTAINMENT_BANDS = MinHashLSH(threshold=0.4, num_perm=NUM_PERM,
                                weights=(0.1, 0.9)).hashranges
# the hashing scheme `signature` uses: stored values are read back with it
_SCHEME = MinHash(num_perm=NUM_PERM, seed=SEED).scheme
# the permutations datasketch draws from SEED, drawn once rather than per text
_PERMUTATIONS = MinHash(num_perm=NUM_PERM, seed=SEED).permutations
# Words of the text that, with the headline, make the lead a teaser repeats.
LEAD_WORDS = 25
# Words of opening paragraphs a stored teaser may consist of.
OPENING_WORDS = 4 * LEAD_WORDS
_HEADLINE_LEAD_KEY = "hl:"
_LEAD_KEY = "ld:"
_WORD = re.compile(r"\w+")
# a stored signature: as read back (a list), or as an array built once for many comparisons
Signature = Sequence[int] | np.ndarray


@functools.lru_cache(maxsize=16)
def _fold(text: str) -> str:
    # cached: the content hash, the signature and the lead keys each fold the same text
    return unicodedata.normalize("NFC", text).casefold()


def content_hash(text: str) -> str:
    """sha1 of the text with whitespace and case folded; '' for an empty text."""
    folded = " ".join(_fold(text).split())
    return hashlib.sha1(folded.encode("utf-8")).hexdigest() if folded else ""


def signature(text: str) -> MinHash | None:
    """MinHash of the text's word shingles, or None when the text is too short."""
    words = [w.encode("utf-8") for w in _WORD.findall(_fold(text))]
    if len(words) < MIN_WORDS:
        return None
    runs = (words[i:] for i in range(SHINGLE_WORDS))  # shifted copies: zip stops at the last
    shingles = set(map(b" ".join, zip(*runs, strict=False)))
    # datasketch's own hash (sha1_hash32: SHA-1's first four bytes, little-endian),
    # read for all shingles at once instead of one struct.unpack per shingle
    digests = b"".join([hashlib.sha1(shingle).digest()[:4] for shingle in shingles])
    minhash = MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=int, scheme=_SCHEME,
                      permutations=_PERMUTATIONS)
    minhash.update_batch(np.frombuffer(digests, dtype="<u4").tolist())
    return minhash


def band_keys(minhash: MinHash) -> list[str]:
    """One key per LSH band: two texts sharing any key are candidate duplicates."""
    return _keys(minhash, _BANDS, "")


def containment_keys(minhash: MinHash) -> list[str]:
    """One key per containment band (prefixed ``c``): candidates for a shortened copy."""
    return _keys(minhash, _CONTAINMENT_BANDS, "c")


def _keys(minhash: MinHash, bands: list[tuple[int, int]], prefix: str) -> list[str]:
    # fixed byte order: keys computed on one machine are looked up on another
    values = minhash.hashvalues.astype("<u4")
    return [
        f"{prefix}{band:02d}:"
        f"{hashlib.blake2b(values[start:end].tobytes(), digest_size=8).hexdigest()}"
        for band, (start, end) in enumerate(bands)
    ]


def lead_keys(title: str, text: str) -> list[str]:
    """The keys of the headline with the lead, and of the lead alone (a candidate key
    only: many stories open alike); none without a text, no headline key without one."""
    lead = [word.group() for word in islice(_WORD.finditer(_fold(text)), LEAD_WORDS)]
    if not lead:
        return []
    headline = _WORD.findall(_fold(title))
    keys = [_LEAD_KEY + _digest(lead)]
    if headline:
        keys.append(_HEADLINE_LEAD_KEY + _digest([*headline, "|", *lead]))
    return keys


def _digest(words: list[str]) -> str:
    return hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=8).hexdigest()


def similarity(a: Signature, b: Signature) -> float:
    """Estimated Jaccard similarity of two stored signatures."""
    if len(a) != len(b) or not len(a):
        return 0.0
    return float(np.count_nonzero(np.asarray(a) == np.asarray(b))) / len(a)


def containment(a: Signature, b: Signature) -> float:
    """Estimated share of the smaller shingle set found in the larger, from the two
    signatures: Jaccard x |union| / |smaller|, the sizes estimated by datasketch."""
    jaccard = similarity(a, b)
    if not jaccard:
        return 0.0
    first, second = (MinHash(num_perm=NUM_PERM, seed=SEED, hashvalues=v, scheme=_SCHEME)
                     for v in (a, b))
    union = MinHash.union(first, second).count()
    return min(1.0, jaccard * union / max(min(first.count(), second.count()), 1.0))


def same_story(a: Signature, b: Signature) -> float:
    """How surely two signatures are one story (0 when they are not): the Jaccard
    similarity when it reaches THRESHOLD, else the containment of a shortened copy."""
    jaccard = similarity(a, b)
    if jaccard >= THRESHOLD:
        return jaccard
    if jaccard >= MIN_SHARED and containment(a, b) >= CONTAINMENT:
        return jaccard
    return 0.0


@dataclass(slots=True)
class _Member:
    """A known article a new one may copy: stored (candidate) or earlier in the batch."""

    id: str
    cluster_id: str
    content_hash: str
    minhash: np.ndarray  # built once per member, not per comparison
    stored: bool
    lead_key: str = ""


@dataclass(frozen=True, slots=True)
class _Lookup:
    """What a new article is looked up by: its content hash and those of its opening
    paragraphs (a teaser stored before is exactly those), and its band keys with its
    headline-and-lead key."""

    hashes: frozenset[str]
    keys: tuple[str, ...]
    headline_lead: str


def fingerprint(article: Article) -> None:
    """Fill content_hash, minhash and lsh_bands: the part of dedup that reads no store
    (and most of its cost), done where the other stages run. A text with a signature
    also stores its lead keys; a short text keeps no keys, it is found by its content
    hash."""
    article.content_hash = content_hash(article.text)
    minhash = signature(article.text)
    article.minhash = minhash.hashvalues.tolist() if minhash is not None else []
    article.lsh_bands = ([*band_keys(minhash), *containment_keys(minhash),
                          *lead_keys(article.title, article.text)]
                         if minhash is not None else [])


def _fingerprinted(article: Article) -> bool:
    return bool(article.content_hash) and article.content_hash == content_hash(article.text)


def _lookup(article: Article) -> _Lookup:
    """The article's lookup: its fingerprint's keys with its lead keys."""
    keys = lead_keys(article.title, article.text)
    hashes = {article.content_hash} if article.content_hash else set()
    return _Lookup(frozenset(hashes | opening_hashes(article.text)),
                   tuple(dict.fromkeys([*article.lsh_bands, *keys])), _headline_lead(keys))


def opening_hashes(text: str) -> set[str]:
    """Content hashes of the text's opening paragraphs that make a lead: from LEAD_WORDS
    to OPENING_WORDS words, short of the whole text."""
    paragraphs = [p for p in text.split("\n") if p.strip()]
    out = set()
    words = 0
    for n, paragraph in enumerate(paragraphs[:-1]):
        words += len(_WORD.findall(paragraph))
        if words > OPENING_WORDS:
            break
        if words >= LEAD_WORDS:
            out.add(content_hash("\n".join(paragraphs[:n + 1])))
    return out


def _best_match(article: Article, members: list[_Member], lookup: _Lookup) -> _Member | None:
    ranked = []
    own = np.asarray(article.minhash)
    for member in members:
        if member.id == article.id:
            continue  # its own earlier version is not a copy of it
        if member.content_hash and member.content_hash in lookup.hashes:
            score = 1.0  # the same text, or a teaser that is exactly this one's opening
        elif lookup.headline_lead and member.lead_key == lookup.headline_lead:
            score = 1.0
        else:
            score = same_story(own, member.minhash)
        if score > 0:
            # most similar; then a stored cluster over one formed in this batch; then stable
            ranked.append(((-score, not member.stored, member.cluster_id), member))
    return min(ranked, key=lambda item: item[0])[1] if ranked else None


def _forwarded_cluster(article: Article, clusters: dict[str, str],
                       store: ArticlesReader) -> str | None:
    """The cluster of the post a Telegram forward forwards, when Dozor has that post.

    A forward with a comment of its own is no longer the same text, yet it is the story."""
    if not article.forwarded_from:
        return None
    original = article_id(article.forwarded_from)
    if original in clusters:
        return clusters[original]
    stored = store.get(original)
    return (stored.cluster_id or stored.id) if stored is not None else None


def _own_records(articles: list[Article], store: ArticlesReader) -> None:
    """A record belongs to the source that stored it first: another source's copy under
    the same canonical URL gets an id of its own (and is clustered with it below), never
    written over it."""
    owners = {a.id: a.source for a in store.iter_articles({a.id for a in articles})}
    for article in articles:
        if owners.setdefault(article.id, article.source) != article.source:
            article.id = article_id(f"{article.source} {article.canonical_url}")


def dedup(articles: list[Article], store: Ingest) -> list[Article]:
    """Fill content_hash, minhash, lsh_bands and cluster_id; drop repeated canonical URLs.

    The first article of the batch for a canonical URL is kept (its id is the URL's).
    """
    _own_records(articles, store)
    batch: list[Article] = []
    ids: set[str] = set()
    for article in articles:
        if article.id not in ids:
            ids.add(article.id)
            batch.append(article)
    lookups: dict[str, _Lookup] = {}
    for article in batch:
        if not _fingerprinted(article):  # the worker processes fingerprint as they go
            fingerprint(article)
        lookups[article.id] = _lookup(article)

    stored = store.dup_candidates(
        (h for a in batch for h in lookups[a.id].hashes),
        (key for a in batch for key in lookups[a.id].keys),
    )
    # stored candidates and the batch's members alike, by content hash and by key: each
    # article is compared with its own candidates, not with every candidate of the batch
    by_hash: dict[str, list[_Member]] = {}
    by_band: dict[str, list[_Member]] = {}
    for c in stored:
        member = _Member(c.id, c.cluster_id or c.id, c.content_hash, np.asarray(c.minhash), True,
                         _headline_lead(c.lsh_bands))
        if c.content_hash:
            by_hash.setdefault(c.content_hash, []).append(member)
        for key in c.lsh_bands:
            by_band.setdefault(key, []).append(member)

    clusters: dict[str, str] = {}  # id -> cluster of the batch's articles so far
    # forwards last: the post a forward forwards may come later in the same batch
    for article in sorted(batch, key=lambda a: a.forwarded_from is not None):
        lookup = lookups[article.id]
        nearby: dict[int, _Member] = {}
        for h in lookup.hashes:
            nearby.update((id(m), m) for m in by_hash.get(h, []))
        for key in lookup.keys:
            nearby.update((id(m), m) for m in by_band.get(key, []))
        match = _best_match(article, list(nearby.values()), lookup)
        if match:
            article.cluster_id = match.cluster_id
        else:
            article.cluster_id = _forwarded_cluster(article, clusters, store) or article.id
        clusters[article.id] = article.cluster_id

        member = _Member(
            article.id, article.cluster_id, article.content_hash, np.asarray(article.minhash),
            False,
            lookup.headline_lead,
        )
        if article.content_hash:
            by_hash.setdefault(article.content_hash, []).append(member)
        for key in lookup.keys:
            by_band.setdefault(key, []).append(member)
    return batch


def _headline_lead(keys: list[str]) -> str:
    return next((k for k in keys if k.startswith(_HEADLINE_LEAD_KEY)), "")

"""Duplicates: one record per canonical URL, and copies of a story grouped in a cluster.

An exact copy (same text once whitespace and case are folded) shares a content hash.
A near copy — the same wire story on another site under its own headline, with a
boilerplate line or a few words edited — is found with MinHash over word shingles and
LSH banding (datasketch). The band keys are stored with the article, so each backend
finds candidates by key lookup; candidates are then confirmed by their estimated
Jaccard similarity. A cluster is named after its first stored member.

Changing NUM_PERM, SEED, SHINGLE_WORDS or THRESHOLD changes every signature and band
key: articles stored before would no longer be found as candidates.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash, MinHashLSH

from pipelines.article import Article, article_id
from pipelines.store import Ingest

NUM_PERM = 128
SEED = 1
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
_WORD = re.compile(r"\w+")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def content_hash(text: str) -> str:
    """sha1 of the text with whitespace and case folded; '' for an empty text."""
    folded = " ".join(_fold(text).split())
    return hashlib.sha1(folded.encode("utf-8")).hexdigest() if folded else ""


def signature(text: str) -> MinHash | None:
    """MinHash of the text's word shingles, or None when the text is too short."""
    words = _WORD.findall(_fold(text))
    if len(words) < MIN_WORDS:
        return None
    shingles = {
        " ".join(words[i : i + SHINGLE_WORDS]).encode("utf-8")
        for i in range(len(words) - SHINGLE_WORDS + 1)
    }
    minhash = MinHash(num_perm=NUM_PERM, seed=SEED)
    minhash.update_batch(list(shingles))
    return minhash


def band_keys(minhash: MinHash) -> list[str]:
    """One key per LSH band: two texts sharing any key are candidate duplicates."""
    # fixed byte order: keys computed on one machine are looked up on another
    values = minhash.hashvalues.astype("<u4")
    return [
        f"{band:02d}:{hashlib.blake2b(values[start:end].tobytes(), digest_size=8).hexdigest()}"
        for band, (start, end) in enumerate(_BANDS)
    ]


def similarity(a: list[int], b: list[int]) -> float:
    """Estimated Jaccard similarity of two stored signatures."""
    if len(a) != len(b) or not a:
        return 0.0
    return float(np.count_nonzero(np.asarray(a) == np.asarray(b))) / len(a)


@dataclass(slots=True)
class _Member:
    """A known article a new one may copy: stored (candidate) or earlier in the batch."""

    id: str
    cluster_id: str
    content_hash: str
    minhash: list[int]
    stored: bool


def _best_match(article: Article, members: list[_Member]) -> _Member | None:
    ranked = []
    for member in members:
        if member.id == article.id:
            continue  # its own earlier version is not a copy of it
        if article.content_hash and member.content_hash == article.content_hash:
            score = 1.0
        else:
            score = similarity(article.minhash, member.minhash)
        if score >= THRESHOLD:
            # most similar; then a stored cluster over one formed in this batch; then stable
            ranked.append(((-score, not member.stored, member.cluster_id), member))
    return min(ranked, key=lambda item: item[0])[1] if ranked else None


def _forwarded_cluster(article: Article, clusters: dict[str, str], store: Ingest) -> str | None:
    """The cluster of the post a Telegram forward forwards, when Dozor has that post.

    A forward with a comment of its own is no longer the same text, yet it is the story."""
    if not article.forwarded_from:
        return None
    original = article_id(article.forwarded_from)
    if original in clusters:
        return clusters[original]
    stored = store.get(original)
    return (stored.cluster_id or stored.id) if stored is not None else None


def dedup(articles: list[Article], store: Store) -> list[Article]:
    """Fill content_hash, minhash, lsh_bands and cluster_id; drop repeated canonical URLs.

    The first article of the batch for a canonical URL is kept (its id is the URL's).
    """
    batch: list[Article] = []
    ids: set[str] = set()
    for article in articles:
        if article.id not in ids:
            ids.add(article.id)
            batch.append(article)
    for article in batch:
        article.content_hash = content_hash(article.text)
        minhash = signature(article.text)
        article.minhash = minhash.hashvalues.tolist() if minhash is not None else []
        article.lsh_bands = band_keys(minhash) if minhash is not None else []

    stored = store.dup_candidates(
        (a.content_hash for a in batch), (band for a in batch for band in a.lsh_bands)
    )
    by_hash: dict[str, list[_Member]] = {}
    by_band: dict[str, list[_Member]] = {}
    stored_members = [
        _Member(c.id, c.cluster_id or c.id, c.content_hash, c.minhash, True) for c in stored
    ]

    clusters: dict[str, str] = {}  # id -> cluster of the batch's articles so far
    # forwards last: the post a forward forwards may come later in the same batch
    for article in sorted(batch, key=lambda a: a.forwarded_from is not None):
        # stored candidates were looked up for the whole batch: verify each against this
        # article; batch members are narrowed by shared hash or band first
        nearby = {id(m): m for m in by_hash.get(article.content_hash, [])}
        for band in article.lsh_bands:
            nearby.update((id(m), m) for m in by_band.get(band, []))
        match = _best_match(article, stored_members + list(nearby.values()))
        if match:
            article.cluster_id = match.cluster_id
        else:
            article.cluster_id = _forwarded_cluster(article, clusters, store) or article.id
        clusters[article.id] = article.cluster_id

        member = _Member(
            article.id, article.cluster_id, article.content_hash, article.minhash, False
        )
        if article.content_hash:
            by_hash.setdefault(article.content_hash, []).append(member)
        for band in article.lsh_bands:
            by_band.setdefault(band, []).append(member)
    return batch

"""The DuplicateCandidates role on every backend: stored articles by content hash and by
LSH band key, and the dedup stage run across batches against the store."""

from __future__ import annotations

from pipelines import dedup
from pipelines.store import Store
from tests.support.articles import article, corpus


def test_dup_candidates_by_hash_and_band(store: Store) -> None:
    docs = corpus()
    store.write(dedup.dedup(list(docs.values()), store))
    wire = store.get(docs["ru_wire"].id)
    assert len(wire.minhash) == 128 and wire.lsh_bands
    by_hash = store.dup_candidates([wire.content_hash], [])
    assert [c.id for c in by_hash] == [wire.id]
    assert by_hash[0].minhash == wire.minhash
    by_band = store.dup_candidates([], wire.lsh_bands[:1])
    assert wire.id in {c.id for c in by_band}
    # exactly the stored articles holding that band key (here the wire and its copy)
    assert sorted(c.id for c in by_band) == sorted(
        a.id for a in store.iter_articles() if wire.lsh_bands[0] in a.lsh_bands)
    found = {c.id: c for c in by_band}[wire.id]
    assert (found.cluster_id, found.content_hash, found.minhash) == (
        wire.cluster_id, wire.content_hash, wire.minhash)
    assert store.dup_candidates(["0" * 40, ""], ["99:nothing"]) == []
    assert store.dup_candidates(["nothing"], ["nothing"]) == []
    assert store.dup_candidates([], []) == []

    # an update replaces the article's band keys
    short = article(wire.url, wire.title, "Короткий текст.", lang="ru", source=wire.source)
    store.write(dedup.dedup([short], store))
    assert wire.id not in {c.id for c in store.dup_candidates([], wire.lsh_bands)}


def test_syndicated_copy_joins_its_cluster_through_the_store(store: Store) -> None:
    """The dedup stage, run across two batches against this store."""
    docs = corpus()
    store.write(dedup.dedup([docs["ru_wire"]], store))
    copy = dedup.dedup([docs["ru_copy"]], store)[0]
    assert copy.cluster_id == store.get(docs["ru_wire"].id).cluster_id

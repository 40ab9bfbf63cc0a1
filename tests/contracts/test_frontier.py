"""The Frontier role on every backend: an URL counts as seen when its article is stored
or when it was marked seen."""

from __future__ import annotations

from pipelines.store import Store
from tests.support.articles import article


def test_seen_covers_stored_articles_and_marked_urls(store: Store) -> None:
    doc = article("https://example.org/stored", "Т", "текст", lang="ru", source="s")
    store.write([doc])
    store.mark_seen(["https://example.org/off-topic", "https://example.org/off-topic"])
    store.mark_seen(["https://example.org/off-topic"])  # again: harmless
    store.mark_seen([])
    asked = ["https://example.org/stored", "https://example.org/off-topic",
             "https://example.org/new"]
    assert store.seen(asked) == {"https://example.org/stored", "https://example.org/off-topic"}
    assert store.seen([]) == set()

"""No outlet can rewrite another's record: the canonical URL a page declares is trusted
only on its source's domains, and an article one source stored is never overwritten by
another source's copy, which becomes a record of its own in the same cluster. Real
stages (extract, dedup) into a real SQLite file."""

from __future__ import annotations

from pipelines import dedup, extract
from pipelines.article import RawPage, article_id
from pipelines.store.sqlite import SQLiteStore

STORY = ("Convicts recruited from penal colony No. 6 returned home after six months at the "
         "front, their relatives told the regional newspaper on Tuesday. ") * 6


def _page(url: str, source: str, domains: tuple[str, ...], title: str, text: str,
          canonical: str | None = None) -> RawPage:
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    body = (f"<html lang='en'><head><title>{title}</title>{link}</head><body><article>"
            f"<h1>{title}</h1><p>{text}</p></article></body></html>").encode()
    return RawPage(url=url, final_url=url, status=200,
                   headers={"content-type": "text/html; charset=utf-8"}, body=body,
                   source=source, source_domains=domains)


def _store(store: SQLiteStore, pages: list[RawPage]) -> list[str]:
    return store.write(dedup.dedup(extract.extract(pages), store)).new


HERALD = "https://www.herald.example/world/convicts-return.html"


def _herald(store: SQLiteStore) -> None:
    _store(store, [_page(HERALD, "herald", ("herald.example",), "Convicts return", STORY)])


def test_a_canonical_on_another_outlet_is_not_trusted(store: SQLiteStore) -> None:
    _herald(store)
    rival = "https://rival.example/2026/copy.html"
    new = _store(store, [_page(rival, "rival", ("rival.example",), "Hijacked",
                               "Something else entirely. " * 20, canonical=HERALD)])
    original = store.get(article_id(HERALD))
    assert original is not None
    assert (original.source, original.title, original.url) == \
        ("herald", "Convicts return", HERALD)
    assert new == [article_id(rival)]
    copy = store.get(article_id(rival))
    assert copy is not None and copy.canonical_url == rival and copy.source == "rival"


def test_another_source_sharing_the_domain_gets_its_own_record_in_the_cluster(
        store: SQLiteStore) -> None:
    """A source whose scope includes herald.example (an aggregator with allowed_domains)
    fetches the same story: the canonical is in its scope, yet herald's record stays."""
    _herald(store)
    page = "https://wire.example/item/77"
    new = _store(store, [_page(page, "wire", ("wire.example", "herald.example"),
                               "Wire: convicts return", STORY, canonical=HERALD)])
    original = store.get(article_id(HERALD))
    assert original is not None and original.source == "herald"
    assert original.title == "Convicts return"
    assert len(new) == 1 and new[0] != article_id(HERALD)
    copy = store.get(new[0])
    assert copy is not None and copy.source == "wire" and copy.canonical_url == HERALD
    assert copy.cluster_id == original.cluster_id == original.id
    # the same copy fetched again is the same record, not a third one
    again = _store(store, [_page(page, "wire", ("wire.example", "herald.example"),
                                 "Wire: convicts return", STORY, canonical=HERALD)])
    assert again == [] and store.count() == 2


def test_two_sources_in_one_batch_both_keep_their_copy(store: SQLiteStore) -> None:
    pages = [_page(HERALD, "herald", ("herald.example",), "Convicts return", STORY),
             _page("https://wire.example/item/78", "wire", ("wire.example", "herald.example"),
                   "Wire copy", STORY, canonical=HERALD)]
    new = _store(store, pages)
    assert len(new) == 2 and new[0] == article_id(HERALD)
    assert sorted(a.source for a in store.iter_articles(new)) == ["herald", "wire"]

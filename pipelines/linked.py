"""Telegram posts judged on the web articles they link to (a source's `follow_links`).

A post that only links to a story says too little to be judged on its own. The crawl
fetches each linked article once, as an article of the post's source, after the post:
the post's RawPage lists the articles it follows (`follows`), the article's RawPage the
posts linking to it (`linked_from`). A post not relevant on its own text takes the
relevance of a relevant article it links to, found in the same batch, already stored,
or judged in a later batch of the crawl (the stored post is then written again with
that batch), and records that article's canonical URL as the reason (`relevant_via`).
A post whose links are fetched is kept whatever its source's `keep: relevant` says: it
may be stored before its articles are judged, so whatever order the pages arrive in it
is never lost, and one whose articles are off topic stays, not relevant.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.article import Article, RawPage, article_id
from pipelines.store import ArticlesReader
from pipelines.telegram import followed_articles

REASON = "via linked article"  # how the UI and the docs name `relevant_via`


def take_relevance(post: Article, linked: Article) -> None:
    post.relevant, post.possible = True, False
    post.score = max(post.score, linked.score)
    post.matched_terms = list(dict.fromkeys([*post.matched_terms, *linked.matched_terms]))
    post.relevant_via = linked.canonical_url


def judge_posts(articles: Sequence[Article], pages: Sequence[RawPage],
                store: ArticlesReader) -> tuple[set[str], list[Article]]:
    """Posts of `articles` made relevant by the articles they link to; returns the ids
    of the posts whose links are fetched (kept whatever their verdict), and the stored
    posts this batch's articles make relevant (to be written with the batch)."""
    by_url: dict[str, Article] = {}
    for article in articles:
        by_url.setdefault(article.url, article)
        by_url.setdefault(article.canonical_url, article)
    posts = [a for a in articles if a.channel and not a.relevant and a.links]
    links = {post.id: followed_articles(post.links) for post in posts}
    wanted = {url for urls in links.values() for url in urls} - set(by_url)
    stored = ({a.canonical_url: a for a in store.iter_articles([article_id(u) for u in wanted])}
              if wanted else {})
    following = {page.url for page in pages if page.follows}
    kept: set[str] = set()
    for post in posts:
        judged = [by_url.get(url) or stored.get(url) for url in links[post.id]]
        lead = next((a for a in judged if a is not None and a.relevant), None)
        if lead is not None:
            take_relevance(post, lead)
        elif post.url in following:
            kept.add(post.id)
    in_batch = {a.id for a in articles}
    deciding: dict[str, Article] = {}
    for page in pages:
        lead = by_url.get(page.url)
        if page.linked_from and lead is not None and lead.relevant:
            for url in page.linked_from:
                if article_id(url) not in in_batch:
                    deciding.setdefault(article_id(url), lead)
    decided = []
    for post in store.iter_articles(list(deciding)) if deciding else ():
        if not post.relevant:
            take_relevance(post, deciding[post.id])
            decided.append(post)
    return kept, decided

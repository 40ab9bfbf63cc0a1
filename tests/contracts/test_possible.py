"""The topic's "possibly relevant" tier on every backend: classified, stored, read back
and searched (``possible:true``) the same way."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines import dedup
from pipelines.relevance import classify, load_topic
from pipelines.store import Store
from tests.support.articles import article, search

# written for the tests: one story the rules are sure of, one they nearly missed, one
# they have nothing to say about
SURE = ("Заключённых колонии отправили на фронт",
        "Заключённых исправительной колонии отправили на фронт по контракту.")
NEARLY = ("Бойцы «Шторм-Z» на передовой", "Отряды «Шторм-Z» держат оборону у реки.")
NOTHING = ("Погода на выходные", "В субботу ожидается снег и гололедица.")


def test_possible_tier_is_stored_and_searched(store: Store, tmp_path: Path) -> None:
    topic = tmp_path / "topic.yaml"
    topic.write_text(json.dumps({
        "name": "t", "threshold": 1.0, "possible_threshold": 0.5,
        "rules": [{"name": "sure", "weight": 1.0, "query": "заключенный AND фронт"},
                  {"name": "hint", "weight": 0.5, "query": "Шторм-Z"}]},
        ensure_ascii=False), encoding="utf-8")
    docs = [article(f"https://t.example/{n}", title, text, lang="ru", source="t")
            for n, (title, text) in enumerate((SURE, NEARLY, NOTHING))]
    classified = classify(docs, load_topic(topic))
    assert [(a.relevant, a.possible) for a in classified] == [
        (True, False), (False, True), (False, False)]
    store.write(dedup.dedup(classified, store))

    back = {a.id: a for a in store.iter_articles([a.id for a in docs])}
    assert [(back[a.id].relevant, back[a.id].possible) for a in docs] == [
        (True, False), (False, True), (False, False)]
    assert [h.article.id for h in search(store, "possible:true")] == [docs[1].id]
    assert {h.article.id for h in search(store, "relevant:true OR possible:true")} == {
        docs[0].id, docs[1].id}

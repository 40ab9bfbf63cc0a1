"""An alert rule with `possible: true` also mails the topic's possibly relevant stories,
in a section of the digest of their own; a rule without it never sees them."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

from pipelines.alert import load_rules
from pipelines.alert.digest import build_digest, render
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import rules_file, store_articles
from tests.support.articles import article

NOW = datetime(2026, 5, 12, 10, 0, tzinfo=UTC)
SENDER = "Dozor Alerts <alerts@dozor.example>"
RULES = """\
    rules:
      - name: with-possible
        query: 'relevant:true'
        to: [desk@example.org]
        languages: [ru]
        possible: true
      - name: sure-only
        query: 'relevant:true'
        to: [desk@example.org]
"""


def test_possible_stories_come_in_their_own_section(tmp_path: Path,
                                                    store: SQLiteStore) -> None:
    sure = article("https://t.example/sure", "Заключённых отправили на фронт",
                   "Заключённых колонии отправили на фронт по контракту.", lang="ru",
                   source="t", relevant=True, score=0.5, matched_terms=["заключенный"])
    nearly = article("https://t.example/nearly", "Отряды «Шторм-Z» держат оборону",
                     "Отряды «Шторм-Z» держат оборону у реки.", lang="ru", source="t",
                     possible=True, score=0.3333, matched_terms=["Шторм-Z"])
    nearly_en = article("https://t.example/nearly-en", "Storm-Z units hold the line",
                        "Storm-Z detachments dug in near the river.", lang="en", source="t",
                        possible=True, score=0.3333, matched_terms=["Storm-Z"])
    other = article("https://t.example/other", "Погода", "Снег и гололедица.", lang="ru",
                    source="t")
    store_articles(store, [sure, nearly, nearly_en, other])
    with_possible, sure_only = load_rules(rules_file(tmp_path, RULES))
    stored = [store.get(a.id) for a in (sure, nearly, nearly_en, other)]
    assert [with_possible.matches(a) for a in stored] == [True, True, False, False]
    assert [sure_only.matches(a) for a in stored] == [True, False, False, False]

    digest = build_digest(with_possible, [a for a in stored if with_possible.matches(a)])
    assert digest is not None and len(digest.stories) == 2
    message = message_from_bytes(render(digest, SENDER, NOW).as_bytes(), policy=default_policy)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "2 new stories" in text and "2 new stories" in html
    head, section = text.split("Possibly relevant: under the topic's threshold", 1)
    assert "Заключённых отправили на фронт" in head and "Шторм-Z" not in head
    assert "2. Отряды «Шторм-Z» держат оборону" in section
    sure_at, possible_at = html.index("Заключённых отправили"), html.index("Possibly relevant")
    assert sure_at < possible_at < html.index("Отряды «Шторм-Z»")

    # a digest with nothing possible has no such section
    alone = build_digest(sure_only, [stored[0]])
    assert alone is not None
    assert "Possibly relevant" not in render(alone, SENDER, NOW).as_string()

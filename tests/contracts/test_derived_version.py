"""Every backend keeps the version of the code that made an article's derived data
(terms, dedup signature), so `dozor reprocess --stale` can find what older code made."""

from __future__ import annotations

from dataclasses import replace

from pipelines import dedup
from pipelines.process import DERIVED_VERSION, stale_records
from pipelines.store import Store
from tests.support.articles import article


def test_derived_version_is_kept_and_stale_records_are_found(store: Store) -> None:
    current = article("https://t.example/current", "Суд и приговор", "Вчера суд вынес приговор.",
                      lang="ru", source="t")
    older = article("https://t.example/older", "Колония", "Заключённые колонии.",
                    lang="ru", source="t")
    current = replace(current, derived_version=DERIVED_VERSION, warc_record_id="<urn:a>")
    older = replace(older, derived_version="terms-0.dedup-0", warc_record_id="<urn:b>")
    store.write(dedup.dedup([current, older], store))
    back = {a.id: a.derived_version for a in store.iter_articles([current.id, older.id])}
    assert back == {current.id: DERIVED_VERSION, older.id: "terms-0.dedup-0"}
    assert stale_records(store) == {"<urn:b>"}

"""The analysts' labels (the labels index, one document per labelled article)."""

from __future__ import annotations

from collections.abc import Iterable

from index_config import labels_index
from index_config.install import ensure_index
from pipelines.article import utcnow
from pipelines.store.base import StoreError, chunks
from pipelines.store.elastic.connection import item_error
from pipelines.store.elastic.core import PAGE, ElasticCore


class ElasticLabels(ElasticCore):
    """The Labels role."""

    _labels_ready = False

    def _labels_index(self) -> str:
        # a cluster set up before labels has no such index yet
        if not self._labels_ready:
            ensure_index(self.client, self.names.labels, labels_index())
            self._labels_ready = True
        return self.names.labels

    def set_label(self, article_id: str, relevant: bool | None) -> None:
        with self._contact("record a label"):
            index = self._labels_index()
            if relevant is None:
                action = {"_op_type": "delete", "_index": index, "_id": article_id}
            else:
                action = {"_op_type": "index", "_index": index, "_id": article_id,
                          "_source": {"article_id": article_id, "relevant": relevant,
                                      "labelled_at": utcnow().isoformat()}}
            # clearing a label never set is no error
            errors = self._bulk_errors([action], tolerated=404)
        if errors:
            raise StoreError(f"cannot record a label on {self.url}: {item_error(errors[0])}")

    def labels(self, ids: Iterable[str] | None = None) -> dict[str, bool]:
        found: dict[str, bool] = {}
        with self._contact("read labels"):
            index = self._labels_index()
            queries = ([{"terms": {"article_id": list(c)}} for c in chunks(list(ids), PAGE)]
                       if ids is not None else [{"match_all": {}}])
            for query in queries:
                for hit in self._search_all(index, query, [{"article_id": "asc"}]):
                    found[hit["_source"]["article_id"]] = hit["_source"]["relevant"]
        return found

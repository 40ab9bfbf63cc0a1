"""Elasticsearch index configuration and Kibana saved objects, kept as files.

`elasticsearch/*.json` are the bodies `dozor setup` sends (component templates, index
templates, the ILM policy, the side indices); `kibana/saved_objects.ndjson` is the
saved-objects import file. This module names the indices for an index prefix and
fills in the parts of the bodies that depend on it. See README.md here for the choices.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ES_DIR = HERE / "elasticsearch"
KIBANA_OBJECTS = HERE / "kibana" / "saved_objects.ndjson"
DEFAULT_PREFIX = "dozor"
# The data view's id in the saved objects file: every other object refers to it.
DATA_VIEW_ID = "dozor-articles"

UKRAINIAN_PLUGIN = "analysis-ukrainian"
# With the plugin, Lucene's Morfologik-based Ukrainian analyzer (stemming, stop words).
UKRAINIAN_ANALYZER = {"type": "ukrainian"}


@cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((ES_DIR / name).read_text(encoding="utf-8"))


def load(name: str) -> dict[str, Any]:
    """A fresh copy of one body from elasticsearch/ (callers may modify it)."""
    return copy.deepcopy(_load(name))


def checksum(body: Any) -> str:
    """A short digest of a body, stored in its `_meta` so setup can tell what changed."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class IndexNames:
    """Every name Dozor uses in a cluster, derived from one prefix."""

    prefix: str = DEFAULT_PREFIX

    @property
    def articles(self) -> str:
        """The alias: reads cover every dated index, writes go to the current one."""
        return f"{self.prefix}-articles"

    @property
    def articles_pattern(self) -> str:
        return f"{self.prefix}-articles-*"

    @property
    def articles_bootstrap(self) -> str:
        # date math: the first index is named for the day it was created; ILM keeps the
        # date current in the indices it rolls over to
        return f"<{self.prefix}-articles-{{now/d}}-000001>"

    @property
    def rules(self) -> str:
        return f"{self.prefix}-rules"

    @property
    def deliveries(self) -> str:
        return f"{self.prefix}-deliveries"

    @property
    def seen(self) -> str:
        return f"{self.prefix}-seen"

    @property
    def health(self) -> str:
        return f"{self.prefix}-health"

    @property
    def labels(self) -> str:
        return f"{self.prefix}-labels"

    @property
    def versions(self) -> str:
        return f"{self.prefix}-versions"

    @property
    def events(self) -> str:
        return f"{self.prefix}-events"

    @property
    def revisits(self) -> str:
        return f"{self.prefix}-revisits"

    @property
    def article_component(self) -> str:
        return f"{self.prefix}-article"

    @property
    def rule_component(self) -> str:
        return f"{self.prefix}-rule"

    @property
    def articles_template(self) -> str:
        return f"{self.prefix}-articles"

    @property
    def rules_template(self) -> str:
        return f"{self.prefix}-rules"

    @property
    def ilm_policy(self) -> str:
        return f"{self.prefix}-articles"


def article_component(ukrainian_plugin: bool) -> dict[str, Any]:
    """Analysis settings and article mappings in ONE component template: Elasticsearch
    validates a component template on its own, so mappings that name custom analyzers
    must travel with the settings that define them."""
    analysis = load("analysis.json")
    fields = load("article-fields.json")
    analyzers = analysis["template"]["settings"]["analysis"]["analyzer"]
    if ukrainian_plugin:
        analyzers["dozor_uk"] = dict(UKRAINIAN_ANALYZER)
    return {
        "_meta": {
            "description": analysis["_meta"]["description"] + " "
            + fields["_meta"]["description"],
        },
        "template": {
            "settings": analysis["template"]["settings"],
            "mappings": fields["template"]["mappings"],
        },
    }


def uses_ukrainian_plugin(component: dict[str, Any]) -> bool:
    analyzer = component["template"]["settings"]["analysis"]["analyzer"]["dozor_uk"]
    return analyzer.get("type") == UKRAINIAN_ANALYZER["type"]


def rule_component() -> dict[str, Any]:
    return load("rule-fields.json")


def article_properties() -> dict[str, Any]:
    return _load("article-fields.json")["template"]["mappings"]["properties"]


def articles_template(names: IndexNames) -> dict[str, Any]:
    body = load("articles-template.json")
    body["index_patterns"] = [names.articles_pattern]
    body["composed_of"] = [names.article_component]
    body["template"]["settings"]["index"]["lifecycle"] = {
        "name": names.ilm_policy,
        "rollover_alias": names.articles,
    }
    return body


def rules_template(names: IndexNames) -> dict[str, Any]:
    return {
        "_meta": {"description": "The percolator index holding the alert rules."},
        "index_patterns": [names.rules],
        "composed_of": [names.article_component, names.rule_component],
        "priority": 200,
    }


def ilm_policy() -> dict[str, Any]:
    return load("articles-ilm.json")


def deliveries_index() -> dict[str, Any]:
    return load("deliveries.json")


def seen_index() -> dict[str, Any]:
    return load("seen.json")


def health_index() -> dict[str, Any]:
    return load("health.json")


def labels_index() -> dict[str, Any]:
    return load("labels.json")


def history_indices(names: IndexNames) -> dict[str, dict[str, Any]]:
    """The revisits' side indices (pipelines.store.elastic.history), by name."""
    return {names.versions: load("versions.json"), names.events: load("events.json"),
            names.revisits: load("revisits.json")}


def kibana_id(names: IndexNames, file_id: str) -> str:
    """A saved object's id for this prefix: the file's ids start with the default prefix,
    which is replaced, so deployments with different prefixes never overwrite each
    other's objects in one Kibana (the default prefix keeps the file's ids)."""
    return names.prefix + file_id.removeprefix(DEFAULT_PREFIX)


def kibana_objects(names: IndexNames | None = None) -> list[dict[str, Any]]:
    """The saved objects for this prefix: ids and references derived from it, the data
    view on its articles alias, titles naming a prefix other than the default."""
    names = names or IndexNames()
    objects = [
        json.loads(line)
        for line in KIBANA_OBJECTS.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    for obj in objects:
        obj["id"] = kibana_id(names, obj["id"])
        for ref in obj["references"]:
            ref["id"] = kibana_id(names, ref["id"])
        attributes = obj["attributes"]
        if obj["type"] == "index-pattern":
            attributes["title"] = names.articles
            if names.prefix != DEFAULT_PREFIX:
                attributes["name"] = f"{attributes['name']} ({names.prefix})"
        elif names.prefix != DEFAULT_PREFIX:
            attributes["title"] = f"{attributes['title']} ({names.prefix})"
    return objects


def kibana_ndjson(names: IndexNames | None = None) -> bytes:
    lines = (json.dumps(obj, ensure_ascii=False) for obj in kibana_objects(names))
    return ("\n".join(lines) + "\n").encode("utf-8")

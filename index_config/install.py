"""Apply the index configuration to a cluster and the saved objects to Kibana.

Every step is idempotent and says what it did. Templates and the ILM policy carry a
checksum of their body in `_meta`; a body whose checksum is already there is left
alone ("unchanged"), so a second `dozor setup` changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from elasticsearch import ApiError, Elasticsearch, NotFoundError

import index_config as cfg
from index_config import IndexNames
from pipelines.errors import DozorError

log = logging.getLogger(__name__)


class SetupError(DozorError, RuntimeError):
    """The cluster or Kibana refused part of the set-up; the message says what."""


@dataclass(frozen=True)
class Change:
    kind: str  # what sort of thing: "component template", "index", ...
    name: str
    action: str  # created | updated | unchanged | recreated | imported
    detail: str = ""


def ukrainian_plugin_installed(es: Elasticsearch) -> bool:
    """True when every node has analysis-ukrainian (an index may live on any node)."""
    nodes = es.nodes.info(metric="plugins")["nodes"]
    return bool(nodes) and all(
        any(p.get("name") == cfg.UKRAINIAN_PLUGIN for p in node.get("plugins", []))
        for node in nodes.values()
    )


def _with_checksum(body: dict[str, Any], meta_at: list[str]) -> tuple[dict[str, Any], str]:
    """The body with `_meta.checksum` set (at the path `meta_at`), and the checksum."""
    digest = cfg.checksum(body)
    node = body
    for key in meta_at:
        node = node.setdefault(key, {})
    node.setdefault("_meta", {})["checksum"] = digest
    return body, digest


def _action(existing: Any) -> str:
    return "updated" if existing is not None else "created"


def _put_unless_current(kind: str, name: str, body: dict[str, Any], meta_at: list[str],
                        get: Callable[[], dict[str, Any]],
                        put: Callable[[dict[str, Any]], object]) -> Change:
    """Put `body` unless what `get` finds already carries its checksum."""
    body, digest = _with_checksum(body, meta_at)
    try:
        existing = get()
    except NotFoundError:
        existing = None
    if existing and existing.get("_meta", {}).get("checksum") == digest:
        return Change(kind, name, "unchanged")
    put(body)
    return Change(kind, name, _action(existing))


def put_component_template(es: Elasticsearch, name: str, body: dict[str, Any]) -> Change:
    return _put_unless_current(
        "component template", name, body, [],
        get=lambda: es.cluster.get_component_template(name=name)["component_templates"][0][
            "component_template"
        ],
        put=lambda b: es.cluster.put_component_template(name=name, body=b))


def put_index_template(es: Elasticsearch, name: str, body: dict[str, Any]) -> Change:
    return _put_unless_current(
        "index template", name, body, [],
        get=lambda: es.indices.get_index_template(name=name)["index_templates"][0][
            "index_template"
        ],
        put=lambda b: es.indices.put_index_template(name=name, body=b))


def put_ilm_policy(es: Elasticsearch, name: str, body: dict[str, Any]) -> Change:
    return _put_unless_current(
        "ILM policy", name, body, ["policy"],
        get=lambda: es.ilm.get_lifecycle(name=name)[name]["policy"],
        put=lambda b: es.ilm.put_lifecycle(name=name, body=b))


def bootstrap_articles(es: Elasticsearch, names: IndexNames, analysis_changed: bool) -> Change:
    """The first dated index behind the write alias, unless the alias already exists;
    then fields added to the configuration since are added to its indices."""
    alias = names.articles
    if es.indices.exists_alias(name=alias):
        indices = sorted(es.indices.get_alias(name=alias))
        detail = f"{len(indices)} index(es): {', '.join(indices)}"
        added = _add_fields(es, alias, cfg.article_properties())
        if added:
            detail += "; fields added: " + ", ".join(added)
        if analysis_changed:
            detail += (
                "; the analyzers changed: existing indices keep theirs, the next "
                f"rollover (POST {alias}/_rollover) uses the new ones"
            )
        return Change("write alias", alias, "updated" if added else "unchanged", detail)
    if es.indices.exists(index=alias):
        raise SetupError(
            f"an index named {alias!r} exists where the write alias belongs (written "
            "before set-up, without the template); reindex it into the alias or delete it, "
            "then run `dozor setup` again"
        )
    created = es.indices.create(
        index=names.articles_bootstrap, aliases={alias: {"is_write_index": True}}
    )
    return Change("write alias", alias, "created", f"write index {created['index']}")


def _missing_fields(es: Elasticsearch, target: str,
                    properties: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per index behind `target`, the fields of `properties` its mapping lacks. Reading
    mappings needs only `view_index_metadata` on Dozor's indices."""
    out = {}
    for index, body in sorted(es.indices.get_mapping(index=target).items()):
        have = body["mappings"].get("properties", {})
        missing = {name: spec for name, spec in properties.items() if name not in have}
        if missing:
            out[index] = missing
    return out


def _add_fields(es: Elasticsearch, target: str, properties: dict[str, Any]) -> list[str]:
    """Add the fields of `properties` that the indices behind `target` lack; returns
    their names. Fields that exist keep their mapping: Elasticsearch cannot change one
    in place, and the configuration only ever adds fields to these indices."""
    return _put_fields(es, _missing_fields(es, target, properties))


def _put_fields(es: Elasticsearch, missing: dict[str, dict[str, Any]]) -> list[str]:
    added: dict[str, None] = {}
    for index, fields in missing.items():
        es.indices.put_mapping(index=index, properties=fields)
        added.update(dict.fromkeys(fields))
    return list(added)


# What PUT _component_template accepts; GET also answers created/modified dates (9.2+)
# and may grow more read-only fields, which a PUT of the object as read is refused for.
COMPONENT_PUT_FIELDS = ("template", "version", "_meta", "deprecated")
COMPONENT_TEMPLATE_PUT_FIELDS = ("settings", "mappings", "aliases")


def component_put_body(found: dict[str, Any]) -> dict[str, Any]:
    """A component template as GET returns it, reduced to what a PUT may send back."""
    body = {key: found[key] for key in COMPONENT_PUT_FIELDS if key in found}
    body["template"] = {key: value for key, value in found.get("template", {}).items()
                        if key in COMPONENT_TEMPLATE_PUT_FIELDS}
    return body


def add_missing_fields(es: Elasticsearch, names: IndexNames) -> list[Change]:
    """Bring a cluster set up by an older Dozor up to the fields this one writes and
    queries (run by the store at its first contact, so that it works before the next
    `dozor setup`): the article component template (indices created by later rollovers),
    every articles index, the delivery log. Only missing fields are added; analyzers
    and everything else wait for `dozor setup`.

    The indices' mappings are read first and, when nothing is missing (any cluster set
    up by this Dozor), nothing else is asked: a runtime account with only read, write
    and view_index_metadata on Dozor's indices never needs the template privileges."""
    article_fields = cfg.article_properties()
    delivery_fields = cfg.deliveries_index()["mappings"]["properties"]
    seen_fields = cfg.seen_index()["mappings"]["properties"]
    missing = {target: _missing_fields(es, target, properties)
               for target, properties in ((names.articles, article_fields),
                                          (names.deliveries, delivery_fields),
                                          (names.seen, seen_fields))}
    if not any(missing.values()):
        return []
    changes = []
    try:
        found = es.cluster.get_component_template(name=names.article_component)
        component = found["component_templates"][0]["component_template"]
    except NotFoundError:
        component = None
    if component is not None:
        body = component_put_body(component)
        mappings = body["template"].setdefault("mappings", {})
        have = mappings.setdefault("properties", {})
        absent = [name for name in article_fields if name not in have]
        if absent:
            # its _meta checksum stays the old one: `dozor setup` still brings the rest
            have.update({name: article_fields[name] for name in absent})
            es.cluster.put_component_template(name=names.article_component, body=body)
            changes.append(Change("component template", names.article_component, "updated",
                                  "fields added: " + ", ".join(absent)))
    for target, fields in missing.items():
        added = _put_fields(es, fields)
        if added:
            changes.append(Change("index", target, "updated",
                                  "fields added: " + ", ".join(added)))
    return changes


def _mapping_meta(es: Elasticsearch, index: str) -> dict[str, Any]:
    mapping = es.indices.get_mapping(index=index)
    return next(iter(mapping.values()))["mappings"].get("_meta", {})


def ensure_index(es: Elasticsearch, name: str, body: dict[str, Any]) -> Change:
    """A side index (deliveries, seen): created, or its mapping brought up to date."""
    body, digest = _with_checksum(body, ["mappings"])
    if not es.indices.exists(index=name):
        es.indices.create(index=name, body=body)
        return Change("index", name, "created")
    if _mapping_meta(es, name).get("checksum") == digest:
        return Change("index", name, "unchanged")
    try:
        es.indices.put_mapping(index=name, body=body["mappings"])
    except ApiError as exc:
        raise SetupError(f"cannot update the mapping of {name}: {api_reason(exc)}") from exc
    return Change("index", name, "updated", "mapping")


def ensure_rules_index(es: Elasticsearch, names: IndexNames, config_digest: str) -> Change:
    """The percolator index. It only holds rules, registered again from the alerts file
    on every alert run, so when the analyzers or fields change it is simply recreated."""
    name = names.rules
    body = {"mappings": {"_meta": {"checksum": config_digest}}}
    if es.indices.exists(index=name):
        if _mapping_meta(es, name).get("checksum") == config_digest:
            return Change("percolator index", name, "unchanged")
        es.indices.delete(index=name)
        es.indices.create(index=name, body=body)
        return Change("percolator index", name, "recreated",
                      "rules are registered again at the next alert run")
    es.indices.create(index=name, body=body)
    return Change("percolator index", name, "created")


def install_elasticsearch(
    es: Elasticsearch, names: IndexNames | None = None, ukrainian: bool | None = None
) -> list[Change]:
    """Templates, ILM policy, write alias, percolator and side indices, in that order.

    `ukrainian` None detects the analysis-ukrainian plugin; without it the documented
    fallback analyzer is used (see README.md here).
    """
    names = names or IndexNames()
    try:
        if ukrainian is None:
            ukrainian = ukrainian_plugin_installed(es)
        article = cfg.article_component(ukrainian)
        rule = cfg.rule_component()
        config_digest = cfg.checksum([article, rule])
        changes = [
            put_component_template(es, names.article_component, article),
            put_component_template(es, names.rule_component, rule),
            put_ilm_policy(es, names.ilm_policy, cfg.ilm_policy()),
            put_index_template(es, names.articles_template, cfg.articles_template(names)),
            put_index_template(es, names.rules_template, cfg.rules_template(names)),
        ]
        analysis_changed = changes[0].action == "updated"
        changes += [
            bootstrap_articles(es, names, analysis_changed),
            ensure_rules_index(es, names, config_digest),
            ensure_index(es, names.deliveries, cfg.deliveries_index()),
            ensure_index(es, names.seen, cfg.seen_index()),
            ensure_index(es, names.health, cfg.health_index()),
            ensure_index(es, names.labels, cfg.labels_index()),
            *(ensure_index(es, name, body)
              for name, body in cfg.history_indices(names).items()),
        ]
    except ApiError as exc:
        raise SetupError(f"Elasticsearch refused the set-up: {api_reason(exc)}") from exc
    kind = "analysis-ukrainian plugin" if ukrainian else "fallback (plugin not installed)"
    changes[0] = Change(changes[0].kind, changes[0].name, changes[0].action,
                        f"Ukrainian analyzer: {kind}")
    return changes


# Elasticsearch 8.x answers every request of the 9.x client so (it knows compatibility
# with 7 and 8 only): Dozor needs 9.x, and says so instead of the header error.
OLD_SERVER = ("the server is Elasticsearch 8.x or older, which refuses the requests of the "
              "9.x client (compatible-with=9): Dozor needs Elasticsearch 9.0 or later")


def api_reason(exc: ApiError) -> str:
    """An Elasticsearch error answer in one line: status, root cause type and reason."""
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error", {})
    if isinstance(error, dict):
        root = (error.get("root_cause") or [error])[0]
        if root.get("type") == "media_type_header_exception" and "found 9" in str(
                error.get("caused_by", {}).get("reason", "")):
            return f"{exc.status_code} {OLD_SERVER}"
        return f"{exc.status_code} {root.get('type', '')}: {root.get('reason', exc.message)}"
    return f"{exc.status_code} {exc.message}"


# --------------------------------------------------------------------------- Kibana


def import_kibana(
    kibana_url: str,
    names: IndexNames | None = None,
    headers: dict[str, str] | None = None,
    ca_certs: str | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 1.0,
) -> Change:
    """Import the saved objects through Kibana's `_import` API, overwriting Dozor's own
    objects (same ids) so that repeating it is harmless."""
    names = names or IndexNames()
    body, content_type = urllib3.encode_multipart_formdata(
        {"file": ("dozor.ndjson", cfg.kibana_ndjson(names), "application/ndjson")}
    )
    http = urllib3.PoolManager(
        ca_certs=ca_certs,
        timeout=urllib3.Timeout(total=timeout),
        # Kibana answers 503 while it starts
        retries=urllib3.Retry(total=retries, backoff_factor=backoff,
                              status_forcelist=(502, 503, 504), allowed_methods=None),
    )
    url = kibana_url.rstrip("/") + "/api/saved_objects/_import?overwrite=true"
    try:
        response = http.request(
            "POST", url, body=body,
            headers={**(headers or {}), "kbn-xsrf": "true", "Content-Type": content_type},
        )
    except urllib3.exceptions.HTTPError as exc:
        raise SetupError(f"cannot reach Kibana at {kibana_url}: {exc}") from exc
    try:
        answer = json.loads(response.data or b"{}")
    except ValueError:
        answer = {}
    if response.status != 200:
        message = answer.get("message") or response.data[:200].decode("utf-8", "replace")
        raise SetupError(f"Kibana refused the import ({response.status}): {message}")
    if not answer.get("success"):
        problems = "; ".join(
            f"{e.get('type')}/{e.get('id')}: {e.get('error', {}).get('type')}"
            for e in answer.get("errors", [])
        )
        raise SetupError(f"Kibana did not import every saved object: {problems}")
    results = answer.get("successResults", [])
    overwritten = sum(1 for r in results if r.get("overwrite"))
    return Change(
        "Kibana saved objects", f"{answer.get('successCount', len(results))} objects",
        "imported", f"{len(results) - overwritten} new, {overwritten} overwritten",
    )

"""`dozor setup` and index_config/ against the loopback Elasticsearch and Kibana.

The fakes (tests/fakes/elasticsearch.py) apply templates the way Elasticsearch does (components
validated on their own, composed at index creation), refuse analyzers that do not
exist (the `ukrainian` type without the plugin), and check Kibana's import protocol.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch.helpers import bulk
from typer.testing import CliRunner

import index_config as cfg
from dozor.cli import app
from index_config.install import SetupError, import_kibana, install_elasticsearch
from pipelines.article import Article
from pipelines.query import FIELD_ATTRS, FIELDS, KEYWORD_FIELDS, SCOPE_FIELDS
from pipelines.store import StoreError
from pipelines.store.elastic import ALERT_STATE, ElasticStore, connect
from pipelines.store.spool import Spool
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.fakes.kibana import FakeKibana
from tests.support.articles import corpus

runner = CliRunner()
NAMES = cfg.IndexNames()


@pytest.fixture
def fake() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch(plugins=("analysis-ukrainian",)) as server:
        yield server
        assert server.problems == []


@pytest.fixture
def kibana() -> Iterator[FakeKibana]:
    with FakeKibana() as server:
        yield server
        assert server.problems == []


def _analysis(fake: FakeElasticsearch) -> dict:
    return fake.component_templates[NAMES.article_component]["template"]["settings"]["analysis"]


def _articles_index(fake: FakeElasticsearch):
    (name,) = fake.aliases[NAMES.articles]
    return fake.indices[name]


def test_setup_creates_templates_policy_alias_and_indices(fake: FakeElasticsearch) -> None:
    changes = install_elasticsearch(connect(fake.url))
    assert {c.action for c in changes} == {"created"}
    assert {(c.kind, c.name) for c in changes} >= {
        ("component template", "dozor-article"), ("component template", "dozor-rule"),
        ("ILM policy", "dozor-articles"), ("index template", "dozor-articles"),
        ("index template", "dozor-rules"), ("write alias", "dozor-articles"),
        ("percolator index", "dozor-rules"), ("index", "dozor-deliveries"),
        ("index", "dozor-seen"),
    }
    # a dated write index behind the alias, named by date math on the server
    ((write_index, is_write),) = fake.aliases["dozor-articles"].items()
    assert re.fullmatch(r"dozor-articles-\d{4}\.\d{2}\.\d{2}-000001", write_index)
    assert is_write
    create = fake.requests_to("PUT", r"^/%3Cdozor-articles-%7Bnow%2Fd%7D-000001%3E$")
    assert len(create) == 1 and create[0].json()["aliases"] == {
        "dozor-articles": {"is_write_index": True}}
    # the ILM policy rolls over and never deletes or freezes: old stories get updated
    policy = fake.ilm_policies["dozor-articles"]
    assert "rollover" in policy["phases"]["hot"]["actions"]
    assert "delete" not in policy["phases"]
    assert not {"readonly", "shrink", "freeze"} & {
        a for phase in policy["phases"].values() for a in phase["actions"]}
    template = fake.index_templates["dozor-articles"]
    assert template["index_patterns"] == ["dozor-articles-*"]
    assert template["template"]["settings"]["index"]["lifecycle"] == {
        "name": "dozor-articles", "rollover_alias": "dozor-articles"}


def test_article_mapping_covers_every_field_with_the_right_type(
        fake: FakeElasticsearch) -> None:
    install_elasticsearch(connect(fake.url))
    props = _articles_index(fake).properties  # as composed from the templates
    # every Article field, the store's own alert mark and the title:/text: term fields
    assert set(props) == ({f.name for f in dataclasses.fields(Article)} | {ALERT_STATE}
                          | set(SCOPE_FIELDS.values()))
    assert props[ALERT_STATE] == {"type": "keyword"}
    keywords = {"id", "url", "canonical_url", "final_url", "source", "lang",
                "translation_status", "cluster_id", "matched_terms", "lsh_bands",
                "content_hash"}
    assert {name for name in keywords if props[name]["type"] != "keyword"} == set()
    for name in ("published_at", "fetched_at", "first_seen_at", "stored_at"):
        assert props[name]["type"] == "date"
    assert props["relevant"]["type"] == "boolean"
    assert props["score"]["type"] == "float"
    # per-language analysis of the original text; English analysis of the translation
    for name in ("title", "text"):
        subfields = props[name]["fields"]
        assert {k: v["analyzer"] for k, v in subfields.items() if "analyzer" in v} == {
            "ru": "dozor_ru", "uk": "dozor_uk", "en": "dozor_en"}
    assert props["text_en"]["analyzer"] == "dozor_en"


def test_terms_field_is_the_query_contract(fake: FakeElasticsearch) -> None:
    """pipelines.query: `terms` whitespace-tokenised and nothing else; the fields a rule
    may name are keyword/boolean; every one of them is mapped in the percolator index."""
    install_elasticsearch(connect(fake.url))
    props = _articles_index(fake).properties
    assert props["terms"] == {"type": "text", "analyzer": "dozor_terms"}
    assert _analysis(fake)["analyzer"]["dozor_terms"] == {"type": "custom",
                                                          "tokenizer": "whitespace"}
    for name in KEYWORD_FIELDS:
        assert props[name]["type"] == "keyword"
    assert props["relevant"]["type"] == "boolean"
    rules = fake.indices["dozor-rules"].properties
    assert rules["query"] == {"type": "percolator"}
    # a query field reads the index field FIELD_ATTRS names (event: reads events)
    assert {FIELD_ATTRS.get(f, f) for f in FIELDS} <= set(rules)
    assert props["events"]["type"] == "keyword"
    assert rules["terms"] == props["terms"]


def test_no_analyzer_folds_letters(fake: FakeElasticsearch) -> None:
    """й/и, ї/і and ё/е must stay apart: no asciifolding or icu_folding anywhere."""
    install_elasticsearch(connect(fake.url))
    analysis = _analysis(fake)
    used = {f for spec in analysis["analyzer"].values() for f in spec.get("filter", [])}
    kinds = {analysis["filter"][f]["type"] if f in analysis["filter"] else f for f in used}
    assert not {k for k in kinds if "fold" in k}
    assert analysis["filter"]["dozor_ru_stem"]["language"] == "light_russian"
    # fake.problems (checked by the fixture) would also list a folding filter


def test_ukrainian_plugin_detected_or_fallback() -> None:
    with FakeElasticsearch(plugins=("analysis-ukrainian",)) as with_plugin:
        changes = install_elasticsearch(connect(with_plugin.url))
        assert _analysis(with_plugin)["analyzer"]["dozor_uk"] == {"type": "ukrainian"}
        assert "plugin" in changes[0].detail
    with FakeElasticsearch() as without:
        changes = install_elasticsearch(connect(without.url))
        assert _analysis(without)["analyzer"]["dozor_uk"] == {
            "type": "custom", "tokenizer": "standard", "filter": ["lowercase"]}
        assert "fallback" in changes[0].detail
        assert without.problems == []
    # forcing the plugin where it is missing fails the way Elasticsearch does
    with FakeElasticsearch() as missing:
        with pytest.raises(SetupError, match=r"Unknown analyzer type \[ukrainian\]"):
            install_elasticsearch(connect(missing.url), ukrainian=True)


def test_second_setup_changes_nothing(fake: FakeElasticsearch) -> None:
    install_elasticsearch(connect(fake.url))
    writes_before = len([r for r in fake.requests if r.method in ("PUT", "POST", "DELETE")])
    changes = install_elasticsearch(connect(fake.url))
    assert {c.action for c in changes} == {"unchanged"}
    writes_after = len([r for r in fake.requests if r.method in ("PUT", "POST", "DELETE")])
    assert writes_after == writes_before
    assert len(fake.aliases["dozor-articles"]) == 1


def test_plugin_installed_later_updates_templates_and_recreates_percolator() -> None:
    with FakeElasticsearch() as fake:
        install_elasticsearch(connect(fake.url))
        fake.plugins = ("analysis-ukrainian",)
        changes = {c.name + "/" + c.kind: c for c in install_elasticsearch(connect(fake.url))}
        assert changes["dozor-article/component template"].action == "updated"
        alias = changes["dozor-articles/write alias"]
        assert alias.action == "unchanged" and "rollover" in alias.detail
        assert changes["dozor-rules/percolator index"].action == "recreated"
        rules_settings = fake.indices["dozor-rules"].settings
        assert rules_settings["analysis"]["analyzer"]["dozor_uk"] == {"type": "ukrainian"}
        assert fake.problems == []


def test_side_index_mapping_brought_up_to_date(fake: FakeElasticsearch) -> None:
    install_elasticsearch(connect(fake.url))
    mappings = fake.indices["dozor-deliveries"].mappings
    mappings["_meta"]["checksum"] = "older"
    del mappings["properties"]["message_id"]
    changes = {c.name: c for c in install_elasticsearch(connect(fake.url))}
    assert changes["dozor-deliveries"].action == "updated"
    assert fake.indices["dozor-deliveries"].properties["message_id"] == {"type": "keyword"}


def _as_set_up_before_the_alert_mark(fake: FakeElasticsearch) -> None:
    """A cluster set up by a Dozor without `alert_state` and folded deliveries, holding
    one article."""
    install_elasticsearch(connect(fake.url))
    component = fake.component_templates[NAMES.article_component]
    del component["template"]["mappings"]["properties"][ALERT_STATE]
    component["_meta"]["checksum"] = "older"
    del _articles_index(fake).mappings["properties"][ALERT_STATE]
    del fake.indices[NAMES.deliveries].mappings["properties"]["folded_into"]
    old = corpus()["ru_wire"]
    old.stored_at = old.fetched_at
    bulk(connect(fake.url), [{"_op_type": "create", "_index": NAMES.articles, "_id": old.id,
                              "_source": old.to_dict()}], refresh="wait_for")


def test_the_store_adds_new_fields_to_a_cluster_set_up_before_them(
        fake: FakeElasticsearch, tmp_path: Path) -> None:
    """With `dynamic: false` the alert mark would be stored but never indexed, and the
    stories of a killed run never found again: the first contact adds the field to the
    indices and to the template later rollovers use, before anything is written."""
    _as_set_up_before_the_alert_mark(fake)
    with ElasticStore(fake.url, client=connect(fake.url), spool=Spool(tmp_path)) as store:
        new = corpus()["uk"]
        assert store.write([new]).new == [new.id]
        assert store.unmatched_ids() == [new.id]  # the older story does not come back
        # the delivery log (strict mapping) takes a folded delivery
        old_id = corpus()["ru_wire"].id
        assert store.add_deliveries("desk", [new.id], {new.id: old_id}) == [new.id]
    assert _articles_index(fake).properties[ALERT_STATE] == {"type": "keyword"}
    assert fake.indices[NAMES.deliveries].properties["folded_into"] == {"type": "keyword"}
    component = fake.component_templates[NAMES.article_component]
    assert component["template"]["mappings"]["properties"][ALERT_STATE] == {"type": "keyword"}
    connect(fake.url).indices.rollover(alias=NAMES.articles)
    assert {ALERT_STATE in fake.indices[i].properties for i in fake.aliases[NAMES.articles]} \
        == {True}
    # `dozor setup` still brings the whole configuration, checksum included
    changes = {c.name + "/" + c.kind: c for c in install_elasticsearch(connect(fake.url))}
    assert changes["dozor-article/component template"].action == "updated"


def test_setup_adds_new_fields_to_existing_indices(fake: FakeElasticsearch) -> None:
    _as_set_up_before_the_alert_mark(fake)
    changes = {c.name + "/" + c.kind: c for c in install_elasticsearch(connect(fake.url))}
    alias = changes["dozor-articles/write alias"]
    assert alias.action == "updated" and f"fields added: {ALERT_STATE}" in alias.detail
    assert _articles_index(fake).properties[ALERT_STATE] == {"type": "keyword"}
    assert all(c.action == "unchanged" for c in install_elasticsearch(connect(fake.url)))


def test_a_refused_field_addition_is_a_clear_error(fake: FakeElasticsearch,
                                                   tmp_path: Path) -> None:
    _as_set_up_before_the_alert_mark(fake)
    fake.fail("PUT", r"/_mapping$", 403)
    with ElasticStore(fake.url, client=connect(fake.url), spool=Spool(tmp_path)) as store:
        with pytest.raises(StoreError, match=r"cannot add the fields .*\(403 .*dozor setup"):
            store.count()


def test_index_in_place_of_the_alias_is_refused(fake: FakeElasticsearch) -> None:
    es = connect(fake.url)
    es.indices.create(index="dozor-articles")
    with pytest.raises(SetupError, match="an index named 'dozor-articles' exists"):
        install_elasticsearch(es)


def test_prefix_names_everything(fake: FakeElasticsearch) -> None:
    names = cfg.IndexNames("team2")
    install_elasticsearch(connect(fake.url), names)
    assert set(fake.component_templates) == {"team2-article", "team2-rule"}
    assert set(fake.aliases) == {"team2-articles"}
    assert {"team2-rules", "team2-deliveries", "team2-seen"} <= set(fake.indices)
    assert fake.index_templates["team2-rules"]["composed_of"] == ["team2-article", "team2-rule"]


# ----------------------------------------------------------------------- Kibana


def _objects() -> dict[tuple[str, str], dict]:
    return {(o["type"], o["id"]): o for o in cfg.kibana_objects()}


def test_saved_objects_file_is_ndjson_referencing_the_data_view_by_id() -> None:
    lines = cfg.KIBANA_OBJECTS.read_text(encoding="utf-8").splitlines()
    objects = [json.loads(line) for line in lines]  # one JSON object per line, no blanks
    assert len(objects) == len(lines)
    by_key = _objects()
    assert ("index-pattern", cfg.DATA_VIEW_ID) in by_key
    view = by_key[("index-pattern", cfg.DATA_VIEW_ID)]["attributes"]
    assert view["title"] == "dozor-articles" and view["timeFieldName"] == "fetched_at"
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in by_key, (obj["id"], ref)
        if obj["type"] in ("search", "lens"):
            assert {r["id"] for r in obj["references"]} == {cfg.DATA_VIEW_ID}


def test_saved_searches_and_dashboard_panels() -> None:
    by_key = _objects()

    def kql(search_id: str) -> str:
        meta = by_key[("search", search_id)]["attributes"]["kibanaSavedObjectMeta"]
        return json.loads(meta["searchSourceJSON"])["query"]["query"]

    assert kql("dozor-relevant") == "relevant:true"
    assert {kql(f"dozor-lang-{lang}") for lang in ("ru", "uk", "en")} == {
        "lang:ru", "lang:uk", "lang:en"}
    assert "translation_status" in kql("dozor-untranslated")
    assert by_key[("search", "dozor-relevant")]["attributes"]["columns"][0] == "title_en"
    dashboard = by_key[("dashboard", "dozor-overview")]
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    refs = {r["name"]: (r["type"], r["id"]) for r in dashboard["references"]}
    shown = {refs[f"{p['panelIndex']}:{p['panelRefName']}"] for p in panels}
    assert shown == {("lens", "dozor-stories-by-language"), ("lens", "dozor-top-sources"),
                     ("lens", "dozor-matched-terms"), ("search", "dozor-relevant")}

    def source_fields(lens_id: str) -> set[str]:
        layers = by_key[("lens", lens_id)]["attributes"]["state"]["datasourceStates"][
            "formBased"]["layers"]
        return {c.get("sourceField") for layer in layers.values()
                for c in layer["columns"].values()}

    assert {"fetched_at", "lang"} <= source_fields("dozor-stories-by-language")
    assert "source" in source_fields("dozor-top-sources")
    assert "matched_terms" in source_fields("dozor-matched-terms")


def test_kibana_import_is_idempotent(kibana: FakeKibana) -> None:
    first = import_kibana(kibana.url)
    assert first.action == "imported" and first.detail == "10 new, 0 overwritten"
    second = import_kibana(kibana.url)
    assert second.detail == "0 new, 10 overwritten"
    (request, _) = kibana.requests
    assert request.query == {"overwrite": "true"} and request.headers["kbn-xsrf"] == "true"
    assert len(kibana.objects) == len(cfg.kibana_objects())


def test_kibana_import_waits_for_a_starting_kibana(kibana: FakeKibana) -> None:
    kibana.unavailable = 2
    assert import_kibana(kibana.url, backoff=0.01).action == "imported"
    assert len(kibana.requests) == 3


def test_kibana_refusal_and_absence_are_clear_errors(kibana: FakeKibana) -> None:
    kibana.basic_auth = ("elastic", "right")
    with pytest.raises(SetupError, match=r"Kibana refused the import \(401\)"):
        import_kibana(kibana.url, headers={"Authorization": "Basic d3Jvbmc6d3Jvbmc="})
    with FakeKibana() as gone:
        url = gone.url
    with pytest.raises(SetupError, match="cannot reach Kibana"):
        import_kibana(url, retries=0)


# -------------------------------------------------------------------------- CLI


def test_cli_setup_with_credentials_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeElasticsearch(basic_auth=("elastic", "s3cret")) as es, \
            FakeKibana(basic_auth=("elastic", "s3cret")) as kb:
        monkeypatch.setenv("ELASTIC_PASSWORD", "s3cret")
        monkeypatch.setenv("KIBANA_URL", kb.url)
        result = runner.invoke(app, ["setup", "--es", es.url])
        assert result.exit_code == 0, result.output
        assert "created" in result.output and "imported" in result.output
        assert "15 changed, 0 unchanged" in result.output
        again = runner.invoke(app, ["setup", "--es", es.url])
        assert again.exit_code == 0, again.output
        assert "1 changed, 14 unchanged" in again.output  # only the Kibana import repeats
        assert es.problems == [] and kb.problems == []
        monkeypatch.setenv("ELASTIC_PASSWORD", "wrong")
        refused = runner.invoke(app, ["setup", "--es", es.url])
        assert refused.exit_code == 2
        assert "401" in refused.output and "s3cret" not in refused.output


def test_cli_setup_with_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeElasticsearch(api_key="a2V5OnNlY3JldA==") as es:
        monkeypatch.setenv("ELASTIC_API_KEY", "a2V5OnNlY3JldA==")
        monkeypatch.setenv("ELASTICSEARCH_URL", es.url)
        result = runner.invoke(app, ["setup", "--ukrainian-analyzer", "fallback"])
        assert result.exit_code == 0, result.output
        assert "Kibana: skipped" in result.output
        assert all(r.headers["authorization"] == "ApiKey a2V5OnNlY3JldA==" for r in es.requests)


def test_cli_setup_without_a_cluster_says_so() -> None:
    result = runner.invoke(app, ["setup"])
    assert result.exit_code == 2 and "no Elasticsearch URL" in result.output
    with FakeElasticsearch() as gone:
        url = gone.url
    result = runner.invoke(app, ["setup", "--es", url])
    assert result.exit_code == 2
    assert "cannot set up Elasticsearch at http://127.0.0.1" in result.output

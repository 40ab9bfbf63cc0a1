"""Loopback stand-ins for Elasticsearch and Kibana (tests/fakes/kibana.py, on the same
base: tests/fakes/loopback.py) that check what they receive.

No Elasticsearch or Kibana can run where the tests run, so the client side is tested
against these: real HTTP servers on 127.0.0.1 that speak the subset of the REST APIs
Dozor uses, keep state in memory, and record every protocol problem they see in
`problems` (tests assert it stays empty). They check what the official client must
send: compatibility headers, the product header they answer with, credentials, NDJSON
framing of `_bulk`, ids on every bulk action, template and mapping bodies (analyzers
that exist, percolator fields, queries on mapped fields only), percolate requests, and
Kibana's import protocol (kbn-xsrf, multipart, references that resolve).

Deliberate simplifications (they are not Elasticsearch): text is analysed by
lower-casing and splitting into words (the `dozor_terms` analyzer splits at whitespace
only, like the real one), with no stemming; scores count matching terms.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import itertools
import json
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pipelines.store.elastic import BulkSettings, ElasticStore, connect
from pipelines.store.spool import Spool
from tests.fakes.loopback import Handler, Recorded, Served

JSON_TYPE = "application/vnd.elasticsearch+json; compatible-with=9"
NDJSON_TYPE = "application/vnd.elasticsearch+x-ndjson; compatible-with=9"
BUILTIN_ANALYZERS = {"standard", "simple", "whitespace", "keyword", "english", "russian"}
PLUGIN_ANALYZERS = {"analysis-ukrainian": "ukrainian"}
# retries and bulk back-off in milliseconds, so failure paths stay fast
FAST = BulkSettings(initial_backoff=0.01, max_backoff=0.05)
CLUSTER_UUID = "fAkEcLuStErUuId00000000"
# what a template PUT may carry (the request bodies of types-9.3.ts)
PUT_FIELDS = {
    "component_template": {"template", "version", "_meta", "deprecated"},
    "index_template": {"index_patterns", "composed_of", "template", "data_stream", "priority",
                       "version", "_meta", "allow_auto_create",
                       "ignore_missing_component_templates", "deprecated"},
    "template": {"aliases", "mappings", "settings", "lifecycle", "data_stream_options"},
}
MAX_RESULT_WINDOW = 10_000  # index.max_result_window's default
MAX_ANALYZED_OFFSET = 1_000_000  # index.highlight.max_analyzed_offset's default
SHARDS = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}
WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


# Elasticsearch's built-in analysis components and field types (the ones a template of
# Dozor's could name; a name outside these is refused as Elasticsearch refuses it)
BUILTIN_TOKENIZERS = {"standard", "whitespace", "keyword", "letter", "lowercase", "classic",
                      "uax_url_email", "pattern", "simple_pattern", "char_group", "ngram",
                      "edge_ngram", "path_hierarchy", "thai"}
BUILTIN_FILTERS = {"lowercase", "uppercase", "stop", "stemmer", "snowball", "asciifolding",
                   "icu_folding", "trim", "unique", "length", "shingle", "synonym",
                   "synonym_graph", "word_delimiter_graph", "elision", "apostrophe",
                   "decimal_digit", "reverse", "truncate", "keyword_marker", "kstem",
                   "porter_stem", "classic", "cjk_width", "cjk_bigram", "russian_stem",
                   "edge_ngram", "ngram", "pattern_replace", "stemmer_override"}
STEMMER_LANGUAGES = {"english", "light_english", "minimal_english", "possessive_english",
                     "porter2", "lovins", "russian", "light_russian", "german", "french"}
STOP_LISTS = {"_none_", "_english_", "_russian_", "_german_", "_french_", "_spanish_"}
FIELD_TYPES = {"text", "keyword", "constant_keyword", "wildcard", "match_only_text", "date",
               "date_nanos", "boolean", "long", "integer", "short", "byte", "double", "float",
               "half_float", "scaled_float", "unsigned_long", "object", "nested",
               "flattened", "percolator", "ip", "geo_point", "binary", "dense_vector",
               "search_as_you_type", "alias"}
VIEW = frozenset({"view_index_metadata", "manage", "all"})
READ = frozenset({"read", "all"})
WRITE = frozenset({"write", "all"})
MANAGE = frozenset({"manage", "all"})


@dataclass(frozen=True)
class Role:
    """A role as Elasticsearch's security grants it: cluster privileges, and index
    privileges on name patterns. Only the privileges Dozor's requests need are known."""

    name: str
    cluster: frozenset[str] = frozenset()
    indices: tuple[tuple[str, frozenset[str]], ...] = ()

    def may(self, granted_by: frozenset[str], index: str | None = None) -> bool:
        if index is None:
            return bool(self.cluster & granted_by)
        return any(fnmatch.fnmatchcase(index, pattern) and privileges & granted_by
                   for pattern, privileges in self.indices)


class ApiFailure(Exception):
    def __init__(self, status: int, error_type: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.body = {
            "error": {
                "root_cause": [{"type": error_type, "reason": reason}],
                "type": error_type,
                "reason": reason,
            },
            "status": status,
        }


@dataclass
class Doc:
    source: dict[str, Any]
    seq_no: int
    primary_term: int = 1
    version: int = 1


@dataclass
class Index:
    name: str
    settings: dict[str, Any]
    mappings: dict[str, Any]
    docs: dict[str, Doc] = field(default_factory=dict)
    visible: set[str] = field(default_factory=set)  # ids a search can see (refreshed)
    seq: int = 0

    @property
    def properties(self) -> dict[str, Any]:
        return self.mappings.get("properties", {})


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    times: int
    after: int  # matching requests let through before the fault starts


def _merge(into: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def _now_date_math(name: str) -> str:
    m = re.fullmatch(r"<(.*)\{now/d\}(.*)>", name)
    if not m:
        return name
    return f"{m.group(1)}{datetime.now(UTC):%Y.%m.%d}{m.group(2)}"


class FakeElasticsearch(Served):
    # called with every request and the answer given (tests/support/es_spec_capture.py checks
    # both against Elasticsearch's specification)
    observers: list[Callable[[Recorded, int, Any], None]] = []
    # every instance's problems, for the check that the whole suite saw none
    all_problems: list[str] = []

    def __init__(self, plugins: tuple[str, ...] = (), api_key: str | None = None,
                 basic_auth: tuple[str, str] | None = None,
                 tls: ssl.SSLContext | None = None, version: str = "9.3.0") -> None:
        self.plugins = plugins
        self.version = version
        self.created_at = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.000Z}"
        self.tls = tls
        self.api_key = api_key
        self.basic_auth = basic_auth
        self.indices: dict[str, Index] = {}
        self.aliases: dict[str, dict[str, bool]] = {}  # alias -> {index: is_write_index}
        self.component_templates: dict[str, dict[str, Any]] = {}
        self.index_templates: dict[str, dict[str, Any]] = {}
        self.ilm_policies: dict[str, dict[str, Any]] = {}
        self.template_dates: dict[str, tuple[int, int]] = {}  # created, modified (ms)
        self.users: dict[str, tuple[str, Role]] = {}  # restricted users: password, role
        self._role: Role | None = None  # the current request's, None for the superuser
        self._require_alias = False  # the current bulk request's flag
        self.requests: list[Recorded] = []
        self.problems: list[str] = []
        self.faults: list[Fault] = []
        self.reject_items = 0  # the next N bulk items answer 429 (queue full)
        self.reject_ids: set[str] = set()  # bulk items with these ids always answer 429
        self.lock = threading.RLock()

    # -------------------------------------------------------------- lifecycle

    def _version_info(self) -> dict[str, Any]:
        return {"number": self.version, "build_flavor": "default", "build_type": "docker",
                "build_hash": "0" * 40, "build_date": self.created_at,
                "build_snapshot": False, "lucene_version": "10.3.2",
                "minimum_wire_compatibility_version": "8.19.0",
                "minimum_index_compatibility_version": "8.0.0"}

    def _nodes_info(self) -> dict[str, Any]:
        plugins = [{"name": p, "version": self.version, "elasticsearch_version": self.version,
                    "java_version": "17", "description": f"the {p} plugin",
                    "classname": "org.elasticsearch.plugin.Plugin", "extended_plugins": [],
                    "has_native_controller": False, "licensed": False}
                   for p in self.plugins]
        node = {"name": "n1", "transport_address": "127.0.0.1:9300", "host": "127.0.0.1",
                "ip": "127.0.0.1", "version": self.version, "transport_version": 9_000_000,
                "index_version": 9_000_000, "component_versions": {},
                "build_flavor": "default", "build_type": "docker", "build_hash": "0" * 40,
                "roles": ["master", "data", "ingest"], "attributes": {}, "plugins": plugins}
        return {"_nodes": {"total": 1, "successful": 1, "failed": 0}, "cluster_name": "fake",
                "nodes": {"n1": node}}

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> FakeElasticsearch:
        fake = self

        class ElasticHandler(Handler):
            def _handle(self) -> None:
                req = self.recorded()
                status, payload = fake.handle(req)
                for observe in FakeElasticsearch.observers:
                    observe(req, status, payload)
                self.reply(status, payload, {"X-Elastic-Product": "Elasticsearch",
                                             "Content-Type": JSON_TYPE})

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        return self._serve(ElasticHandler)

    # ---------------------------------------------------------------- scripting

    def fail(self, method: str, path: str, status: int, times: int = 1, after: int = 0) -> None:
        """After `after` of them, the next `times` requests matching method and path regex
        are answered `status`."""
        self.faults.append(Fault(method, re.compile(path), status, times, after))

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        rx = re.compile(path)
        return [r for r in self.requests if r.method == method and rx.search(r.path)]

    def docs(self, index_or_alias: str) -> dict[str, dict[str, Any]]:
        """Every stored document (refreshed or not) of an index or alias, by id."""
        out: dict[str, dict[str, Any]] = {}
        for index in self._resolve_read(index_or_alias):
            out.update({i: d.source for i, d in self.indices[index].docs.items()})
        return out

    def doc_index(self, doc_id: str, alias: str) -> list[str]:
        """The concrete indices behind `alias` that hold `doc_id` (more than one = a duplicate)."""
        return [i for i in self._resolve_read(alias) if doc_id in self.indices[i].docs]

    # ------------------------------------------------------------------ dispatch

    def handle(self, req: Recorded) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(req)
            try:
                self._check_headers(req)
                self._authorize(req)
                for fault in self.faults:
                    if fault.times and fault.method == req.method and fault.path.search(req.path):
                        if fault.after:
                            fault.after -= 1
                            continue
                        fault.times -= 1
                        raise ApiFailure(fault.status, "scripted_fault", f"scripted {fault.status}")
                return self._route(req)
            except ApiFailure as exc:
                return exc.status, exc.body

    def _problem(self, message: str) -> None:
        self.problems.append(message)
        FakeElasticsearch.all_problems.append(message)

    def _check_headers(self, req: Recorded) -> None:
        if int(self.version.split(".")[0]) < 9 and "compatible-with=9" in \
                req.headers.get("accept", ""):
            # Elasticsearch 8.x knows compatibility with 7 and 8 only
            failure = ApiFailure(400, "media_type_header_exception",
                                 "Invalid media-type value on headers [Accept, Content-Type]")
            failure.body["error"]["caused_by"] = {
                "type": "status_exception",
                "reason": "Accept version must be either version 8 or 7, but found 9. "
                          f"Accept={req.headers.get('accept')}"}
            raise failure
        if req.headers.get("accept") != JSON_TYPE:
            self._problem(f"{req.method} {req.path}: Accept {req.headers.get('accept')!r}")
        if req.body:
            expected = NDJSON_TYPE if req.path.endswith("/_bulk") else JSON_TYPE
            if req.headers.get("content-type") != expected:
                self._problem(f"{req.method} {req.path}: Content-Type "
                              f"{req.headers.get('content-type')!r}, expected {expected!r}")
        auth = req.headers.get("authorization")
        expected_auth = None
        if self.api_key:
            expected_auth = f"ApiKey {self.api_key}"
        elif self.basic_auth:
            token = base64.b64encode(":".join(self.basic_auth).encode()).decode()
            expected_auth = f"Basic {token}"
        self._role = None
        for user, (password, role) in self.users.items():
            if auth == "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode():
                self._role = role
                return
        if expected_auth and auth != expected_auth:
            raise ApiFailure(401, "security_exception", "missing or wrong credentials")

    def _authorize(self, req: Recorded) -> None:
        """What a restricted user may do, per request (bulk items are checked one by one,
        as Elasticsearch does)."""
        if self._role is None:
            return
        parts = [unquote(p) for p in req.path.strip("/").split("/") if p]
        head = parts[0] if parts else ""
        action = parts[1] if len(parts) > 1 else ""
        if not parts or head == "_nodes":
            cluster: frozenset[str] | None = frozenset({"monitor", "manage", "all"})
        elif head in ("_component_template", "_index_template"):
            cluster = frozenset({"manage_index_templates", "manage", "all"})
        elif head == "_ilm":
            cluster = frozenset({"manage_ilm", "manage", "all"} |
                                ({"read_ilm"} if req.method == "GET" else set()))
        else:
            cluster = None
        if cluster is not None:
            if not self._role.may(cluster):
                self._refuse(req, f"cluster privileges [{','.join(sorted(cluster))}]")
            return
        if head in ("_bulk", "_mget") or action in ("_bulk",):
            return
        if head == "_alias":
            target, needed = parts[1], VIEW
        elif action in ("_search", "_count", "_mget"):
            target, needed = head, READ
        elif action in ("_mapping", "_alias") and req.method in ("GET", "HEAD"):
            target, needed = head, VIEW
        elif action == "_refresh":
            target, needed = head, frozenset({"maintenance"}) | MANAGE
        elif action:
            target, needed = head, MANAGE
        elif req.method == "PUT":
            target, needed = head, frozenset({"create_index"}) | MANAGE
        elif req.method == "DELETE":
            target, needed = head, frozenset({"delete_index"}) | MANAGE
        else:
            target, needed = head, VIEW
        for name in target.split(","):
            if not self._role.may(needed, _now_date_math(name)):
                self._refuse(req, f"index privileges [{','.join(sorted(needed))}]",
                             f" on indices [{name}]")

    def _refuse(self, req: Recorded, granted_by: str, on: str = "") -> None:
        assert self._role is not None
        raise ApiFailure(403, "security_exception",
                         f"action [{req.method} {req.path}] is unauthorized for user with "
                         f"effective roles [{self._role.name}]{on}, this action is granted "
                         f"by the {granted_by}")

    def _route(self, req: Recorded) -> tuple[int, Any]:
        parts = [unquote(p) for p in req.path.strip("/").split("/") if p]
        m, n = req.method, len(parts)
        if n == 0:
            return 200, {"name": "n1", "cluster_name": "fake", "cluster_uuid": CLUSTER_UUID,
                         "version": self._version_info(), "tagline": "You Know, for Search"}
        head = parts[0]
        if head == "_nodes" and parts[-1] == "plugins":
            return 200, self._nodes_info()
        if head == "_component_template" and n == 2:
            return self._templates(req, self.component_templates, parts[1], "component_templates",
                                   "component_template")
        if head == "_index_template" and n == 2:
            return self._templates(req, self.index_templates, parts[1], "index_templates",
                                   "index_template")
        if head == "_ilm" and n == 3 and parts[1] == "policy":
            return self._ilm(req, parts[2])
        if head == "_alias" and n == 2:
            return self._get_alias(req, parts[1])
        if head == "_bulk":
            return self._bulk(req, None)
        if head == "_mget":
            return self._mget(req, None)
        if n == 1:
            return self._index_level(req, head)
        action = parts[1]
        if action == "_bulk":
            return self._bulk(req, head)
        if action == "_search" and m in ("GET", "POST"):
            return self._search(req, head)
        if action == "_count":
            return self._count(req, head)
        if action == "_refresh":
            for index in self._resolve_read(head):
                self.indices[index].visible = set(self.indices[index].docs)
            return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        if action == "_mapping":
            return self._mapping(req, head)
        if action == "_mget":
            return self._mget(req, head)
        if action == "_rollover":
            return self._rollover(head)
        if action == "_alias" and n == 3 and m == "HEAD":
            return self._get_alias(req, parts[2])
        raise ApiFailure(400, "fake_unsupported", f"{m} {req.path} is not supported here")

    # ---------------------------------------------------------------- templates

    def _templates(self, req: Recorded, store: dict[str, Any], name: str, plural: str,
                   singular: str) -> tuple[int, Any]:
        if req.method == "PUT":
            body = req.json()
            self._check_known_fields(singular, body)
            if singular == "component_template":
                self._check_template_body(name, body.get("template", {}))
            else:
                for component in body.get("composed_of", []):
                    if component not in self.component_templates:
                        raise ApiFailure(404, "invalid_index_template_exception",
                                         f"index template [{name}] specifies component "
                                         f"template [{component}] that does not exist")
                if not body.get("index_patterns"):
                    raise ApiFailure(400, "action_request_validation_exception",
                                     "index patterns are missing")
                self._check_no_overlap(name, body)
                self._check_template_body(name, self._compose(body))
            store[name] = body
            now = int(datetime.now(UTC).timestamp() * 1000)
            self.template_dates[name] = (self.template_dates.get(name, (now, now))[0], now)
            return 200, {"acknowledged": True}
        if name not in store:
            raise ApiFailure(404, "resource_not_found_exception", f"{singular} [{name}] missing")
        found = copy.deepcopy(store[name])
        if singular == "component_template":
            # Elasticsearch 9.2+ answers when the template was created and last changed
            created, modified = self.template_dates[name]
            found.update(created_date_millis=created, modified_date_millis=modified)
        return 200, {plural: [{"name": name, singular: found}]}

    @staticmethod
    def _check_known_fields(kind: str, body: dict[str, Any]) -> None:
        """A template PUT is parsed strictly: a field the request does not define (one
        only GET answers, such as created_date_millis) is refused."""
        for key in body:
            if key not in PUT_FIELDS[kind]:
                raise ApiFailure(400, "x_content_parse_exception",
                                 f"[1:2] [{kind}] unknown field [{key}]")
        for key in body.get("template", {}):
            if key not in PUT_FIELDS["template"]:
                raise ApiFailure(400, "x_content_parse_exception",
                                 f"[1:2] [template] unknown field [{key}]")

    def _check_no_overlap(self, name: str, body: dict[str, Any]) -> None:
        """Two index templates of one priority whose patterns can match the same index
        are refused: Elasticsearch could not choose between them at index creation."""
        priority = body.get("priority", 0)
        for other, existing in self.index_templates.items():
            if other == name or existing.get("priority", 0) != priority:
                continue
            overlapping = [p for p in body["index_patterns"] for q in existing["index_patterns"]
                           if _globs_overlap(p, q)]
            if overlapping:
                raise ApiFailure(400, "illegal_argument_exception",
                                 f"index template [{name}] has index patterns {overlapping} "
                                 f"matching patterns from existing templates [{other}] with "
                                 f"patterns ({other} => {existing['index_patterns']}) that "
                                 f"have the same priority [{priority}], multiple index "
                                 "templates may not match during index creation, please "
                                 "use a different priority")

    def _compose(self, template: dict[str, Any]) -> dict[str, Any]:
        composed: dict[str, Any] = {}
        for component in template.get("composed_of", []):
            _merge(composed, self.component_templates[component].get("template", {}))
        return _merge(composed, template.get("template", {}))

    def _analyzers(self, settings: dict[str, Any]) -> dict[str, Any]:
        index = settings.get("index", settings)
        analysis = index.get("analysis") or settings.get("analysis") or {}
        return analysis.get("analyzer", {})

    def _check_template_body(self, name: str, template: dict[str, Any]) -> None:
        """What Elasticsearch would refuse when the template is applied to an index."""
        analyzers = self._analyzers(template.get("settings", {}))
        available_types = {PLUGIN_ANALYZERS[p] for p in self.plugins if p in PLUGIN_ANALYZERS}
        for analyzer_name, spec in analyzers.items():
            kind = spec.get("type", "custom")
            if kind != "custom" and kind not in BUILTIN_ANALYZERS | available_types:
                raise ApiFailure(400, "illegal_argument_exception",
                                 f"Unknown analyzer type [{kind}] for [{analyzer_name}]")
            for token_filter in spec.get("filter", []):
                if "fold" in token_filter:
                    self._problem(f"{name}: analyzer {analyzer_name} folds letters "
                                  f"({token_filter})")
            if kind == "custom":
                self._check_custom_analyzer(analyzer_name, spec, template.get("settings", {}))
        # like Elasticsearch, a template is validated on its own (a component template
        # cannot use analyzers another component defines)
        if template.get("mappings"):
            self._check_analyzers_exist(name, template["mappings"], set(analyzers))

    def _check_custom_analyzer(self, name: str, spec: dict[str, Any],
                               settings: dict[str, Any]) -> None:
        """Tokenizer and token filters must exist (built in, or defined beside it), and a
        defined filter must be of a known type with a known language or stop list."""
        index = settings.get("index", settings)
        analysis = index.get("analysis") or settings.get("analysis") or {}
        tokenizer = spec.get("tokenizer")
        if tokenizer is None or (tokenizer not in BUILTIN_TOKENIZERS
                                 and tokenizer not in analysis.get("tokenizer", {})):
            raise ApiFailure(400, "illegal_argument_exception",
                             f"failed to find tokenizer under name [{tokenizer}]")
        filters = analysis.get("filter", {})
        for token_filter in spec.get("filter", []):
            if token_filter in BUILTIN_FILTERS:
                continue
            definition = filters.get(token_filter)
            if definition is None:
                raise ApiFailure(400, "illegal_argument_exception",
                                 f"failed to find filter under name [{token_filter}]")
            kind = definition.get("type")
            if kind not in BUILTIN_FILTERS:
                raise ApiFailure(400, "illegal_argument_exception",
                                 f"Unknown filter type [{kind}] for [{token_filter}]")
            language = definition.get("language", definition.get("name"))
            if kind == "stemmer" and language not in STEMMER_LANGUAGES:
                raise ApiFailure(400, "illegal_argument_exception",
                                 f"Unknown stemmer language [{language}] for [{token_filter}]")
            stopwords = definition.get("stopwords")
            if kind == "stop" and isinstance(stopwords, str) and stopwords not in STOP_LISTS:
                raise ApiFailure(400, "illegal_argument_exception",
                                 f"invalid stopwords [{stopwords}] for [{token_filter}]")

    def _check_analyzers_exist(self, name: str, mappings: dict[str, Any],
                               defined: set[str]) -> None:
        def walk(props: dict[str, Any]) -> None:
            for field_name, spec in props.items():
                kind = spec.get("type", "object" if "properties" in spec else None)
                if kind not in FIELD_TYPES:
                    raise ApiFailure(400, "mapper_parsing_exception",
                                     f"No handler for type [{kind}] declared on field "
                                     f"[{field_name}]")
                analyzer = spec.get("analyzer")
                if analyzer and analyzer not in defined | BUILTIN_ANALYZERS:
                    raise ApiFailure(400, "mapper_parsing_exception",
                                     f"analyzer [{analyzer}] has not been configured in "
                                     f"mappings ({name}.{field_name})")
                walk(spec.get("fields", {}))
                walk(spec.get("properties", {}))

        walk(mappings.get("properties", {}))

    def _ilm(self, req: Recorded, name: str) -> tuple[int, Any]:
        if req.method == "PUT":
            body = req.json()
            phases = body.get("policy", {}).get("phases")
            if not phases:
                raise ApiFailure(400, "x_content_parse_exception", "policy without phases")
            self.ilm_policies[name] = body["policy"]
            return 200, {"acknowledged": True}
        if name not in self.ilm_policies:
            raise ApiFailure(404, "resource_not_found_exception",
                             f"Lifecycle policy not found: {name}")
        return 200, {name: {"version": 1, "modified_date": self.created_at,
                            "policy": self.ilm_policies[name]}}

    # ------------------------------------------------------------------ indices

    def _index_level(self, req: Recorded, name: str) -> tuple[int, Any]:
        if req.method == "PUT":
            return self._create_index(_now_date_math(name), req.json() if req.body else {})
        if req.method == "HEAD":
            return (200 if name in self.indices else 404), None
        if req.method == "DELETE":
            if "*" in name or name == "_all":
                # action.destructive_requires_name is true by default since 8.0
                raise ApiFailure(400, "illegal_argument_exception",
                                 "Wildcard expressions or all indices are not allowed")
            for one in name.split(","):
                if one not in self.indices:
                    raise ApiFailure(404, "index_not_found_exception",
                                     f"no such index [{one}]")
            for one in name.split(","):
                del self.indices[one]
                for members in self.aliases.values():
                    members.pop(one, None)
            # an alias lives only as long as one of its indices
            self.aliases = {a: m for a, m in self.aliases.items() if m}
            return 200, {"acknowledged": True}
        if req.method == "GET":
            return 200, {index: {"aliases": {a: {} for a, m in self.aliases.items()
                                             if index in m},
                                 "mappings": self.indices[index].mappings,
                                 "settings": {"index": {"provided_name": index}}}
                         for index in self._resolve_read(name)}
        raise ApiFailure(400, "fake_unsupported", f"{req.method} /{name}")

    def _create_index(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        if name in self.indices or name in self.aliases:
            raise ApiFailure(400, "resource_already_exists_exception",
                             f"index [{name}] already exists")
        matching = [
            (t.get("priority", 0), tname, t) for tname, t in self.index_templates.items()
            if any(fnmatch.fnmatchcase(name, p) for p in t["index_patterns"])
        ]
        composed: dict[str, Any] = {}
        if matching:
            composed = self._compose(max(matching, key=lambda x: (x[0], x[1]))[2])
        _merge(composed, {k: v for k, v in body.items() if k in ("settings", "mappings")})
        mappings = composed.get("mappings", {})
        self._check_analyzers_exist(name, mappings,
                                    set(self._analyzers(composed.get("settings", {}))))
        self.indices[name] = Index(name, composed.get("settings", {}), mappings)
        for alias, spec in (body.get("aliases") or {}).items():
            members = self.aliases.setdefault(alias, {})
            if spec.get("is_write_index"):
                for other in members:
                    members[other] = False
            members[name] = bool(spec.get("is_write_index"))
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def _get_alias(self, req: Recorded, alias: str) -> tuple[int, Any]:
        if alias not in self.aliases or not self.aliases[alias]:
            if req.method == "HEAD":
                return 404, None
            raise ApiFailure(404, "aliases_not_found_exception", f"alias [{alias}] missing")
        if req.method == "HEAD":
            return 200, None
        return 200, {
            index: {"aliases": {alias: {"is_write_index": w}}}
            for index, w in self.aliases[alias].items()
        }

    def _mapping(self, req: Recorded, name: str) -> tuple[int, Any]:
        indices = self._resolve_read(name)
        if req.method == "PUT":
            body = req.json()
            for index in indices:
                current = self.indices[index].mappings
                for field_name, spec in body.get("properties", {}).items():
                    old = current.get("properties", {}).get(field_name)
                    if old and old.get("type") != spec.get("type"):
                        raise ApiFailure(400, "illegal_argument_exception",
                                         f"mapper [{field_name}] cannot be changed from type "
                                         f"[{old.get('type')}] to [{spec.get('type')}]")
                _merge(current, body)
            return 200, {"acknowledged": True}
        return 200, {i: {"mappings": self.indices[i].mappings} for i in indices}

    def _rollover(self, alias: str) -> tuple[int, Any]:
        members = self.aliases.get(alias)
        if not members:
            raise ApiFailure(400, "illegal_argument_exception",
                             f"rollover target [{alias}] missing")
        old = self._write_index(alias)
        m = re.fullmatch(r"(.*-)(\d{6})", old)
        if not m:
            raise ApiFailure(400, "illegal_argument_exception",
                             f"index name [{old}] has no counter")
        new = f"{m.group(1)}{int(m.group(2)) + 1:06d}"
        self._create_index(new, {})
        members[old] = False
        members[new] = True
        return 200, {"acknowledged": True, "shards_acknowledged": True, "old_index": old,
                     "new_index": new, "rolled_over": True, "dry_run": False, "conditions": {}}

    def _resolve_read(self, target: str) -> list[str]:
        out: list[str] = []
        for name in target.split(","):
            if name in self.aliases and self.aliases[name]:
                out += list(self.aliases[name])
            elif "*" in name:
                out += [i for i in self.indices if fnmatch.fnmatchcase(i, name)]
            elif name in self.indices:
                out.append(name)
            else:
                raise ApiFailure(404, "index_not_found_exception", f"no such index [{name}]")
        return out

    def _write_index(self, target: str, auto_create: bool = False) -> str:
        if target in self.aliases and self.aliases[target]:
            members = self.aliases[target]
            writers = [i for i, w in members.items() if w]
            if writers:
                return writers[0]
            if len(members) == 1:
                return next(iter(members))
            raise ApiFailure(400, "illegal_argument_exception",
                             f"no write index is defined for alias [{target}]")
        if target not in self.indices:
            if not auto_create:
                raise ApiFailure(404, "index_not_found_exception", f"no such index [{target}]")
            # as Elasticsearch does (action.auto_create_index defaults to true), with
            # whatever template matches the name; Dozor must never let it happen
            self._problem(f"write to missing index {target!r} auto-created it")
            self._create_index(target, {})
        return target

    # --------------------------------------------------------------------- bulk

    def _bulk(self, req: Recorded, default_index: str | None) -> tuple[int, Any]:
        text = req.body.decode("utf-8")
        if not text.endswith("\n"):
            self._problem("bulk body does not end with a newline")
            raise ApiFailure(400, "illegal_argument_exception",
                             "The bulk request must be terminated by a newline [\\n]")
        lines = text[:-1].split("\n")
        self._require_alias = req.query.get("require_alias") == "true"
        items = []
        i = 0
        while i < len(lines):
            try:
                action_line = json.loads(lines[i])
            except ValueError:
                self._problem(f"bulk line {i} is not JSON")
                raise ApiFailure(400, "x_content_parse_exception", f"line {i}") from None
            if len(action_line) != 1:
                self._problem(f"bulk line {i} has {len(action_line)} actions")
            op, meta = next(iter(action_line.items()))
            if op not in ("index", "create", "update", "delete"):
                self._problem(f"bulk line {i}: unknown action {op!r}")
                raise ApiFailure(400, "illegal_argument_exception", f"Malformed action {op}")
            source = None
            if op != "delete":
                i += 1
                if i >= len(lines):
                    self._problem(f"bulk action {op} on line {i - 1} has no source line")
                    raise ApiFailure(400, "illegal_argument_exception", "missing source")
                source = json.loads(lines[i])
            i += 1
            if "_id" not in meta:
                self._problem(f"bulk {op} without _id: writes would not be idempotent")
            items.append(self._bulk_item(op, meta, source, default_index))
        refresh = req.query.get("refresh")
        if refresh in ("true", ""):
            for index in self.indices.values():
                index.visible = set(index.docs)
        elif refresh == "wait_for":
            # waits for a refresh of the shards this request wrote to; an item that
            # failed (a 409) wrote nothing, so nothing is waited for on its account
            written = {info["_index"] for item in items for info in item.values()
                       if "error" not in info}
            for name in written & set(self.indices):
                self.indices[name].visible = set(self.indices[name].docs)
        errors = any("error" in next(iter(item.values())) for item in items)
        return 200, {"took": 1, "errors": errors, "items": items}

    def _bulk_item(self, op: str, meta: dict[str, Any], source: Any,
                   default_index: str | None) -> dict[str, Any]:
        target = meta.get("_index") or default_index
        doc_id = meta.get("_id")
        result: dict[str, Any] = {"_index": target, "_id": doc_id}
        if self.reject_items or doc_id in self.reject_ids:
            self.reject_items = max(0, self.reject_items - 1)
            result.update(status=429, error={"type": "es_rejected_execution_exception",
                                             "reason": "rejected execution (queue capacity)"})
            return {op: result}
        try:
            if self._role is not None and not self._role.may(WRITE, target):
                raise ApiFailure(403, "security_exception",
                                 f"action [indices:data/write/{op}] is unauthorized for user "
                                 f"with effective roles [{self._role.name}] on indices "
                                 f"[{target}], this action is granted by the index "
                                 f"privileges [{','.join(sorted(WRITE))}]")
            if self._require_alias and target not in self.aliases:
                raise ApiFailure(404, "index_not_found_exception",
                                 f"no such index [{target}] and [require_alias] request flag "
                                 f"is [true] and [{target}] is not an alias")
            index = self.indices[self._write_index(target, auto_create=op != "update")]
            result["_index"] = index.name
            existing = index.docs.get(doc_id)
            if "if_seq_no" in meta and (
                existing is None or existing.seq_no != meta["if_seq_no"]
                or existing.primary_term != meta.get("if_primary_term")
            ):
                raise ApiFailure(409, "version_conflict_engine_exception",
                                 f"[{doc_id}]: version conflict")
            if op == "create" and existing:
                raise ApiFailure(409, "version_conflict_engine_exception",
                                 f"[{doc_id}]: version conflict, document already exists")
            if op == "update":
                if existing is None:
                    raise ApiFailure(404, "document_missing_exception",
                                     f"[{doc_id}]: document missing")
                if "doc" not in source:
                    self._problem(f"update of {doc_id} without a partial doc")
                new_source = _merge(copy.deepcopy(existing.source), source.get("doc", {}))
                if new_source == existing.source and source.get("detect_noop", True):
                    # an update changing nothing is not written (no new version)
                    result.update(status=200, result="noop", _seq_no=existing.seq_no,
                                  _primary_term=existing.primary_term,
                                  _version=existing.version)
                    return {op: result}
            elif op == "delete":
                if existing is None:
                    result.update(status=404, result="not_found")
                    return {op: result}
                del index.docs[doc_id]
                result.update(status=200, result="deleted")
                return {op: result}
            else:
                new_source = source
            if index.properties.get("query", {}).get("type") == "percolator":
                self._check_percolator_query(index, new_source.get("query"))
            self._check_source(index, new_source)
            index.seq += 1
            version = existing.version + 1 if existing else 1
            index.docs[doc_id] = Doc(new_source, index.seq, 1, version)
            result.update(
                status=201 if existing is None else 200,
                result="created" if existing is None else "updated",
                _seq_no=index.seq, _primary_term=1, _version=version,
            )
        except ApiFailure as exc:
            result.update(status=exc.status, error={"type": exc.body["error"]["type"],
                                                    "reason": exc.body["error"]["reason"]})
        return {op: result}

    def _check_source(self, index: Index, source: dict[str, Any]) -> None:
        props = index.properties
        strict = index.mappings.get("dynamic") == "strict"
        for key, value in source.items():
            spec = props.get(key)
            if spec is None:
                if strict:
                    raise ApiFailure(400, "strict_dynamic_mapping_exception",
                                     f"mapping set to strict, dynamic introduction of [{key}] "
                                     "is not allowed")
                continue
            values = value if isinstance(value, list) else [value]
            for v in values:
                if v is None:
                    continue
                kind = spec.get("type")
                if kind == "date":
                    try:
                        datetime.fromisoformat(str(v))
                    except ValueError:
                        raise ApiFailure(400, "document_parsing_exception",
                                         f"failed to parse field [{key}] of type [date]: "
                                         f"{v!r}") from None
                elif kind == "boolean" and not isinstance(v, bool):
                    raise ApiFailure(400, "document_parsing_exception",
                                     f"failed to parse field [{key}] of type [boolean]")

    def _check_percolator_query(self, index: Index, query: Any) -> None:
        if not isinstance(query, dict):
            raise ApiFailure(400, "document_parsing_exception", "percolator query missing")
        for field_name in _query_fields(query):
            if field_name not in index.properties:
                raise ApiFailure(400, "document_parsing_exception",
                                 f"failed to parse field [query]: No field mapping can be "
                                 f"found for the field with name [{field_name}]")

    # ------------------------------------------------------------------- search

    def _mget(self, req: Recorded, default_index: str | None) -> tuple[int, Any]:
        body = req.json()
        specs = body.get("docs") or [{"_id": i} for i in body.get("ids", [])]
        out = []
        for spec in specs:
            target = spec.get("_index") or default_index
            members = self._resolve_read(target)
            if len(members) != 1:
                raise ApiFailure(400, "illegal_argument_exception",
                                 f"alias [{target}] has more than one index associated with it")
            index = self.indices[members[0]]
            doc = index.docs.get(spec["_id"])
            if doc is None:
                out.append({"_index": index.name, "_id": spec["_id"], "found": False})
            else:
                out.append({"_index": index.name, "_id": spec["_id"], "found": True,
                            "_seq_no": doc.seq_no, "_primary_term": doc.primary_term,
                            "_version": doc.version, "_source": doc.source})
        return 200, {"docs": out}

    def _count(self, req: Recorded, target: str) -> tuple[int, Any]:
        body = req.json() if req.body else {}
        query = body.get("query", {"match_all": {}})
        n = sum(
            1 for index in self._resolve_read(target)
            for i in self.indices[index].visible
            if _score(query, self.indices[index].docs[i].source, i,
                      self.indices[index].properties) is not None
        )
        return 200, {"count": n, "_shards": SHARDS}

    def _search(self, req: Recorded, target: str) -> tuple[int, Any]:
        body = req.json() if req.body else {}
        query = body.get("query", {"match_all": {}})
        window = body.get("from", 0) + body.get("size", 10)
        if window > MAX_RESULT_WINDOW:
            raise ApiFailure(400, "illegal_argument_exception",
                             f"Result window is too large, from + size must be less than or "
                             f"equal to: [{MAX_RESULT_WINDOW}] but was [{window}]. See the "
                             "scroll api for a more efficient way to request large data sets. "
                             "This limit can be set by changing the [index.max_result_window] "
                             "index level setting.")
        hits = []
        percolate = _find_percolate(query)
        for index_name in self._resolve_read(target):
            index = self.indices[index_name]
            if percolate:
                self._check_percolate(index, percolate)
            else:
                self._check_fields_mapped(index, query, body.get("sort"))
            for doc_id in sorted(index.visible):
                doc = index.docs[doc_id]
                scored = _score(query, doc.source, doc_id, index.properties)
                if scored is None:
                    continue
                hit: dict[str, Any] = {"_index": index_name, "_id": doc_id, "_score": scored,
                                       "_source": _filter_source(doc.source, body.get("_source")),
                                       "_full": doc.source}
                if body.get("seq_no_primary_term"):
                    hit.update(_seq_no=doc.seq_no, _primary_term=doc.primary_term)
                if percolate:
                    slots = _percolate_slots(percolate, doc.source["query"], index.properties)
                    hit["fields"] = {"_percolator_document_slot": slots}
                if body.get("highlight"):
                    highlight = _highlight(body["highlight"], query, doc.source,
                                           f"{doc_id}/{index_name}")
                    if highlight:
                        hit["highlight"] = highlight
                hits.append(hit)
        aggregations = _aggregate(body.get("aggs") or body.get("aggregations") or {}, hits)
        props: dict[str, Any] = {}
        for index_name in self._resolve_read(target):
            props.update(self.indices[index_name].properties)
        sources = {id(h): h["_full"] for h in hits}  # sorting drops them from the hits
        hits = _sort_hits(hits, body.get("sort"), body.get("search_after"), props)
        total = len(hits)  # collapsing leaves the total at the matching documents
        if body.get("collapse"):
            hits = _collapse(hits, sources, body["collapse"], props)
        start = body.get("from", 0)
        hits = hits[start:start + body.get("size", 10)]
        answer = {
            "took": 1, "timed_out": False,
            "_shards": SHARDS,
            "hits": {"total": {"value": total, "relation": "eq"},
                     "max_score": max((h["_score"] for h in hits), default=None),
                     "hits": hits},
        }
        if aggregations:
            answer["aggregations"] = aggregations
        return 200, answer

    def _check_fields_mapped(self, index: Index, query: dict[str, Any], sort: Any) -> None:
        """A query or sort on a field the index does not map finds or orders nothing in
        Elasticsearch (with `dynamic: false` a value in it is never indexed)."""
        names = _query_fields(query)
        for item in sort if isinstance(sort, list) else [sort] if sort else []:
            names.append(item if isinstance(item, str) else next(iter(item)))
        for name in names:
            if name not in ("_score", "_id", "_doc") and name.split(".")[0] not in \
                    index.properties:
                self._problem(f"search on {index.name} names the unmapped field {name!r}")

    def _check_percolate(self, index: Index, percolate: dict[str, Any]) -> None:
        field_name = percolate.get("field")
        if index.properties.get(field_name, {}).get("type") != "percolator":
            self._problem(f"percolate on {index.name}.{field_name}, not a percolator field")
            raise ApiFailure(400, "query_shard_exception",
                             f"field [{field_name}] is not a percolator field")
        documents = percolate.get("documents") or [percolate.get("document")]
        for doc in documents:
            if not isinstance(doc, dict):
                self._problem("percolate without documents")
                continue
            for key in doc:
                if key not in index.properties:
                    self._problem(f"percolated document field {key!r} is not mapped in "
                                  f"{index.name}")


# ------------------------------------------------------------- query evaluation


COLLAPSIBLE = ("keyword", "long", "integer", "short", "byte", "double", "float")


def _collapse(hits: list[dict[str, Any]], sources: dict[int, dict[str, Any]],
              spec: dict[str, Any], props: dict[str, Any]) -> list[dict[str, Any]]:
    """Field collapsing: the first hit (in sort order) of each value of the field, which
    it answers under `fields`; the documents without one form a single group."""
    name = spec["field"]
    kind = props.get(name, {}).get("type")
    if kind not in COLLAPSIBLE:
        raise ApiFailure(400, "illegal_argument_exception",
                         f"collapse is not supported for the field [{name}] of the type "
                         f"[{kind}]")
    if set(spec) - {"field"}:
        raise ApiFailure(400, "parsing_exception",
                         f"collapse options {sorted(set(spec) - {'field'})} (not in the fake)")
    seen: set[Any] = set()
    out = []
    for hit in hits:
        value = sources[id(hit)].get(name)
        if value in seen:
            continue
        seen.add(value)
        if value is not None:
            hit["fields"] = {**hit.get("fields", {}), name: [value]}
        out.append(hit)
    return out


def _aggregate(aggs: dict[str, Any], hits: list[dict[str, Any]]) -> dict[str, Any]:
    """`terms` (on keyword fields), `filter` and `cardinality` aggregations over the
    matching hits."""
    out: dict[str, Any] = {}
    for name, spec in aggs.items():
        (kind, params), = ((k, v) for k, v in spec.items() if k != "aggs")
        if kind == "terms":
            counts: dict[Any, int] = {}
            for hit in hits:
                value = hit["_full"].get(params["field"])
                for v in value if isinstance(value, list) else [value]:
                    if v is not None:
                        counts[v] = counts.get(v, 0) + 1
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
            size = params.get("size", 10)
            out[name] = {"doc_count_error_upper_bound": 0,
                         "sum_other_doc_count": sum(n for _, n in ranked[size:]),
                         "buckets": [{"key": k, "doc_count": n} for k, n in ranked[:size]]}
        elif kind == "filter":
            out[name] = {"doc_count": sum(
                1 for hit in hits if _score(params, hit["_full"], hit["_id"], {}) is not None)}
        elif kind == "cardinality":
            # exact: Elasticsearch's estimate is too, below its precision_threshold
            values = set()
            for hit in hits:
                value = hit["_full"].get(params["field"])
                values.update(v for v in (value if isinstance(value, list) else [value])
                              if v is not None)
            out[name] = {"value": len(values)}
        else:
            raise ApiFailure(400, "parsing_exception", f"aggregation [{kind}] (not in the fake)")
    return out



def _analyze(value: Any, spec: dict[str, Any]) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    if spec.get("type") == "text":
        out: list[str] = []
        for v in values:
            if spec.get("analyzer") in ("dozor_terms", "whitespace"):
                out += str(v).split()
            else:
                out += WORD_RE.findall(str(v).lower())
        return out
    return [v if isinstance(v, bool) else str(v) for v in values]


def _field_values(source: dict[str, Any], props: dict[str, Any],
                  name: str) -> tuple[list[Any], dict[str, Any]]:
    base, _, sub = name.partition(".")
    spec = props.get(base, {})
    if sub:
        spec = spec.get("fields", {}).get(sub, spec)
    return _analyze(source.get(base), spec), spec


def _query_fields(query: Any) -> list[str]:
    found: list[str] = []
    if isinstance(query, dict):
        for key, value in query.items():
            if key in ("term", "terms", "wildcard", "prefix", "match", "match_phrase", "range"):
                found += [k for k in value if k not in ("boost",)]
            elif key == "exists":
                found.append(value["field"])
            else:
                found += _query_fields(value)
    elif isinstance(query, list):
        for item in query:
            found += _query_fields(item)
    return found


def _find_percolate(query: dict[str, Any]) -> dict[str, Any] | None:
    if "percolate" in query:
        return query["percolate"]
    for clauses in query.get("bool", {}).values():
        for clause in clauses if isinstance(clauses, list) else [clauses]:
            if isinstance(clause, dict):
                found = _find_percolate(clause)
                if found:
                    return found
    return None


def _percolate_slots(percolate: dict[str, Any], stored_query: dict[str, Any],
                     props: dict[str, Any]) -> list[int]:
    documents = percolate.get("documents") or [percolate.get("document")]
    return [n for n, doc in enumerate(documents)
            if _score(stored_query, doc, "", props) is not None]


def _globs_overlap(a: str, b: str) -> bool:
    """Whether some index name matches both patterns (`*` wildcards only): each one's
    literal parts tried against the other."""
    def samples(pattern: str) -> set[str]:
        return {pattern.replace("*", ""), pattern.replace("*", "x"), pattern.replace("*", "-x")}

    return any(fnmatch.fnmatchcase(s, b) for s in samples(a)) or any(
        fnmatch.fnmatchcase(s, a) for s in samples(b))


def _match_value(spec_value: Any) -> Any:
    return spec_value["value"] if isinstance(spec_value, dict) else spec_value


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def _phrase_at(tokens: list[str], words: list[str], slop: int) -> bool:
    """Lucene's sloppy phrase: positions p_i of the phrase's words, all different, whose
    offsets p_i - i span at most `slop` (so two words swapped need a slop of 2)."""
    if not words:
        return False
    at: dict[str, list[int]] = {}
    for position, token in enumerate(tokens):
        at.setdefault(token, []).append(position)
    if any(word not in at for word in words):
        return False
    for low in sorted({p - i for i, word in enumerate(words) for p in at[word]}):
        windows = [[p for p in at[word] if low <= p - i <= low + slop]
                   for i, word in enumerate(words)]
        if all(windows) and any(len(set(c)) == len(c) for c in itertools.product(*windows)):
            return True
    return False


def _score(query: dict[str, Any], source: dict[str, Any], doc_id: str,
           props: dict[str, Any]) -> float | None:
    """A score when `query` matches the document, None when it does not."""
    (kind, spec), = query.items()
    if kind == "match_all":
        return 1.0
    if kind == "match_none":
        return None
    if kind == "ids":
        return 1.0 if doc_id in spec["values"] else None
    if kind == "percolate":
        return 1.0 if _percolate_slots(spec, source["query"], props) else None
    if kind == "bool":
        score = 0.0
        for clause in spec.get("must", []) + spec.get("filter", []):
            s = _score(clause, source, doc_id, props)
            if s is None:
                return None
            score += s if clause in spec.get("must", []) else 0.0
        for clause in spec.get("must_not", []):
            if _score(clause, source, doc_id, props) is not None:
                return None
        should = [s for s in (_score(c, source, doc_id, props) for c in spec.get("should", []))
                  if s is not None]
        required = spec.get("minimum_should_match",
                            0 if (spec.get("must") or spec.get("filter")) else 1)
        if spec.get("should") and len(should) < int(required):
            return None
        return score + sum(should)
    if kind == "exists":
        values, _ = _field_values(source, props, spec["field"])
        return 1.0 if values else None
    if kind == "multi_match":
        total = 0.0
        for name in spec["fields"]:
            fname, _, boost = name.partition("^")
            values, fspec = _field_values(source, props, fname)
            words = _analyze(spec["query"], fspec if fspec.get("type") == "text" else {})
            total += sum(values.count(w) for w in words) * float(boost or 1)
        return total or None
    (field_name, value), = ((k, v) for k, v in spec.items() if k != "boost")
    values, fspec = _field_values(source, props, field_name)
    if kind == "term":
        wanted = _match_value(value)
        return 1.0 if wanted in values else None
    if kind == "terms":
        return 1.0 if any(v in values for v in value) else None
    if kind == "wildcard":
        rx = _glob(_match_value(value))
        return 1.0 if any(rx.fullmatch(str(v)) for v in values) else None
    if kind == "prefix":
        return 1.0 if any(str(v).startswith(_match_value(value)) for v in values) else None
    if kind == "match_phrase":
        text = value["query"] if isinstance(value, dict) else value
        slop = value.get("slop", 0) if isinstance(value, dict) else 0
        return 1.0 if _phrase_at(values, _analyze(text, fspec), slop) else None
    if kind == "range":
        return 1.0 if any(_in_range(v, value, fspec) for v in values) else None
    if kind == "match":
        text = value["query"] if isinstance(value, dict) else value
        words = _analyze(text, fspec)
        hits = [w for w in words if w in values]
        operator = value.get("operator", "or") if isinstance(value, dict) else "or"
        ok = len(hits) == len(words) if operator == "and" else bool(hits)
        return float(len(hits)) if ok and words else None
    raise ApiFailure(400, "parsing_exception", f"unknown query [{kind}] (not in the fake)")


def _in_range(value: Any, bounds: dict[str, Any], fspec: dict[str, Any]) -> bool:
    """A range query's bounds (gt, gte, lt, lte) on a date (ISO strings, compared as
    instants) or a number."""
    def key(v: Any) -> Any:
        if fspec.get("type") == "date":
            moment = datetime.fromisoformat(str(v))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return float(v)
    unknown = set(bounds) - {"gt", "gte", "lt", "lte", "format", "time_zone"}
    if unknown:
        raise ApiFailure(400, "parsing_exception", f"[range] unknown field {sorted(unknown)}")
    v = key(value)
    checks = {"gt": lambda b: v > b, "gte": lambda b: v >= b,
              "lt": lambda b: v < b, "lte": lambda b: v <= b}
    return all(checks[op](key(b)) for op, b in bounds.items() if op in checks)


def _filter_source(source: dict[str, Any], spec: Any) -> dict[str, Any] | None:
    if spec is False:
        return None
    if isinstance(spec, list):
        return {k: v for k, v in source.items() if k in spec}
    if isinstance(spec, dict) and "includes" in spec:
        return {k: v for k, v in source.items() if k in spec["includes"]}
    return source


LONG_MAX, LONG_MIN = 2**63 - 1, -(2**63)


def _sort_key_value(hit: dict[str, Any], source: dict[str, Any], name: str, order: str,
                    props: dict[str, Any]) -> Any:
    if name == "_score":
        return hit["_score"]
    if name == "_id":
        return hit["_id"]
    value = source.get(name)
    if props.get(name, {}).get("type") == "date":
        # Elasticsearch sorts dates as epoch milliseconds and answers them so; a missing
        # one (sorted last) as the extreme long of the order
        if value is None:
            return LONG_MAX if order == "asc" else LONG_MIN
        return int(datetime.fromisoformat(str(value)).timestamp() * 1000)
    return value


def _sort_hits(hits: list[dict[str, Any]], sort: Any, search_after: Any,
               props: dict[str, Any]) -> list[dict[str, Any]]:
    # sort values come from the full source, whatever _source filtering returned
    full = {id(h): h.pop("_full") for h in hits}
    if not sort:
        hits.sort(key=lambda h: -h["_score"])
        return hits
    fields = []
    for item in sort if isinstance(sort, list) else [sort]:
        if isinstance(item, str):
            fields.append((item, "desc" if item == "_score" else "asc"))
        else:
            (name, spec), = item.items()
            order = spec.get("order", "asc") if isinstance(spec, dict) else spec
            fields.append((name, order))
    for hit in hits:
        hit["sort"] = [_sort_key_value(hit, full[id(hit)], name, order, props)
                       for name, order in fields]

    def key(hit: dict[str, Any]) -> tuple[Any, ...]:
        out = []
        for (_name, order), value in zip(fields, hit["sort"], strict=True):
            missing = value is None
            # missing values sort last in either direction, as in Elasticsearch
            if isinstance(value, (int, float)) and order == "desc":
                value = -value
            out.append((missing, _Desc(value) if order == "desc" and not
                        isinstance(value, (int, float)) else (value if not missing else "")))
        return tuple(out)

    hits.sort(key=key)
    if search_after is not None:
        after = {"sort": list(search_after)}
        hits = [h for h in hits if key(h) > key(after)]
    return hits


class _Desc:
    """Reverses the order of a string sort key."""

    def __init__(self, value: Any) -> None:
        self.value = "" if value is None else value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __gt__(self, other: _Desc) -> bool:
        return self.value < other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value


def _highlight(spec: dict[str, Any], query: dict[str, Any], source: dict[str, Any],
               where: str) -> dict[str, list[str]]:
    words = {w.lower() for w in _query_words(spec.get("highlight_query") or query)}
    pre, post = spec.get("pre_tags", ["<em>"])[0], spec.get("post_tags", ["</em>"])[0]
    size = spec.get("fragment_size", 100)
    out = {}
    for name, field_spec in spec.get("fields", {}).items():
        text = source.get(name.split(".")[0])
        if not isinstance(text, str):
            continue
        # the request's max_analyzed_offset truncates (the index setting prevails when
        # lower); without it a longer text fails the whole search
        offset = field_spec.get("max_analyzed_offset", spec.get("max_analyzed_offset"))
        if offset is None and len(text) > MAX_ANALYZED_OFFSET:
            raise ApiFailure(400, "illegal_argument_exception",
                             f"The length [{len(text)}] of field [{name}] in doc[{where}] "
                             "exceeds the [index.highlight.max_analyzed_offset] limit "
                             f"[{MAX_ANALYZED_OFFSET}]. To avoid this error, set the query "
                             "parameter [max_analyzed_offset] to a value less than index "
                             f"setting [{MAX_ANALYZED_OFFSET}] and this will tolerate long "
                             "field values by truncating them.")
        analyzed = text[:min(offset if offset is not None else len(text), MAX_ANALYZED_OFFSET)]
        found = [m for m in WORD_RE.finditer(analyzed) if m.group(0).lower() in words]
        if not found:
            continue
        start = max(0, found[0].start() - size // 3)
        end = min(len(text), start + size)
        piece, cursor = [], start
        for m in found:
            if m.start() >= start and m.end() <= end:
                piece.append(text[cursor:m.start()] + pre + m.group(0) + post)
                cursor = m.end()
        piece.append(text[cursor:end])
        out[name] = ["".join(piece)]
    return out


def _query_words(query: Any) -> list[str]:
    words: list[str] = []
    if isinstance(query, dict):
        for key, value in query.items():
            if key in ("multi_match", "simple_query_string"):
                words += WORD_RE.findall(value["query"])
            elif key in ("match", "match_phrase"):
                for v in value.values():
                    words += WORD_RE.findall(v["query"] if isinstance(v, dict) else v)
            elif key != "must_not":
                words += _query_words(value)
    elif isinstance(query, list):
        for item in query:
            words += _query_words(item)
    return words


# --------------------------------------------------------------------------- Kibana

def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def fast_store(url: str, spool_dir: Path, *, client_retries: int = 3,
               **bulk: int) -> ElasticStore:
    """An ElasticStore on `url` whose client and bulk retries wait milliseconds."""
    client = connect(url, max_retries=client_retries, backoff_base=0.01, backoff_cap=0.05)
    return ElasticStore(url, client=client, spool=Spool(spool_dir), bulk=replace(FAST, **bulk))

"""Every request the official client sends to the loopback Elasticsearch, and every answer
the fake gives, written as TypeScript constants typed with Elastic's own specification
(`../shared/es-spec/types-9.3.ts`) so that `tsc --strict` checks both directions.

Loaded as a pytest plugin (`-p tests.support.es_spec_capture`) with DOZOR_ES_SPEC_CAPTURE set to
a file, it records a whole run and writes the exchanges there as JSON lines; in the same
process as the test, `Capture.start()` records them directly.

Only object literals typed directly get TypeScript's excess-property check, so each body
is its own constant: `const r12: SearchRequest['body'] = {...}`. Bulk bodies are checked
line by line (action lines against `BulkOperationContainer`, the line after an update
against `BulkUpdateAction`); document sources are the caller's own and typed `unknown`
by the specification itself.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.elasticsearch import FakeElasticsearch
from tests.fakes.loopback import Recorded

ENV = "DOZOR_ES_SPEC_CAPTURE"
# The one analyzer type Dozor uses that the specification does not list: the
# analysis-ukrainian plugin's (the spec types only what Elasticsearch ships).
PLUGIN_ANALYZER_TYPES = ("ukrainian",)
PLUGIN_ANALYZER_TS = "{ type: 'ukrainian', stopwords?: string | string[] }"


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    query: dict[str, str]
    request: str  # the body as sent (JSON or NDJSON text), "" when none
    status: int
    response: Any  # None for HEAD
    test: str  # the test that caused it (PYTEST_CURRENT_TEST)

    def key(self) -> tuple[Any, ...]:
        return (self.method, _route_key(self.path), tuple(sorted(self.query)), self.request,
                self.status, json.dumps(self.response, sort_keys=True))


class Capture:
    """Exchanges seen while started, without duplicates."""

    def __init__(self) -> None:
        self.exchanges: dict[tuple[Any, ...], Exchange] = {}
        self.lock = threading.Lock()

    def observe(self, req: Recorded, status: int, payload: Any) -> None:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
        exchange = Exchange(req.method, req.path, dict(req.query),
                            req.body.decode("utf-8"), status, payload, test)
        with self.lock:
            self.exchanges.setdefault(exchange.key(), exchange)

    def start(self) -> Capture:
        FakeElasticsearch.observers.append(self.observe)
        return self

    def stop(self) -> None:
        if self.observe in FakeElasticsearch.observers:
            FakeElasticsearch.observers.remove(self.observe)

    def write(self, path: Path) -> None:
        """The exchanges as JSON lines, and every protocol problem any fake saw."""
        with path.open("w", encoding="utf-8") as out:
            for e in self.exchanges.values():
                out.write(json.dumps(e.__dict__, ensure_ascii=False) + "\n")
        problems_file(path).write_text(json.dumps(FakeElasticsearch.all_problems),
                                       encoding="utf-8")

    @staticmethod
    def read(path: Path) -> tuple[list[Exchange], list[str]]:
        exchanges = [Exchange(**json.loads(line))
                     for line in path.read_text(encoding="utf-8").splitlines()]
        return exchanges, json.loads(problems_file(path).read_text(encoding="utf-8"))


def problems_file(path: Path) -> Path:
    return path.with_name(path.name + ".problems.json")


# ------------------------------------------------------------------ pytest plugin

_run = Capture()


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(ENV):
        _run.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if os.environ.get(ENV):
        _run.stop()
        _run.write(Path(os.environ[ENV]))


# ------------------------------------------------------------------------ routes


def _route_key(path: str) -> str:
    # index names vary per test (dates, prefixes); the shape of the path does not
    return re.sub(r"[^/]+", lambda m: m.group(0) if m.group(0).startswith("_") else "x", path)


# (method, path pattern) -> spec name of the endpoint: <Name>Request / <Name>Response.
# `{}` stands for one path segment not starting with "_" (an index, alias or name).
ENDPOINTS: list[tuple[str, str, str]] = [
    ("GET", "", "Info"),
    ("GET", "_nodes/plugins", "NodesInfo"),
    ("GET", "_nodes/{}/plugins", "NodesInfo"),
    ("PUT", "_component_template/{}", "ClusterPutComponentTemplate"),
    ("GET", "_component_template/{}", "ClusterGetComponentTemplate"),
    ("DELETE", "_component_template/{}", "ClusterDeleteComponentTemplate"),
    ("PUT", "_index_template/{}", "IndicesPutIndexTemplate"),
    ("GET", "_index_template/{}", "IndicesGetIndexTemplate"),
    ("DELETE", "_index_template/{}", "IndicesDeleteIndexTemplate"),
    ("PUT", "_ilm/policy/{}", "IlmPutLifecycle"),
    ("GET", "_ilm/policy/{}", "IlmGetLifecycle"),
    ("DELETE", "_ilm/policy/{}", "IlmDeleteLifecycle"),
    ("GET", "_alias/{}", "IndicesGetAlias"),
    ("HEAD", "_alias/{}", "IndicesExistsAlias"),
    ("HEAD", "{}/_alias/{}", "IndicesExistsAlias"),
    ("GET", "{}/_alias/{}", "IndicesGetAlias"),
    ("PUT", "_bulk", "Bulk"),
    ("POST", "_bulk", "Bulk"),
    ("PUT", "{}/_bulk", "Bulk"),
    ("POST", "{}/_bulk", "Bulk"),
    ("POST", "_mget", "Mget"),
    ("GET", "_mget", "Mget"),
    ("POST", "{}/_mget", "Mget"),
    ("GET", "{}/_mget", "Mget"),
    ("PUT", "{}", "IndicesCreate"),
    ("HEAD", "{}", "IndicesExists"),
    ("DELETE", "{}", "IndicesDelete"),
    ("GET", "{}", "IndicesGet"),
    ("POST", "{}/_search", "Search"),
    ("GET", "{}/_search", "Search"),
    ("POST", "{}/_count", "Count"),
    ("GET", "{}/_count", "Count"),
    ("POST", "{}/_refresh", "IndicesRefresh"),
    ("GET", "{}/_refresh", "IndicesRefresh"),
    ("GET", "{}/_mapping", "IndicesGetMapping"),
    ("PUT", "{}/_mapping", "IndicesPutMapping"),
    ("POST", "{}/_mapping", "IndicesPutMapping"),
    ("POST", "{}/_rollover", "IndicesRollover"),
    ("GET", "_security/user/_has_privileges", "SecurityHasPrivileges"),
    ("POST", "_security/user/_has_privileges", "SecurityHasPrivileges"),
]


def endpoint(method: str, path: str) -> str | None:
    parts = [p for p in path.strip("/").split("/") if p]
    for m, pattern, name in ENDPOINTS:
        want = [p for p in pattern.split("/") if p]
        if m == method and len(want) == len(parts) and all(
            (w == "{}" and not p.startswith("_")) or w == p for w, p in zip(want, parts,
                                                                            strict=True)
        ):
            return name
    return None


# -------------------------------------------------------------------- TypeScript


def _ts(value: Any) -> str:
    # JSON is a TypeScript expression; an object literal in it gets the excess check
    return json.dumps(value, ensure_ascii=False, indent=1)


def _plugin_analyzers(body: Any) -> Iterator[dict[str, Any]]:
    """Takes the plugin analyzers out of a template body (they are typed on their own)."""
    if isinstance(body, dict):
        analyzers = body.get("analyzer")
        if isinstance(analyzers, dict):
            for name, spec in list(analyzers.items()):
                if isinstance(spec, dict) and spec.get("type") in PLUGIN_ANALYZER_TYPES:
                    yield analyzers.pop(name)
        for value in body.values():
            yield from _plugin_analyzers(value)
    elif isinstance(body, list):
        for value in body:
            yield from _plugin_analyzers(value)


@dataclass
class Typed:
    """One constant of the generated file, and where it came from."""

    type: str
    value: str
    origin: str


def typed_constants(exchanges: list[Exchange]) -> tuple[list[Typed], list[str]]:
    """The constants to check, and the exchanges no endpoint of the table covers."""
    out: list[Typed] = []
    unknown: list[str] = []
    for e in exchanges:
        name = endpoint(e.method, e.path)
        origin = f"{e.method} {e.path} -> {e.status} ({e.test or 'outside a test'})"
        if name is None:
            unknown.append(origin)
            continue
        req = f"{name}Request"
        if e.query:
            out.append(Typed(f"Partial<Record<keyof Omit<T.{req}, 'body'>, string>>",
                             _ts(e.query), origin + " query string"))
        if e.request and name == "Bulk":
            out += _bulk_lines(e.request, origin)
        elif e.request and not _refused_unparsed(e):
            body = json.loads(e.request)
            for analyzer in _plugin_analyzers(body):
                out.append(Typed("UkrainianPluginAnalyzer", _ts(analyzer), origin))
            out.append(Typed(f"NonNullable<T.{req}['body']>", _ts(body), origin + " request"))
        if e.method == "HEAD":
            continue  # answered with headers only
        response = "T.ErrorResponseBase" if e.status >= 400 else f"T.{name}Response"
        out.append(Typed(response, _ts(e.response), origin + " response"))
    return out, unknown


def _refused_unparsed(e: Exchange) -> bool:
    """A body the fake refused as Elasticsearch does when parsing it (a test sending an
    unknown field or field type on purpose): the refusal is the check."""
    error = e.response.get("error") if isinstance(e.response, dict) else None
    return e.status == 400 and isinstance(error, dict) and \
        error.get("type") in ("x_content_parse_exception", "mapper_parsing_exception")


def _bulk_lines(ndjson: str, origin: str) -> list[Typed]:
    out = []
    lines = [json.loads(line) for line in ndjson.splitlines() if line.strip()]
    i = 0
    while i < len(lines):
        action = lines[i]
        out.append(Typed("T.BulkOperationContainer", _ts(action), origin + f" bulk line {i}"))
        op = next(iter(action), "")
        if op == "update":
            out.append(Typed("T.BulkUpdateAction", _ts(lines[i + 1]),
                             origin + f" bulk line {i + 1}"))
        i += 1 if op == "delete" else 2
    return out


def typescript(constants: list[Typed], spec: Path) -> tuple[str, list[str]]:
    """The file's text and, per line, the origin of the constant on it."""
    head = [
        f"import type * as T from {json.dumps(str(spec.with_suffix('')))};",
        "// analysis-ukrainian's analyzer: a plugin type the specification does not list",
        f"type UkrainianPluginAnalyzer = {PLUGIN_ANALYZER_TS};",
    ]
    origins = [""] * len(head)
    seen: set[tuple[str, str]] = set()
    for n, c in enumerate(constants):
        if (c.type, c.value) in seen:
            continue
        seen.add((c.type, c.value))
        text = f"// {c.origin}\nexport const c{n}: {c.type} = {c.value};"
        lines = text.split("\n")
        head += lines
        origins += [c.origin] * len(lines)
    return "\n".join(head) + "\n", origins

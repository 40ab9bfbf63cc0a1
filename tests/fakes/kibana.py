"""A loopback stand-in for Kibana's saved-objects import that checks what it receives
(kbn-xsrf, multipart, references that resolve); see tests/fakes/elasticsearch.py."""

from __future__ import annotations

import base64
import json
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from tests.fakes.loopback import Handler, Recorded, Served

# The stored attributes Kibana's saved-object types accept (read from Kibana's own
# schemas: the data view, saved search 8.8, Lens and dashboard types), as Python types.
# Kibana validates an imported object against its type's schema and refuses what does
# not fit: an attribute it does not know (the types forbid unknowns) or of another type.
STR, BOOL, NUM, DICT, LIST = str, bool, (int, float), dict, list
SCHEMAS: dict[str, dict[str, Any]] = {
    "index-pattern": {"title": STR, "name": STR, "timeFieldName": STR, "fields": STR,
                      "fieldAttrs": STR, "sourceFilters": STR, "fieldFormatMap": STR,
                      "type": STR, "typeMeta": STR, "allowNoIndex": BOOL,
                      "runtimeFieldMap": STR, "allowHidden": BOOL},
    "search": {"title": STR, "description": STR, "columns": LIST, "sort": LIST,
               "grid": DICT, "rowHeight": NUM, "rowsPerPage": NUM, "sampleSize": NUM,
               "hideChart": BOOL, "breakdownField": STR, "kibanaSavedObjectMeta": DICT,
               "isTextBasedQuery": BOOL, "usesAdHocDataView": BOOL, "timeRestore": BOOL,
               "timeRange": DICT, "refreshInterval": DICT, "viewMode": STR,
               "hideAggregatedPreview": BOOL, "hits": NUM, "version": NUM, "density": STR,
               "headerRowHeight": NUM},
    "lens": {"title": STR, "description": (str, type(None)), "visualizationType": STR,
             "state": DICT, "uiStateJSON": STR, "visState": STR, "savedSearchRefName": STR},
    "dashboard": {"title": STR, "description": STR, "kibanaSavedObjectMeta": DICT,
                  "timeRestore": BOOL, "timeFrom": STR, "timeTo": STR,
                  "refreshInterval": DICT, "controlGroupInput": DICT, "panelsJSON": STR,
                  "optionsJSON": STR, "hits": NUM, "version": NUM},
}
REQUIRED = {"search": ("kibanaSavedObjectMeta",), "lens": ("visualizationType", "state")}


def _schema_problem(kind: str, attributes: dict[str, Any]) -> str | None:
    schema = SCHEMAS.get(kind)
    if schema is None:
        return f"type {kind!r} is not one Dozor imports (no schema to check it against)"
    for name, value in attributes.items():
        if name not in schema:
            return f"{kind} attribute {name!r} is not in the type's schema"
        expected = schema[name]
        if not isinstance(value, expected) or (expected is NUM and isinstance(value, bool)):
            return f"{kind} attribute {name!r} is {type(value).__name__}, not as the schema says"
    missing = [name for name in REQUIRED.get(kind, ()) if name not in attributes]
    if missing:
        return f"{kind} without {', '.join(missing)}"
    if kind == "search":
        if not all(isinstance(s, list) and len(s) == 2 for s in attributes.get("sort", [])):
            return "search sort entries are not [field, direction] pairs"
        if "searchSourceJSON" not in attributes["kibanaSavedObjectMeta"]:
            return "search without kibanaSavedObjectMeta.searchSourceJSON"
    if kind == "dashboard" and isinstance(attributes.get("refreshInterval"), dict):
        interval = attributes["refreshInterval"]
        if not isinstance(interval.get("pause"), bool) or not isinstance(
                interval.get("value"), NUM):
            return "dashboard refreshInterval needs pause (boolean) and value (number)"
    return None


JSON_ATTRIBUTES = ("panelsJSON", "optionsJSON", "fieldAttrs", "fieldFormatMap", "fields",
                   "runtimeFieldMap", "sourceFilters")


class FakeKibana(Served):
    """Kibana's saved-objects `_import` endpoint, checking each object it imports."""

    def __init__(self, api_key: str | None = None,
                 basic_auth: tuple[str, str] | None = None) -> None:
        self.api_key = api_key
        self.basic_auth = basic_auth
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.problems: list[str] = []
        self.unavailable = 0  # the next N requests answer 503 (Kibana starting)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeKibana:
        fake = self

        class KibanaHandler(Handler):
            def do_POST(self) -> None:
                status, payload = fake.handle(self.recorded())
                self.reply(status, payload, {"Content-Type": "application/json"})

        return self._serve(KibanaHandler)

    def handle(self, req: Recorded) -> tuple[int, Any]:
        self.requests.append(req)
        if self.unavailable:
            self.unavailable -= 1
            return 503, {"statusCode": 503, "error": "Service Unavailable",
                         "message": "Kibana server is not ready yet"}
        if req.path != "/api/saved_objects/_import":
            return 404, {"statusCode": 404, "error": "Not Found", "message": req.path}
        if not req.headers.get("kbn-xsrf"):
            self.problems.append("import without kbn-xsrf header")
            return 400, {"statusCode": 400, "error": "Bad Request",
                         "message": 'Request must contain a kbn-xsrf header.'}
        expected = None
        if self.api_key:
            expected = f"ApiKey {self.api_key}"
        elif self.basic_auth:
            expected = "Basic " + base64.b64encode(":".join(self.basic_auth).encode()).decode()
        if expected and req.headers.get("authorization") != expected:
            return 401, {"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"}
        ndjson = self._file_part(req)
        if ndjson is None:
            return 400, {"statusCode": 400, "error": "Bad Request", "message": "file missing"}
        return 200, self._import(ndjson, req.query.get("overwrite") == "true")

    def _file_part(self, req: Recorded) -> bytes | None:
        content_type = req.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            self.problems.append(f"import body is {content_type!r}, not multipart/form-data")
            return None
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + req.body)
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                filename = part.get_filename() or ""
                if not filename.endswith(".ndjson"):
                    self.problems.append(f"import file named {filename!r}, not *.ndjson")
                return part.get_payload(decode=True)
        self.problems.append("multipart body without a 'file' part")
        return None

    def _import(self, ndjson: bytes, overwrite: bool) -> dict[str, Any]:
        objects = []
        for n, line in enumerate(ndjson.decode("utf-8").splitlines()):
            if not line.strip():
                continue
            try:
                objects.append(json.loads(line))
            except ValueError:
                self.problems.append(f"line {n + 1} of the import file is not JSON")
        available = set(self.objects) | {(o.get("type"), o.get("id")) for o in objects}
        errors, results = [], []
        for obj in objects:
            key = (obj.get("type"), obj.get("id"))
            problem = self._object_problem(obj, available)
            if problem:
                self.problems.append(f"{key}: {problem}")
                errors.append({"type": key[0], "id": key[1],
                               "error": {"type": "unknown", "message": problem}})
                continue
            if key in self.objects and not overwrite:
                errors.append({"type": key[0], "id": key[1], "error": {"type": "conflict"}})
                continue
            result = {"type": key[0], "id": key[1],
                      "meta": {"title": obj["attributes"].get("title")}}
            if key in self.objects:
                result["overwrite"] = True
            self.objects[key] = obj
            results.append(result)
        answer: dict[str, Any] = {"success": not errors, "successCount": len(results),
                                  "successResults": results}
        if errors:
            answer["errors"] = errors
        return answer

    def _object_problem(self, obj: dict[str, Any],
                        available: set[tuple[str, str]]) -> str | None:
        for key in ("type", "id", "attributes", "references"):
            if key not in obj:
                return f"no {key!r}"
        if "coreMigrationVersion" not in obj or "typeMigrationVersion" not in obj:
            return "no migration versions (Kibana would migrate it from the oldest format)"
        attributes = obj["attributes"]
        if not attributes.get("title"):
            return "no title"
        problem = _schema_problem(obj["type"], attributes)
        if problem:
            return problem
        for name in JSON_ATTRIBUTES:
            if name in attributes:
                try:
                    json.loads(attributes[name])
                except (TypeError, ValueError):
                    return f"attribute {name} is not a JSON string"
        meta = attributes.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON")
        if meta is not None:
            try:
                search_source = json.loads(meta)
            except (TypeError, ValueError):
                return "searchSourceJSON is not a JSON string"
            ref = search_source.get("indexRefName")
            if ref and ref not in {r["name"] for r in obj["references"]}:
                return f"indexRefName {ref!r} has no reference"
        for ref in obj["references"]:
            if (ref["type"], ref["id"]) not in available:
                return f"missing reference {ref['type']}:{ref['id']}"
        if obj["type"] == "dashboard":
            names = {r["name"] for r in obj["references"]}
            for panel in json.loads(attributes["panelsJSON"]):
                ref_name = panel.get("panelRefName")
                if ref_name and f"{panel['panelIndex']}:{ref_name}" not in names:
                    return f"panel {panel['panelIndex']} refers to {ref_name!r}, not referenced"
        if obj["type"] == "lens":
            names = {r["name"] for r in obj["references"]}
            layers = attributes["state"]["datasourceStates"]["formBased"]["layers"]
            for layer_id, layer in layers.items():
                if f"indexpattern-datasource-layer-{layer_id}" not in names:
                    return f"lens layer {layer_id} has no data view reference"
                if set(layer["columnOrder"]) != set(layer["columns"]):
                    return f"lens layer {layer_id}: columnOrder and columns differ"
        return None

"""The service's OpenAPI document: BentoML's own, completed with every status the service can answer (BentoML
lists only 400/404/500, and 200 for the probes) and the real shapes of its answers and errors, so a client
generator or a property-based tester (schemathesis, in the HTTP tests) meets the service as it is."""

from __future__ import annotations

from typing import Any

from serving.guard import JSON_ENDPOINTS
from serving.schemas import Estimate, EstimateBatch

_EXTRA_STATUSES = {
    413: "Request body over 1 MiB",
    415: "Body is not application/json",
    503: "Models or workload snapshot not loaded yet",
}
_REF = "#/components/schemas/{model}"
# What the error answers look like (BentoML documents `detail` as a string; pydantic's 400 carries a list).
_ERROR_SCHEMAS = {
    "ValidationErrorBody": {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string"},
            "detail": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["loc", "msg"],
                    "properties": {
                        "loc": {"type": "array", "items": {}},
                        "msg": {"type": "string"},
                        "known": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    "ErrorBody": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    },
}


def _openapi30(node: Any) -> Any:
    """pydantic's JSON Schema -> OpenAPI 3.0 (the version BentoML declares): `X | None` becomes nullable."""
    if isinstance(node, list):
        return [_openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if options and {"type": "null"} in options and len(options) == 2:
        (other,) = [option for option in options if option != {"type": "null"}]
        rest = {k: _openapi30(v) for k, v in node.items() if k != "anyOf"}
        return {**_openapi30(other), **rest, "nullable": True} if "$ref" not in other else rest | {"nullable": True}
    return {k: _openapi30(v) for k, v in node.items()}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _answer_parameters(explained: bool) -> list[dict[str, Any]]:
    """The `explain` query parameter and the Accept-Language header of the estimate endpoints."""
    return [
        {
            "name": "explain",
            "in": "query",
            "required": False,
            "description": f"Include `explanation` (default {str(explained).lower()}; a row's own field wins).",
            "schema": {"type": "boolean", "default": explained},
        },
        {
            "name": "Accept-Language",
            "in": "header",
            "required": False,
            "description": "Language of rows without a `language` field (en, es, ko, hy, zh-Hans).",
            "schema": {"type": "string"},
        },
    ]


def complete_openapi(doc: dict[str, Any]) -> dict[str, Any]:
    """BentoML's OpenAPI document (`doc`, changed in place and returned) with every status this service can
    answer and the real answer shapes."""
    from serving.open311 import Open311Error, Open311Request, Open311Response

    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in (Estimate, EstimateBatch, Open311Request, Open311Response, Open311Error):
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(_openapi30(schema.pop("$defs", {})))
        schemas[model.__name__] = _openapi30(schema)
    schemas.update(_ERROR_SCHEMAS)
    ref = {name: {"$ref": _REF.format(model=name)} for name in schemas}
    georeport_errors = {"type": "array", "items": ref["Open311Error"]}
    for path, item in doc.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"] = {str(k): v for k, v in operation["responses"].items()}
            if "422" in responses:  # FastAPI's query validation; answered as 400 by `_bad_query`
                responses.pop("422")
                responses["400"] = _json(ref["ValidationErrorBody"], "Invalid query parameter")
            if path in JSON_ENDPOINTS:
                responses.pop("404", None)
                responses.pop("500", None)
                answer = ref["Estimate"] if path == "/estimate" else ref["EstimateBatch"]
                responses["200"] = _json(answer, "The estimate(s)")
                responses["400"] = _json(ref["ValidationErrorBody"], "Invalid input: `detail` names each field")
                for status, text in _EXTRA_STATUSES.items():
                    responses[str(status)] = _json(ref["ErrorBody"], text)
                operation.setdefault("parameters", []).extend(_answer_parameters(path == "/estimate"))
            elif path == "/open311/estimate":
                responses["200"] = _json({"type": "array", "items": ref["Open311Response"]}, "A GeoReport list")
                for status in ("400", "413", "415", "503"):
                    responses[status] = _json(georeport_errors, responses[status]["description"])
            elif path in ("/dashboard", "/forecast/departments"):
                responses["400"] = _json(
                    ref["ValidationErrorBody"],
                    "Unknown department (`detail[0].known` lists the departments of the forecast) or invalid query",
                )
                responses["503"] = _json(
                    ref["ErrorBody"],
                    "Dashboard being computed (`Retry-After` says when to retry), or its inputs missing (the "
                    "detail says which)",
                ) | {"headers": {"Retry-After": {"description": "Seconds", "schema": {"type": "integer"}}}}
            elif path == "/readyz":
                responses["503"] = {"description": "Not ready: the JSON detail says what is missing"}
            responses.setdefault("413", _json(ref["ErrorBody"], _EXTRA_STATUSES[413]))
    return doc

"""``GET /openapi.json``: the schema is derived from the routes list, so it cannot
drift from what the relay serves."""

from __future__ import annotations

import inspect
from typing import Any

from starlette.routing import Route

from carinho_pipelines import catalogue

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}
_ACCEPTED = {
    "type": "object",
    "required": ["event_id", "duplicate"],
    "properties": {"event_id": {"type": "integer"}, "duplicate": {"type": "boolean"}, "status": {"type": "string"}},
}
_ERROR_STATUSES = {
    "400": "malformed JSON",
    "401": "missing or invalid credentials / signature",
    "403": "credentials without the right to this route or event",
    "413": "body over 1 MiB",
    "415": "not JSON",
    "422": "failed validation (which field and why)",
    "503": "event store unavailable (Retry-After)",
}
_CANONICAL_EVENT = {
    "type": "object",
    "required": ["event_type", "source_system", "payload"],
    "properties": {
        "event_type": {"type": "string", "enum": list(catalogue.EVENT_TYPES)},
        "source_system": {"type": "string"},
        "payload": {"type": "object"},
        "idempotency_key": {"type": "string", "maxLength": 255},
    },
}


def _operation(route: Route, method: str) -> dict[str, Any]:
    doc = inspect.getdoc(route.endpoint) or ""
    summary, _, description = doc.partition("\n\n")
    op: dict[str, Any] = {"summary": summary.replace("\n", " "), "operationId": f"{method}_{route.endpoint.__name__}"}
    if description:
        op["description"] = description
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.param_convertors
    ]
    if params:
        op["parameters"] = params
    if method == "post":
        body_schema = _CANONICAL_EVENT if route.path == "/api/events" else {"type": "object"}
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_schema}}}
        responses = {"202": {"description": "accepted (or a duplicate of an accepted event)",
                             "content": {"application/json": {"schema": _ACCEPTED}}}}
        for status, text in _ERROR_STATUSES.items():
            responses[status] = {"description": text, "content": {"application/json": {"schema": _ERROR}}}
        op["responses"] = responses
        op["security"] = [{"zapiToken": []}, {"zapiHeader": []}] if route.path.startswith("/webhooks/whatsapp") else [{"bearer": []}, {"internalToken": []}, {"apiKey": []}]
    else:
        op["responses"] = {"200": {"description": "OK"}, "503": {"description": "degraded"}}
    return op


def build_schema(routes: list[Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in routes:
        if not isinstance(route, Route) or not route.include_in_schema:
            continue
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            paths.setdefault(route.path, {})[method.lower()] = _operation(route, method.lower())
    return {
        "openapi": "3.0.3",
        "info": {"title": "Carinho Integrações relay", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "internalToken": {"type": "apiKey", "in": "header", "name": "X-Internal-Token"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "zapiToken": {"type": "apiKey", "in": "query", "name": "token"},
                "zapiHeader": {"type": "apiKey", "in": "header", "name": "z-api-token"},
            }
        },
    }

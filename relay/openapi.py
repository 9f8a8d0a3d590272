"""``GET /openapi.json`` (OpenAPI 3.1) and ``GET /docs`` (Swagger UI, served from the
``swagger-ui-bundle-v2`` package: no CDN).

The document is derived, never written by hand: paths from the routes list, each
route's bodies and answers from :data:`OPERATIONS`, every schema from the objects the
relay validates with (:mod:`relay.schemas`, the catalogue's payload schemas). A schema
used in several places is emitted once under ``components.schemas`` and referenced.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from carinho_pipelines.kernel import catalogue, settings
from carinho_pipelines.kernel.errors import ERROR_CLASSES

from . import schemas as s
from .events_api import MAX_PER_PAGE, STATES

OPENAPI_VERSION = "3.1.0"

_ERROR_TEXT = {
    "400": "malformed JSON",
    "401": "missing or invalid credentials / signature",
    "403": "credentials without the right to this route, event or scope",
    "404": "not found",
    "409": "conflict with the current state",
    "413": "body over 1 MiB",
    "415": "not JSON",
    "422": "failed validation: `fields` lists every invalid or missing field",
    "503": "a backend is unavailable (Retry-After)",
}
_WEBHOOK_ERRORS = ("400", "401", "403", "413", "415", "422", "503")
SYSTEM_AUTH = [{"bearer": []}, {"internalToken": []}, {"apiKey": []}]
ZAPI_AUTH = [{"zapiToken": []}, {"zapiHeader": []}]
KEY_AUTH = [{"apiKey": []}, {"bearer": []}]


@dataclass(frozen=True)
class Op:
    """What a route takes and answers, for the reference."""

    #: status → schema (None: no JSON body); errors get the error schema
    responses: dict[str, dict[str, Any] | None]
    body: dict[str, Any] | None = None
    body_required: bool = True
    #: media-type examples: name → value
    examples: dict[str, Any] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    params: tuple[dict[str, Any], ...] = ()
    security: list[dict[str, list]] | None = None
    tag: str = "operations"
    media_type: str = "application/json"


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _page(max_per_page: int, default: int) -> tuple[dict[str, Any], ...]:
    return (_query("page", {"type": "integer", "minimum": 1, "maximum": 10**6, "default": 1}),
            _query("per_page", {"type": "integer", "minimum": 1, "maximum": max_per_page, "default": default}))


_TIME = {"type": "string", "format": "date-time"}
_SYSTEM = {"type": "string", "enum": list(settings.SYSTEMS)}


def _webhook(event_type: str, *extra: dict[str, Any]) -> Op:
    spec = catalogue.CATALOGUE[event_type]
    body = {"allOf": [s.PAYLOADS[event_type], *extra]} if extra else s.PAYLOADS[event_type]
    return Op({"202": s.ACCEPTED}, body=body, examples={event_type: spec.example}, errors=_WEBHOOK_ERRORS,
              security=SYSTEM_AUTH, tag="webhooks")


def _canonical_events() -> dict[str, Any]:
    """``POST /api/events``: one alternative per event type a system may post."""
    alternatives = []
    for name in s.POSTABLE:
        alternatives.append({
            "title": name,
            "allOf": [s.CANONICAL_EVENT],
            "properties": {"event_type": {"const": name}, "source_system": {"enum": list(s.POSTABLE[name])},
                           "payload": s.PAYLOADS[name]},
        })
    return {"oneOf": alternatives}


def _canonical_examples() -> dict[str, Any]:
    return {
        name: {"event_type": name, "source_system": origins[0], "payload": catalogue.CATALOGUE[name].example,
               "idempotency_key": f"{origins[0]}-{name}-0001"}
        for name, origins in s.POSTABLE.items()
    }


OPERATIONS: dict[tuple[str, str], Op] = {
    # -- webhooks ---------------------------------------------------------------------
    ("post", "/webhooks/whatsapp"): Op(
        {"202": s.ACCEPTED},
        body={"anyOf": [s.ZAPI_RECEIVED, s.ZAPI_STATUS, s.ZAPI_DELIVERY, s.ZAPI_CONNECTION, s.ZAPI_PRESENCE]},
        examples={"ReceivedCallback": s.ZAPI_RECEIVED["examples"][0]}, errors=_WEBHOOK_ERRORS, security=ZAPI_AUTH,
        tag="webhooks"),
    ("post", "/webhooks/whatsapp/status"): Op(
        {"202": s.ACCEPTED}, body={"anyOf": [s.ZAPI_STATUS, s.ZAPI_DELIVERY]},
        examples={"MessageStatusCallback": s.ZAPI_STATUS["examples"][0]}, errors=_WEBHOOK_ERRORS, security=ZAPI_AUTH,
        tag="webhooks"),
    ("post", "/webhooks/site/lead"): _webhook("lead.created", s.WEBHOOK_EXTRAS),
    ("post", "/webhooks/crm/client-registered"): _webhook("client.registered", s.WEBHOOK_EXTRAS),
    ("post", "/webhooks/operacao/service-completed"): _webhook("service.completed", s.WEBHOOK_EXTRAS),
    ("post", "/webhooks/financeiro/payment"): _webhook("payment.received", s.PAYMENT_STATUS, s.WEBHOOK_EXTRAS),
    ("post", "/webhooks/financeiro/payout"): _webhook("payout.processed", s.WEBHOOK_EXTRAS),
    ("post", "/webhooks/cuidadores/feedback"): _webhook("feedback.received", s.WEBHOOK_EXTRAS),
    ("post", "/webhooks/systems/{system}"): Op(
        {"202": s.ACCEPTED}, body=s.SYSTEM_EVENT,
        examples={"lead.updated": {"event_type": "lead.updated",
                                   "payload": catalogue.CATALOGUE["lead.updated"].example}},
        errors=(*_WEBHOOK_ERRORS, "404"), security=SYSTEM_AUTH, tag="webhooks",
        params=(_path("system", _SYSTEM, "the sending system (must match the token)"),
                {"name": "X-Event-Type", "in": "header", "required": False,
                 "schema": {"type": "string", "enum": list(catalogue.EVENT_TYPES)},
                 "description": "the event type (else the body's `event_type`)"})),
    ("post", "/api/events"): Op(
        {"202": s.ACCEPTED}, body=_canonical_events(), examples=_canonical_examples(), errors=_WEBHOOK_ERRORS,
        security=SYSTEM_AUTH, tag="webhooks"),
    # -- operations API -----------------------------------------------------------------
    ("get", "/api/events"): Op(
        {"200": s.EVENT_LIST}, errors=("401", "403", "422", "503"), security=KEY_AUTH,
        params=(_query("type", {"type": "string"}, "event type"), _query("source", {"type": "string"}),
                _query("status", {"type": "string", "enum": list(STATES)}),
                _query("from", _TIME, "received at or after"), _query("to", _TIME, "received at or before"),
                _query("phone", {"type": "string"}, "a person's phone, any format (exact match, hashed)"),
                _query("email", {"type": "string", "format": "email"}, "a person's e-mail (exact match, hashed)"),
                _query("cpf", {"type": "string"}, "a person's CPF, with or without punctuation (exact match, hashed)"),
                *_page(MAX_PER_PAGE, 50))),
    ("get", "/api/events/{id}"): Op(
        {"200": s.EVENT_DETAIL}, errors=("401", "403", "404", "503"), security=KEY_AUTH,
        params=(_path("id", {"type": "integer"}, "the event id"),)),
    ("get", "/api/dlq"): Op(
        {"200": s.DLQ_LIST}, errors=("401", "403", "422", "503"), security=KEY_AUTH,
        params=(_query("type", {"type": "string"}, "event type"), _query("source", {"type": "string"}),
                _query("kind", {"type": "string", "enum": ["event", "sync"]}),
                _query("error_class", {"type": "string", "enum": list(ERROR_CLASSES)}),
                _query("since", _TIME), _query("until", _TIME),
                _query("include_archived", {"type": "boolean", "default": False}), *_page(100, 20))),
    ("get", "/api/dlq/stats"): Op({"200": s.DLQ_STATS}, errors=("401", "403", "503"), security=KEY_AUTH),
    ("get", "/api/dlq/{id}"): Op(
        {"200": s.DLQ_DETAIL}, errors=("401", "403", "404", "503"), security=KEY_AUTH,
        params=(_path("id", {"type": "string"}, "the failed run's id"),)),
    ("post", "/api/dlq/{id}/retry"): Op(
        {"202": s.RETRY_RESULT, "200": s.RETRY_RESULT, "409": s.BREAKER_HOLD},
        errors=("400", "401", "403", "404", "415", "422", "503"), security=KEY_AUTH,
        params=(_path("id", {"type": "string"}, "the failed run's id"),), body=s.RETRY_BODY, body_required=False),
    ("post", "/api/dlq/{id}/archive"): Op(
        {"200": s.ARCHIVE_RESULT}, body=s.ARCHIVE_BODY, errors=("400", "401", "403", "404", "409", "415", "422", "503"),
        security=KEY_AUTH, params=(_path("id", {"type": "string"}, "the failed run's id"),)),
    ("post", "/api/dlq/retry-all"): Op(
        {"202": s.RETRY_ALL_RESULT}, body=s.RETRY_ALL_BODY, errors=("400", "401", "403", "415", "422", "503"),
        security=KEY_AUTH),
    ("get", "/api/sync"): Op(
        {"200": s.SYNC_LIST}, errors=("401", "403", "404", "422", "503"), security=KEY_AUTH,
        params=(_query("sync", {"type": "string", "enum": s.SYNC_NAMES}),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 50, "default": 10}))),
    ("post", "/api/sync/{name}/run"): Op(
        {"202": s.SYNC_RUN_RESULT}, body=s.SYNC_RUN_BODY, body_required=False,
        errors=("400", "401", "403", "404", "409", "422", "503"), security=KEY_AUTH,
        params=(_path("name", {"type": "string", "enum": s.SYNC_NAMES}),)),
    ("post", "/api/dlq/recover"): Op(
        {"202": s.RECOVER_RESULT, "200": s.RECOVER_RESULT}, body=s.RECOVER_BODY,
        errors=("400", "401", "403", "415", "422", "503"), security=KEY_AUTH),
    ("get", "/api/destinations"): Op({"200": s.DESTINATION_LIST}, errors=("401", "403", "503"), security=KEY_AUTH),
    ("post", "/api/destinations/{name}/pause"): Op(
        {"200": s.PAUSE_RESULT}, body=s.PAUSE_BODY, errors=("400", "401", "403", "404", "415", "422", "503"),
        security=KEY_AUTH, params=(_path("name", {"type": "string"}, "the destination"),)),
    ("post", "/api/destinations/{name}/resume"): Op(
        {"200": s.RESUME_RESULT}, errors=("401", "403", "404", "503"), security=KEY_AUTH,
        params=(_path("name", {"type": "string"}, "the destination"),)),
    ("post", "/api/privacy/erase"): Op(
        {"200": s.ERASE_RESULT}, body=s.ERASE_BODY, errors=("400", "401", "403", "415", "422", "503"),
        security=KEY_AUTH),
    # -- health and monitoring ----------------------------------------------------------
    ("get", "/health"): Op({"200": s.HEALTH}, security=[], tag="health"),
    ("get", "/health/ready"): Op({"200": s.HEALTH_READY, "503": s.HEALTH_READY}, security=[], tag="health"),
    ("get", "/health/detailed"): Op({"200": s.HEALTH_DETAILED, "503": s.HEALTH_DETAILED}, security=[], tag="health"),
    ("get", "/status"): Op({"200": s.STATUS}, errors=("401", "403", "503"), security=KEY_AUTH, tag="health"),
    ("get", "/metrics"): Op({"200": {"type": "string", "description": "Prometheus text exposition format"}},
                            errors=("401", "403", "503"), security=[], tag="health",
                            media_type="text/plain"),
}

#: every schema worth a name in ``components.schemas``
COMPONENTS: dict[str, dict[str, Any]] = {
    **s.PAYLOADS,
    "CanonicalEvent": s.CANONICAL_EVENT, "SystemEvent": s.SYSTEM_EVENT, "WebhookExtras": s.WEBHOOK_EXTRAS,
    "PaymentStatus": s.PAYMENT_STATUS,
    "ReceivedCallback": s.ZAPI_RECEIVED, "MessageStatusCallback": s.ZAPI_STATUS, "DeliveryCallback": s.ZAPI_DELIVERY,
    "ConnectionCallback": s.ZAPI_CONNECTION, "PresenceChatCallback": s.ZAPI_PRESENCE,
    "Accepted": s.ACCEPTED, "Error": s.ERROR, "FieldProblem": s.FIELD_PROBLEM, "PageMeta": s.PAGE_META,
    "EventSummary": s.EVENT_SUMMARY, "EventList": s.EVENT_LIST, "EventDetail": s.EVENT_DETAIL,
    "RunRef": s.RUN_REF, "ActionOutcome": s.ACTION_OUTCOME,
    "DlqItem": s.DLQ_ITEM, "DlqList": s.DLQ_LIST, "DlqDetail": s.DLQ_DETAIL, "DlqStats": s.DLQ_STATS,
    "RetryResult": s.RETRY_RESULT, "ArchiveBody": s.ARCHIVE_BODY, "ArchiveResult": s.ARCHIVE_RESULT,
    "RetryBody": s.RETRY_BODY, "BreakerHold": s.BREAKER_HOLD, "RetryAllBody": s.RETRY_ALL_BODY, "RetryAllResult": s.RETRY_ALL_RESULT,
    "SyncRunBody": s.SYNC_RUN_BODY, "SyncRunResult": s.SYNC_RUN_RESULT, "SyncRun": s.SYNC_RUN,
    "SyncList": s.SYNC_LIST, "RecoverBody": s.RECOVER_BODY, "RecoverResult": s.RECOVER_RESULT, "PauseBody": s.PAUSE_BODY, "PauseResult": s.PAUSE_RESULT, "ResumeResult": s.RESUME_RESULT,
    "DestinationList": s.DESTINATION_LIST, "EraseBody": s.ERASE_BODY, "EraseResult": s.ERASE_RESULT, "Status": s.STATUS, "Health": s.HEALTH, "HealthReady": s.HEALTH_READY, "HealthDetailed": s.HEALTH_DETAILED,
}
_BY_ID = {id(schema): name for name, schema in COMPONENTS.items()}


def _refs(node: Any, top: Any = None) -> Any:
    """A copy of ``node`` where every named schema (but ``top``) is a ``$ref``."""
    if isinstance(node, dict):
        if node is not top and id(node) in _BY_ID:
            return {"$ref": f"#/components/schemas/{_BY_ID[id(node)]}"}
        return {k: _refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_refs(v) for v in node]
    return node


def _json(schema: dict[str, Any] | None) -> dict[str, Any]:
    return {"application/json": {"schema": schema}} if schema is not None else {}


def _operation(route: Route, method: str) -> dict[str, Any]:
    doc = inspect.getdoc(route.endpoint) or ""
    summary, _, description = doc.replace("``", "`").partition("\n\n")
    spec = OPERATIONS[(method, route.path)]
    op: dict[str, Any] = {
        "tags": [spec.tag],
        "summary": summary.replace("\n", " "),
        "operationId": f"{method}_{route.endpoint.__name__}",
    }
    if description:
        op["description"] = description
    if spec.params:
        op["parameters"] = list(spec.params)
    if spec.body is not None:
        media: dict[str, Any] = {"schema": spec.body}
        if spec.examples:
            media["examples"] = {name: {"summary": name, "value": value} for name, value in spec.examples.items()}
        op["requestBody"] = {"required": spec.body_required, "content": {"application/json": media}}
    responses: dict[str, Any] = {}
    for status, schema in spec.responses.items():
        text = "accepted (or a duplicate of an accepted event)" if status == "202" and spec.tag == "webhooks" else "OK"
        content = {spec.media_type: {"schema": schema}} if schema is not None else {}
        responses[status] = {"description": text, **({"content": content} if content else {})}
    for status in spec.errors:
        responses.setdefault(status, {"description": _ERROR_TEXT[status], "content": _json(s.ERROR)})
    op["responses"] = responses
    if spec.security is not None:
        op["security"] = spec.security
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
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Carinho Integrações relay",
            "version": "1",
            "description": "Webhooks in (each event type's payload is a schema under components), the operations "
                           "API (DLQ, events, syncs) and health. Errors are `{\"error\", \"message\", ...}`; a 422 "
                           "lists every invalid field in `fields`.",
        },
        "tags": [{"name": "webhooks", "description": "events from Z-API and the internal systems"},
                 {"name": "operations", "description": "operations API (API keys with scopes)"},
                 {"name": "health", "description": "liveness, readiness, §7 metrics"}],
        "paths": _refs(paths),
        "components": {
            "schemas": {name: _refs(schema, top=schema) for name, schema in COMPONENTS.items()},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "a system's token (webhooks) or an API key (operations API)"},
                "internalToken": {"type": "apiKey", "in": "header", "name": "X-Internal-Token"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "zapiToken": {"type": "apiKey", "in": "query", "name": "token"},
                "zapiHeader": {"type": "apiKey", "in": "header", "name": "z-api-token"},
            },
        },
    }


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(build_schema(request.app.routes))


#: the Swagger UI assets, from the swagger-ui-bundle-v2 package
DOCS_ASSETS = "/docs/assets"

_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Carinho Integrações relay — API reference</title>
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "{schema}", dom_id: "#swagger-ui", deepLinking: true,
                                 defaultModelsExpandDepth: 0, docExpansion: "list"}});
  </script>
</body>
</html>
"""


async def docs(_request: Request) -> HTMLResponse:
    """The rendered reference (Swagger UI) of ``/openapi.json``."""
    return HTMLResponse(_DOCS_PAGE.format(assets=DOCS_ASSETS, schema="/openapi.json"))


def docs_assets():
    """Swagger UI's files, installed by pip (``swagger-ui-bundle-v2``)."""
    from starlette.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    return StaticFiles(directory=str(swagger_ui_path))

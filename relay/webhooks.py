"""Inbound webhook endpoints (CONTRACTS §2.1, §2.2)."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

import anyio
import anyio.to_thread
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from carinho_pipelines.kernel import catalogue, settings
from carinho_pipelines.kernel.privacy import mask_phone

from . import normalise, schemas, validation
from .auth import authenticate_system, authenticate_zapi, require_system, verify_signature
from .bodies import read_json_object
from .errors import ApiError
from .group_commit import GroupCommitter
from carinho_pipelines.store import Envelope, EventStore, StoreUnavailable

log = logging.getLogger("relay.webhooks")

STORE_RETRY_AFTER_SECONDS = 5


def _store(request: Request) -> EventStore:
    return request.app.state.store


def _ingest_limiter(request: Request) -> anyio.CapacityLimiter:
    """At most ``store.write_slots`` ingests at once (made by the app's lifespan): the
    others wait here, cheaply, instead of in threads queued on the connection pool."""
    return request.app.state.ingest_limiter


def _committer(request: Request) -> GroupCommitter:
    """The app's group committer (made and drained by its lifespan)."""
    return request.app.state.group_committer


async def commit(
    request: Request,
    env: Envelope,
    *,
    status_update: tuple[str, Iterable[str]] | None = None,
    compat: bool = False,
) -> JSONResponse:
    """Commit ``env`` and answer 202 — only after the commit; 503 if the store is down."""
    try:
        if status_update is None:
            result = await _committer(request).ingest(env)
        else:  # a WhatsApp status moves the status table in the same transaction
            result = await anyio.to_thread.run_sync(
                functools.partial(_store(request).ingest, env, status_update=status_update),
                limiter=_ingest_limiter(request),
            )
    except StoreUnavailable as exc:
        log.error("event store unavailable (%s); answered 503", exc)
        raise ApiError(
            503,
            "store_unavailable",
            "the event store is unavailable; nothing was stored, retry later",
            headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
        ) from exc
    log.info(
        "event %s %s type=%s source=%s queue=%s%s",
        result.event_id,
        "duplicate" if result.duplicate else "stored",
        env.event_type,
        env.source,
        env.queue,
        f" filtered={env.filtered_reason}" if env.filtered_reason else "",
    )
    body: dict[str, Any] = {"event_id": result.event_id, "duplicate": result.duplicate}
    if compat:
        body["status"] = "received"
    submitter = request.app.state.submitter
    background = None
    if submitter is not None and not result.duplicate and env.filtered_reason is None and env.available_at is None:
        background = BackgroundTask(submitter.submit, result.event_id, env.queue)
    return JSONResponse(body, status_code=202, background=background)


def _idempotency_key(request: Request, body: dict[str, Any]) -> str | None:
    return request.headers.get("webhook-id") or body.get("idempotency_key") or request.headers.get("idempotency-key")


async def _system_event(
    request: Request,
    system: str,
    event_type: str | dict[str, str],
    *,
    extra_schema: dict[str, Any] = schemas.WEBHOOK_EXTRAS,
    occurred_key: str = "occurred_at",
) -> JSONResponse:
    """A dedicated route: the body is the event's payload (plus ``idempotency_key``).
    ``event_type`` may map the body's ``status`` to the type (the payment route)."""
    require_system(request, system)
    raw, body = await read_json_object(request)
    verify_signature(request, system, raw)
    if isinstance(event_type, dict):  # the payment route: the type follows ``status`` (checked by extra_schema)
        status = body.get("status")
        event_type = event_type[status] if isinstance(status, str) and status in event_type else \
            next(iter(event_type.values()))
    env = normalise.system_envelope(
        event_type=event_type,
        source=system,
        payload={k: v for k, v in body.items() if k != "idempotency_key"},
        idempotency_key=_idempotency_key(request, body),
        occurred_at=body.get(occurred_key) or body.get("occurred_at") or body.get("timestamp"),
        problems=validation.problems(extra_schema, body),
    )
    return await commit(request, env, compat=True)


# -- dedicated routes -------------------------------------------------------------


@dataclass(frozen=True)
class WebhookRoute:
    """A system's dedicated route: the body is the event's payload (plus ``idempotency_key``)."""

    path: str
    #: the endpoint's name (the OpenAPI ``operationId``) and its summary
    name: str
    doc: str
    system: str
    #: the event type, or the body's ``status`` → type (the payment route)
    event_type: str | dict[str, str]
    extra_schema: dict[str, Any] = field(default_factory=lambda: schemas.WEBHOOK_EXTRAS)
    #: the body field holding when it happened (``occurred_at`` and ``timestamp`` are tried too)
    occurred_key: str = "occurred_at"


PAYMENT_STATUSES = {"received": "payment.received", "paid": "payment.received", "failed": "payment.failed"}

#: every dedicated route (CONTRACTS §2.2), one row each
WEBHOOK_ROUTES: tuple[WebhookRoute, ...] = (
    WebhookRoute("/webhooks/site/lead", "site_lead", "Site form lead → ``lead.created``.", "site", "lead.created"),
    WebhookRoute("/webhooks/crm/client-registered", "crm_client_registered",
                 "CRM client registered → ``client.registered``.", "crm", "client.registered"),
    WebhookRoute("/webhooks/operacao/service-completed", "operacao_service_completed",
                 "Operação service completed → ``service.completed``.", "operacao", "service.completed"),
    WebhookRoute("/webhooks/financeiro/payment", "financeiro_payment",
                 "Financeiro payment → ``payment.received`` (received/paid) or ``payment.failed``.",
                 "financeiro", PAYMENT_STATUSES, extra_schema=schemas.PAYMENT_STATUS, occurred_key="paid_at"),
    WebhookRoute("/webhooks/financeiro/payout", "financeiro_payout", "Financeiro payout processed → ``payout.processed``.",
                 "financeiro", "payout.processed", occurred_key="processed_at"),
    WebhookRoute("/webhooks/cuidadores/feedback", "cuidadores_feedback", "Cuidadores feedback → ``feedback.received``.",
                 "cuidadores", "feedback.received"),
)


def webhook_endpoint(route: WebhookRoute):
    """The endpoint of one :class:`WebhookRoute`."""
    async def endpoint(request: Request) -> JSONResponse:
        return await _system_event(request, route.system, route.event_type, extra_schema=route.extra_schema,
                                   occurred_key=route.occurred_key)

    endpoint.__name__ = endpoint.__qualname__ = route.name
    endpoint.__doc__ = route.doc
    return endpoint


# -- generic routes ---------------------------------------------------------------

_META_KEYS = {"event_type", "event", "type", "source", "source_system", "idempotency_key", "timestamp", "payload", "data"}


async def system_webhook(request: Request) -> JSONResponse:
    """Any catalogued type from a system: ``X-Event-Type`` or body ``event_type``.

    Also accepts the legacy envelopes other modules send (``{event_type|type|event,
    data|payload, source, timestamp}``)."""
    system = request.path_params["system"]
    if system not in settings.SYSTEMS:
        raise ApiError(404, "not_found", f"unknown system {system!r}", known=list(settings.SYSTEMS))
    require_system(request, system)
    raw, body = await read_json_object(request)
    verify_signature(request, system, raw)
    event_type = request.headers.get("x-event-type") or body.get("event_type") or body.get("type") or body.get("event")
    type_problems = normalise.event_type_problems(event_type)
    found = type_problems + validation.problems(schemas.SYSTEM_EVENT_ENVELOPE, body)
    if type_problems:
        raise normalise.invalid_event(found)
    normalise.check_origin(system, event_type)
    inner = body.get("payload", body.get("data"))
    payload = inner if isinstance(inner, dict) else {k: v for k, v in body.items() if k not in _META_KEYS}
    env = normalise.system_envelope(
        event_type=event_type,
        source=system,
        payload=payload,
        idempotency_key=_idempotency_key(request, body),
        occurred_at=body.get("timestamp") or body.get("occurred_at"),
        problems=found,
    )
    return await commit(request, env, compat=True)


async def post_event(request: Request) -> JSONResponse:
    """Canonical ``{event_type, source_system, payload, idempotency_key?}``."""
    system = authenticate_system(request)
    raw, body = await read_json_object(request)
    verify_signature(request, system, raw)
    event_type, source, payload = body.get("event_type"), body.get("source_system"), body.get("payload")
    found = normalise.event_type_problems(event_type) + [
        p for p in validation.problems(schemas.CANONICAL_EVENT, body) if p["field"] != "event_type"]
    if event_type in catalogue.CATALOGUE:
        if isinstance(source, str) and source in settings.SYSTEMS:
            if source != system:
                raise ApiError(403, "forbidden", f"credentials of {system!r} cannot post events as {source!r}")
            normalise.check_origin(system, event_type)
        if isinstance(payload, dict):
            found += normalise.payload_problems(event_type, payload, "payload")
    if found:
        raise normalise.invalid_event(validation.unique(found))
    env = normalise.system_envelope(
        event_type=event_type,
        source=system,
        payload=payload,
        idempotency_key=_idempotency_key(request, body),
        occurred_at=body.get("occurred_at"),
    )
    return await commit(request, env)


# -- Z-API ------------------------------------------------------------------------


def _check_instance(cb: dict[str, Any]) -> None:
    ours = settings.env("ZAPI_INSTANCE_ID")
    if ours and cb.get("instanceId") != ours:
        raise ApiError(403, "forbidden", "instanceId is not this hub's Z-API instance")


async def _zapi_callback(request: Request) -> dict[str, Any]:
    authenticate_zapi(request)
    _raw, cb = await read_json_object(request)
    validation.check(schemas.ZAPI_ANY, cb)
    _check_instance(cb)
    return cb


async def whatsapp_webhook(request: Request) -> JSONResponse:
    """Z-API callbacks, dispatched on ``type``."""
    cb = await _zapi_callback(request)
    kind = cb["type"].lower()
    if kind == "receivedcallback":
        env = normalise.received_envelope(cb)
        log.info("whatsapp %s from %s", env.event_type, mask_phone(env.payload.get("phone")))
        return await commit(request, env)
    if kind == "messagestatuscallback":
        env, update = normalise.status_envelope(cb)
        return await commit(request, env, status_update=update)
    if kind == "deliverycallback":
        env, update = normalise.delivery_envelope(cb)
        return await commit(request, env, status_update=update)
    if kind in ("connectedcallback", "disconnectedcallback"):
        connected = kind == "connectedcallback" and cb.get("connected", True) is not False
        env = normalise.recorded_envelope("whatsapp.connection", "connection", cb)
        try:
            await run_in_threadpool(
                _store(request).record_connection, str(cb.get("instanceId", "")), connected, cb.get("error"), env.occurred_at
            )
        except StoreUnavailable as exc:
            raise ApiError(503, "store_unavailable", "the event store is unavailable; retry later",
                           headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)}) from exc
        log.warning("whatsapp instance %s", "connected" if connected else "DISCONNECTED")
        return await commit(request, env)
    if kind == "presencechatcallback":
        return await commit(request, normalise.recorded_envelope("whatsapp.presence", "presence", cb))
    return await commit(request, normalise.recorded_envelope("whatsapp.other", "unsupported_callback", cb))


async def whatsapp_status_webhook(request: Request) -> JSONResponse:
    """Z-API ``MessageStatusCallback`` → ``whatsapp.status``."""
    cb = await _zapi_callback(request)
    if cb["type"].lower() == "deliverycallback":
        env, update = normalise.delivery_envelope(cb)
    else:
        env, update = normalise.status_envelope(cb)
    return await commit(request, env, status_update=update)



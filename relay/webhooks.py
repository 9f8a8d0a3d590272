"""Inbound webhook endpoints (CONTRACTS §2.1, §2.2)."""

from __future__ import annotations

import asyncio
import functools
import logging
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
    """At most ``store.write_slots`` ingests at once (per app and event loop): the
    others wait here, cheaply, instead of in threads queued on the connection pool."""
    state = request.app.state
    loop = asyncio.get_running_loop()
    cached = getattr(state, "ingest_limiter", None)
    if cached is None or cached[0] is not loop:
        cached = state.ingest_limiter = (loop, anyio.CapacityLimiter(_store(request).write_slots))
    return cached[1]


def _committer(request: Request) -> GroupCommitter:
    """One group committer per app and event loop."""
    state = request.app.state
    loop = asyncio.get_running_loop()
    cached = getattr(state, "group_committer", None)
    if cached is None or cached[0] is not loop:
        cached = state.group_committer = (loop, GroupCommitter(_store(request)))
    return cached[1]


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


async def site_lead(request: Request) -> JSONResponse:
    """Site form lead → ``lead.created``."""
    return await _system_event(request, "site", "lead.created")


async def crm_client_registered(request: Request) -> JSONResponse:
    """CRM client registered → ``client.registered``."""
    return await _system_event(request, "crm", "client.registered")


async def operacao_service_completed(request: Request) -> JSONResponse:
    """Operação service completed → ``service.completed``."""
    return await _system_event(request, "operacao", "service.completed")


PAYMENT_STATUSES = {"received": "payment.received", "paid": "payment.received", "failed": "payment.failed"}


async def financeiro_payment(request: Request) -> JSONResponse:
    """Financeiro payment → ``payment.received`` (received/paid) or ``payment.failed``."""
    return await _system_event(request, "financeiro", PAYMENT_STATUSES,
                               extra_schema=schemas.PAYMENT_STATUS, occurred_key="paid_at")


async def financeiro_payout(request: Request) -> JSONResponse:
    """Financeiro payout processed → ``payout.processed``."""
    return await _system_event(request, "financeiro", "payout.processed", occurred_key="processed_at")


async def cuidadores_feedback(request: Request) -> JSONResponse:
    """Cuidadores feedback → ``feedback.received``."""
    return await _system_event(request, "cuidadores", "feedback.received")


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



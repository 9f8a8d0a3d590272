"""The destinations ops control (issue 16): ``GET /api/destinations`` (breaker and pause
of each), ``POST /api/destinations/{name}/pause`` ``{"reason", "until"?}`` and
``POST /api/destinations/{name}/resume`` (scope ``destinations:write``, audit-logged).
The behaviour is :mod:`carinho_pipelines.destinations.pauses`."""

from __future__ import annotations

import datetime as dt

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from carinho_pipelines.destinations import breakers, pauses
from carinho_pipelines.store import utcnow

from . import schemas, validation
from .apikeys import audit, key_of, requires
from .bodies import read_json_object
from .errors import ApiError, invalid
from .normalise import parse_time

#: a pause longer than this is a decommission, not a maintenance window
MAX_PAUSE = dt.timedelta(days=7)


def _destination(request: Request) -> str:
    name = request.path_params["name"]
    if name not in pauses.DESTINATIONS:
        raise ApiError(404, "not_found", f"unknown destination {name!r}", known=list(pauses.DESTINATIONS))
    return name


def describe(store) -> list[dict]:
    states = breakers.states(store, tuple(d for d in pauses.DESTINATIONS if d != "whatsapp"))
    paused = pauses.active(store)
    return [{"destination": d, "breaker": states.get(d, breakers.CLOSED), "paused": paused.get(d)}
            for d in pauses.DESTINATIONS]


@requires("status:read")
async def list_destinations(request: Request) -> JSONResponse:
    """Every destination with its circuit breaker and, when ops paused it, the pause."""
    return JSONResponse({"destinations": await run_in_threadpool(describe, request.app.state.store)})


@requires("destinations:write")
async def pause(request: Request) -> JSONResponse:
    """Pause a destination: its actions wait (not failed, not in the DLQ) until it is
    resumed or ``until`` passes; then they go out once each."""
    key = key_of(request)
    name = _destination(request)
    _raw, body = await read_json_object(request)
    validation.check(schemas.PAUSE_BODY, body)
    reason = body["reason"].strip()
    if not reason:
        raise invalid("reason", "required: why the destination is paused")
    until = None
    if body.get("until") is not None:
        until = parse_time(body["until"])
        now = utcnow()
        if until is None:
            raise invalid("until", "must be an ISO-8601 date-time")
        if until <= now:
            raise invalid("until", "must be in the future")
        if until - now > MAX_PAUSE:
            raise invalid("until", "at most 7 days ahead")
    store = request.app.state.store

    def work() -> dict:
        state = pauses.pause(store, name, reason, until, key.name)
        audit(store, key, "destination.pause", name, {"reason": reason[:500], "until": state["until"]})
        return {"destination": name, "paused": state}

    return JSONResponse(await run_in_threadpool(work))


@requires("destinations:write")
async def resume(request: Request) -> JSONResponse:
    """Resume a destination: what waited for it is sent (once each) within a sensor tick."""
    key = key_of(request)
    name = _destination(request)
    store = request.app.state.store

    def work() -> dict:
        was = pauses.resume(store, name)
        audit(store, key, "destination.resume", name, {"was_paused": was})
        return {"destination": name, "resumed": was}

    return JSONResponse(await run_in_threadpool(work))

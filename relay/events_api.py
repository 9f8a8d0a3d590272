"""``GET /api/events`` and ``GET /api/events/{id}`` (scope ``events:read``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from carinho_pipelines.kernel.privacy import mask_payload

from . import runs, validation
from .apikeys import requires
from .errors import ApiError, invalid
from .normalise import parse_time
from carinho_pipelines.store import EventStore, as_utc, utcnow
from carinho_pipelines.store.tables import event_actions, events

STATES = ("received", "filtered", "scheduled", "dispatched", "running", "succeeded", "failed", "archived")
MAX_PER_PAGE = 200
#: rows examined at most when filtering on a run-derived state
SCAN_LIMIT = 5000


def _status(row: dict[str, Any], event_runs: list[Any], now: dt.datetime) -> str:
    if row["filtered_reason"]:
        return "filtered"
    if event_runs:
        return runs.event_state(_latest(event_runs))
    if row["run_id"]:
        return "dispatched"
    if as_utc(row["available_at"]) > now:
        return "scheduled"
    return "received"


def _latest(event_runs: list[Any]) -> Any:
    """The newest run of the event's run group (a re-execution decides the state)."""
    return max(event_runs, key=lambda r: (r.parent_run_id is not None, runs._created(r)))


def _summary(row: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "event_type": row["event_type"],
        "source": row["source"],
        "queue": row["queue"],
        "status": status,
        "filtered_reason": row["filtered_reason"],
        "occurred_at": as_utc(row["occurred_at"]).isoformat(),
        "received_at": as_utc(row["received_at"]).isoformat(),
        "available_at": as_utc(row["available_at"]).isoformat(),
        "run_id": row["run_id"],
    }


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise invalid(name, "must be an integer") from exc
    if not low <= value <= high:
        raise invalid(name, f"must be between {low} and {high}")
    return value


def _time_param(request: Request, name: str) -> dt.datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    parsed = parse_time(raw)
    if parsed is None:
        raise invalid(name, "must be an ISO-8601 date-time")
    return parsed


def _query(store: EventStore, filters: dict[str, Any], status: str | None, page: int, per_page: int) -> dict[str, Any]:
    stmt = sa.select(events).order_by(events.c.id.desc())
    if filters["type"]:
        stmt = stmt.where(events.c.event_type == filters["type"])
    if filters["source"]:
        stmt = stmt.where(events.c.source == filters["source"])
    if filters["from"]:
        stmt = stmt.where(events.c.received_at >= filters["from"])
    if filters["to"]:
        stmt = stmt.where(events.c.received_at <= filters["to"])
    now = utcnow()
    if status == "filtered":
        stmt = stmt.where(events.c.filtered_reason.is_not(None))
    elif status is not None:
        stmt = stmt.where(events.c.filtered_reason.is_(None))
    if status == "scheduled":
        stmt = stmt.where(events.c.run_id.is_(None), events.c.available_at > now)
    with store.engine.connect() as conn:
        if status in (None, "filtered", "scheduled"):
            total = conn.execute(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
            rows = [dict(r) for r in conn.execute(stmt.limit(per_page).offset((page - 1) * per_page)).mappings()]
            event_runs = runs.runs_for_events(r["id"] for r in rows)
            data = [_summary(r, _status(r, event_runs.get(r["id"], []), now)) for r in rows]
            return {"data": data, "meta": {"page": page, "per_page": per_page, "total": total}}
        rows = [dict(r) for r in conn.execute(stmt.limit(SCAN_LIMIT)).mappings()]
    matching = []
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        event_runs = runs.runs_for_events(r["id"] for r in chunk)
        for r in chunk:
            state = _status(r, event_runs.get(r["id"], []), now)
            if state == status:
                matching.append(_summary(r, state))
    begin = (page - 1) * per_page
    return {
        "data": matching[begin : begin + per_page],
        "meta": {"page": page, "per_page": per_page, "total": len(matching), "scanned": len(rows)},
    }


@requires("events:read")
async def list_events(request: Request) -> JSONResponse:
    """Events, newest first; filters ``type``, ``source``, ``status``, ``from``, ``to``; paged."""
    found: list[dict[str, str]] = []  # every invalid parameter, reported together

    def read(parse, *args):
        try:
            return parse(*args)
        except ApiError as exc:
            found.extend(exc.extra.get("fields", []))
            return None

    def check_status(raw: str | None) -> str | None:
        if raw is not None and raw not in STATES:
            raise invalid("status", f"must be one of {', '.join(STATES)}")
        return raw

    status = read(check_status, request.query_params.get("status"))
    filters = {
        "type": request.query_params.get("type"),
        "source": request.query_params.get("source"),
        "from": read(_time_param, request, "from"),
        "to": read(_time_param, request, "to"),
    }
    page = read(_int_param, request, "page", 1, 1, 10**6)
    per_page = read(_int_param, request, "per_page", 50, 1, MAX_PER_PAGE)
    if found:
        raise validation.failed(found)
    body = await run_in_threadpool(_query, request.app.state.store, filters, status, page, per_page)
    return JSONResponse(body)


def _detail(store: EventStore, event_id: int) -> dict[str, Any] | None:
    row = store.get_event(event_id)
    if row is None:
        return None
    event_runs = runs.runs_for_events([event_id]).get(event_id, [])
    with store.engine.connect() as conn:
        actions = [
            {
                "action": a["action"],
                "status": a["status"],
                "result": mask_payload(a["result"]),
                "error_class": a["error_class"],
                "error_message": a["error_message"],
                "attempts": a["attempts"],
                "run_id": a["run_id"],
                "updated_at": as_utc(a["updated_at"]).isoformat(),
            }
            for a in conn.execute(
                sa.select(event_actions).where(event_actions.c.event_id == event_id).order_by(event_actions.c.id)
            ).mappings()
        ]
    body = _summary(row, _status(row, event_runs, utcnow()))
    body.update(
        idempotency_key=row["idempotency_key"],
        payload=mask_payload(row["payload"]),
        payload_purged_at=as_utc(row["payload_purged_at"]).isoformat() if row["payload_purged_at"] else None,
        runs=[runs.describe(r) for r in event_runs],
        actions=actions,
    )
    return body


@requires("events:read")
async def get_event(request: Request) -> JSONResponse:
    """One event: masked payload, its run(s) and each action's outcome."""
    try:
        event_id = int(request.path_params["id"])
    except ValueError as exc:
        raise ApiError(404, "not_found", "no such event") from exc
    body = await run_in_threadpool(_detail, request.app.state.store, event_id)
    if body is None:
        raise ApiError(404, "not_found", f"no event {event_id}")
    return JSONResponse(body)

"""The DLQ endpoints of the operations API (CONTRACTS §2.3, §10). Scopes: ``dlq:read``
for reads, ``dlq:write`` for retry/archive; every mutation is audit-logged."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from carinho_pipelines.errors import ERROR_CLASSES

from . import dagster_gql, runs, schemas, validation
from .apikeys import ApiKey, audit, require_scope
from .bodies import read_json_object
from .errors import ApiError, invalid
from .events_api import _int_param, _time_param
from .store import utcnow

MAX_RETRY_ALL = schemas.MAX_RETRY_ALL


def _dlq():
    from carinho_pipelines import dlq  # imports dagster: loaded on first use only

    return dlq


def _require_dagster() -> None:
    if not runs.configured():
        raise ApiError(503, "dagster_unavailable", "DAGSTER_HOME is not set: the relay cannot read runs",
                       headers={"Retry-After": "30"})


def _item(run: Any) -> dict[str, Any]:
    return _dlq().item(runs.instance(), run, run_url=dagster_gql.run_url(run.run_id))


def _get_run(run_id: str) -> Any:
    run = runs.instance().get_run_by_id(run_id)
    if run is None or run.status.value != "FAILURE" or "carinho/dlq" not in run.tags:
        raise ApiError(404, "not_found", f"no DLQ item {run_id}")
    return run


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    kind = q.get("kind")
    if kind not in (None, "event", "sync"):
        raise invalid("kind", "must be event or sync")
    error_class = q.get("error_class")
    if error_class is not None and error_class not in ERROR_CLASSES:
        raise invalid("error_class", f"must be one of {', '.join(ERROR_CLASSES)}")
    include_archived = q.get("include_archived", "false").lower() in ("1", "true", "yes")
    return {
        "event_type": q.get("type") or q.get("event_type"),
        "source": q.get("source"),
        "kind": kind,
        "error_class": error_class,
        "since": _time_param(request, "since"),
        "until": _time_param(request, "until"),
        "statuses": ("open", "archived") if include_archived else ("open",),
    }


async def list_items(request: Request) -> JSONResponse:
    """DLQ items (failed runs not archived), newest first; filters and paging."""
    await require_scope(request, "dlq:read")
    _require_dagster()
    filters = _filters(request)
    page = _int_param(request, "page", 1, 1, 10**6)
    per_page = _int_param(request, "per_page", 20, 1, 100)

    def work() -> dict[str, Any]:
        found = _dlq().failed_runs(runs.instance(), **filters)
        chosen = found[(page - 1) * per_page : page * per_page]
        return {"data": [_item(r) for r in chosen], "meta": {"page": page, "per_page": per_page, "total": len(found)}}

    return JSONResponse(await run_in_threadpool(work))


async def stats(request: Request) -> JSONResponse:
    """Totals, last 24 h / 7 d, by type and by error class."""
    await require_scope(request, "dlq:read")
    _require_dagster()
    return JSONResponse(await run_in_threadpool(_dlq().stats, runs.instance(), utcnow()))


async def get_item(request: Request) -> JSONResponse:
    """One item: the failure, the masked event payload, each op's outcome and the
    downstream response that failed."""
    await require_scope(request, "dlq:read")
    _require_dagster()
    run_id = request.path_params["id"]

    def work() -> dict[str, Any]:
        from carinho_pipelines.events import ledger
        from carinho_pipelines.privacy import mask_payload

        dlq = _dlq()
        run = _get_run(run_id)
        body = _item(run)
        failure = dlq.failure_of(runs.instance(), run_id)
        body["responses"] = failure.responses
        store = request.app.state.store
        body["replays"] = [{"run_id": r.run_id, "status": r.status.value} for r in dlq.run_group(runs.instance(), run)
                           if r.parent_run_id]
        if body["event_id"] is not None:
            event = store.get_event(body["event_id"])
            body["payload"] = mask_payload(event["payload"]) if event else None
            body["actions"] = [
                {"action": a["action"], "status": a["status"], "error_class": a["error_class"],
                 "error_message": a["error_message"], "attempts": a["attempts"], "run_id": a["run_id"]}
                for a in ledger.actions_of(store, body["event_id"])
            ]
        return body

    return JSONResponse(await run_in_threadpool(work))


def _retry(request: Request, key: ApiKey, run_id: str) -> dict[str, Any]:
    dlq = _dlq()
    _get_run(run_id)
    try:
        child, already = dlq.replay(request.app.state.store, runs.instance(), run_id, key.name, utcnow())
    except dlq.ReplayError as exc:
        raise ApiError(503, "dagster_unavailable", f"the re-execution could not be launched: {exc}",
                       headers={"Retry-After": "30"}) from exc
    if not already:
        audit(request.app.state.store, key, "dlq.retry", run_id, {"new_run_id": child})
    return {"id": run_id, "new_run_id": child, "already_replayed": already, "run_url": dagster_gql.run_url(child)}


async def retry(request: Request) -> JSONResponse:
    """Re-execute from failure on ``integrations-retry`` (succeeded ops are not repeated)."""
    key = await require_scope(request, "dlq:write")
    _require_dagster()
    body = await run_in_threadpool(_retry, request, key, request.path_params["id"])
    return JSONResponse(body, status_code=200 if body["already_replayed"] else 202)


async def archive(request: Request) -> JSONResponse:
    """Archive with a required reason: tagged on the run (who, when, why); nothing deleted."""
    key = await require_scope(request, "dlq:write")
    _require_dagster()
    _raw, body = await read_json_object(request)
    validation.check(schemas.ARCHIVE_BODY, body)
    reason = body["reason"]
    if not reason.strip():
        raise invalid("reason", "required: why this item needs no retry")
    run_id = request.path_params["id"]

    def work() -> dict[str, Any]:
        run = _get_run(run_id)
        if run.tags.get("carinho/dlq") != "open":
            raise ApiError(409, "conflict", f"item {run_id} is {run.tags.get('carinho/dlq')}, not open")
        _dlq().archive(runs.instance(), run_id, reason.strip(), key.name, utcnow())
        audit(request.app.state.store, key, "dlq.archive", run_id, {"reason": reason.strip()[:500]})
        return {"id": run_id, "status": "archived"}

    return JSONResponse(await run_in_threadpool(work))


async def retry_all(request: Request) -> JSONResponse:
    """Retry the open items matching the filters, oldest first, at most ``limit``."""
    key = await require_scope(request, "dlq:write")
    _require_dagster()
    _raw, body = await read_json_object(request)
    validation.check(schemas.RETRY_ALL_BODY, body)  # every invalid field at once (the published schema)
    limit, kind, error_class = int(body["limit"]), body.get("kind"), body.get("error_class")  # JSON 5.0 is an integer

    def work() -> dict[str, Any]:
        found = _dlq().failed_runs(runs.instance(), event_type=body.get("event_type"), source=body.get("source"),
                                   kind=kind, error_class=error_class)
        results = [_retry(request, key, run.run_id) for run in list(reversed(found))[:limit]]
        audit(request.app.state.store, key, "dlq.retry_all", None,
              {"filters": {k: body.get(k) for k in ("event_type", "source", "kind", "error_class")}, "limit": limit,
               "retried": len(results)})
        return {"retried": [r for r in results if not r["already_replayed"]],
                "already_replayed": [r for r in results if r["already_replayed"]], "matched": len(found)}

    return JSONResponse(await run_in_threadpool(work), status_code=202)

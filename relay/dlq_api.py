"""The DLQ endpoints of the operations API (CONTRACTS §2.3, §10). Scopes: ``dlq:read``
for reads, ``dlq:write`` for retry/archive; every mutation is audit-logged."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from carinho_pipelines.destinations import breakers
from carinho_pipelines.kernel import tags
from carinho_pipelines.destinations.pauses import DESTINATIONS
from carinho_pipelines import dlq
from carinho_pipelines.events import ledger
from carinho_pipelines.kernel.privacy import mask_payload
from carinho_pipelines.kernel.dlq_policy import MAX_RECOVER_WINDOW, RECOVER_JOB
from carinho_pipelines.kernel.errors import ERROR_CLASSES

from carinho_pipelines.platform import graphql_client

from . import runs, schemas, validation
from .apikeys import ApiKey, audit, key_of, launched_by, requires
from .bodies import read_json_object
from .errors import ApiError, invalid
from .events_api import _int_param, _time_param
from .normalise import parse_time
from carinho_pipelines.store import utcnow

MAX_RETRY_ALL = schemas.MAX_RETRY_ALL


def _require_dagster() -> None:
    if not runs.configured():
        raise ApiError(503, "dagster_unavailable", "DAGSTER_HOME is not set: the relay cannot read runs",
                       headers={"Retry-After": "30"})


def _item(run: Any) -> dict[str, Any]:
    return dlq.item(runs.instance(), run, run_url=graphql_client.run_url(run.run_id))


def _get_run(run_id: str) -> Any:
    run = runs.instance().get_run_by_id(run_id)
    if run is None or run.status.value != "FAILURE" or not dlq.in_scope(run):
        raise ApiError(404, "not_found", f"no DLQ item {run_id}")
    if tags.DLQ not in run.tags:  # failed a moment ago, before its hook or the sensor tagged it
        dlq.annotate(runs.instance(), run)
        run = runs.instance().get_run_by_id(run_id)
    return run


def _closed_breakers(run: Any, store: Any) -> dict[str, Any] | None:
    """The item's destinations whose circuit breaker is open, and when the automatic
    re-drive will try again; ``None`` when every destination may be called."""

    now = utcnow()
    instance = runs.instance()
    open_ = {d: breakers.probe_at(store, d) for d in dlq.item_destinations(instance, run)
             if not breakers.healthy(store, d, now)}
    if not open_:
        return None
    probe = max((t for t in open_.values() if t is not None), default=now)
    error_class = run.tags.get(tags.ERROR_CLASS) or dlq.failure_of(instance, run.run_id).error_class
    auto = error_class == "unavailable" and len(dlq.run_group(instance, run)) <= dlq.MAX_AUTO_REDRIVES
    names = ", ".join(sorted(open_))
    if auto:
        when = f"the automatic re-drive retries it from {probe.isoformat()} (within {dlq.redrive_interval_seconds()} s after)"
    else:
        when = "the automatic re-drive will not retry it (error class or tries); retry once the breaker is closed"
    return {
        "message": f"the circuit breaker of {names} is open: a retry now would fail fast and become a new item; "
                   f"{when}. Send {{\"force\": true}} (carinho dlq retry --force) to retry anyway.",
        "breakers": {d: "open" for d in sorted(open_)},
        "probe_at": probe.isoformat(),
        "auto_redrive": auto,
        "redrive_after": probe.isoformat() if auto else None,
    }


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


@requires("dlq:read")
async def list_items(request: Request) -> JSONResponse:
    """DLQ items (failed runs not archived), newest first; filters and paging."""
    _require_dagster()
    filters = _filters(request)
    page = _int_param(request, "page", 1, 1, 10**6)
    per_page = _int_param(request, "per_page", 20, 1, 100)

    def work() -> dict[str, Any]:
        found = dlq.failed_runs(runs.instance(), **filters)
        chosen = found[(page - 1) * per_page : page * per_page]
        return {"data": [_item(r) for r in chosen], "meta": {"page": page, "per_page": per_page, "total": len(found)}}

    return JSONResponse(await run_in_threadpool(work))


@requires("dlq:read")
async def stats(request: Request) -> JSONResponse:
    """Totals, last 24 h / 7 d, by type and by error class."""
    _require_dagster()
    return JSONResponse(await run_in_threadpool(dlq.stats, runs.instance(), utcnow()))


@requires("dlq:read")
async def get_item(request: Request) -> JSONResponse:
    """One item: the failure, the masked event payload, each op's outcome and the
    downstream response that failed."""
    _require_dagster()
    run_id = request.path_params["id"]

    def work() -> dict[str, Any]:
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


def _retry(request: Request, key: ApiKey, run_id: str, force: bool = False) -> dict[str, Any]:
    run = _get_run(run_id)
    if not force and run.tags.get(tags.DLQ) == dlq.OPEN:
        held = _closed_breakers(run, request.app.state.store)
        if held is not None:
            raise ApiError(409, "breaker_open", held.pop("message"), id=run_id, **held)
    try:
        child, already = dlq.replay(request.app.state.store, runs.instance(), run_id, key.name, utcnow(),
                                    launched_by=launched_by(request, key))
    except dlq.ReplayError as exc:
        raise ApiError(503, "dagster_unavailable", f"the re-execution could not be launched: {exc}",
                       headers={"Retry-After": "30"}) from exc
    if not already:
        audit(request.app.state.store, key, "dlq.retry", run_id, {"new_run_id": child})
    return {"id": run_id, "new_run_id": child, "already_replayed": already, "run_url": graphql_client.run_url(child)}


async def _optional_body(request: Request) -> dict[str, Any]:
    """A JSON object body, or ``{}`` when the request has none."""
    declared = request.headers.get("content-length")
    if declared == "0" or (declared is None and "transfer-encoding" not in request.headers):
        return {}
    _raw, body = await read_json_object(request)
    return body


def _force(body: dict[str, Any]) -> bool:
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise invalid("force", "must be true or false")
    return force


@requires("dlq:write")
async def retry(request: Request) -> JSONResponse:
    """Re-execute from failure on ``integrations-retry`` (succeeded ops are not repeated);
    409 while a destination's breaker is open, unless the body is ``{"force": true}``."""
    key = key_of(request)
    _require_dagster()
    force = _force(await _optional_body(request))
    body = await run_in_threadpool(_retry, request, key, request.path_params["id"], force)
    return JSONResponse(body, status_code=200 if body["already_replayed"] else 202)


@requires("dlq:write")
async def archive(request: Request) -> JSONResponse:
    """Archive with a required reason: tagged on the run (who, when, why); nothing deleted."""
    key = key_of(request)
    _require_dagster()
    _raw, body = await read_json_object(request)
    validation.check(schemas.ARCHIVE_BODY, body)
    reason = body["reason"]
    if not reason.strip():
        raise invalid("reason", "required: why this item needs no retry")
    run_id = request.path_params["id"]

    def work() -> dict[str, Any]:
        run = _get_run(run_id)
        if run.tags.get(tags.DLQ) != "open":
            raise ApiError(409, "conflict", f"item {run_id} is {run.tags.get(tags.DLQ)}, not open")
        dlq.archive(runs.instance(), run_id, reason.strip(), key.name, utcnow())
        audit(request.app.state.store, key, "dlq.archive", run_id, {"reason": reason.strip()[:500]})
        return {"id": run_id, "status": "archived"}

    return JSONResponse(await run_in_threadpool(work))


@requires("dlq:write")
async def retry_all(request: Request) -> JSONResponse:
    """Retry the open items matching the filters, oldest first, at most ``limit``."""
    key = key_of(request)
    _require_dagster()
    _raw, body = await read_json_object(request)
    validation.check(schemas.RETRY_ALL_BODY, body)  # every invalid field at once (the published schema)
    limit, kind, error_class = int(body["limit"]), body.get("kind"), body.get("error_class")  # JSON 5.0 is an integer
    force = _force(body)

    def work() -> dict[str, Any]:
        found = dlq.failed_runs(runs.instance(), event_type=body.get("event_type"), source=body.get("source"),
                                   kind=kind, error_class=error_class)
        results, held = [], []
        for run in list(reversed(found))[:limit]:
            try:
                results.append(_retry(request, key, run.run_id, force))
            except ApiError as exc:
                if exc.status != 409:
                    raise
                held.append({**exc.extra, "id": run.run_id, "message": exc.message})
        audit(request.app.state.store, key, "dlq.retry_all", None,
              {"filters": {k: body.get(k) for k in ("event_type", "source", "kind", "error_class")}, "limit": limit,
               "retried": len(results)})
        return {"retried": [r for r in results if not r["already_replayed"]],
                "already_replayed": [r for r in results if r["already_replayed"]],
                "held_by_breaker": held, "matched": len(found)}

    return JSONResponse(await run_in_threadpool(work), status_code=202)


@requires("dlq:write")
async def recover(request: Request) -> JSONResponse:
    """Recover a time window: with ``dry_run``, how many items and the oldest and newest;
    otherwise one ``dlq_recover`` run (visible and cancellable in the Dagster UI) that
    re-executes them from failure, oldest first, at a bounded rate, each exactly once."""
    key = key_of(request)
    _raw, body = await read_json_object(request)
    validation.check(schemas.RECOVER_BODY, body)
    since, until = parse_time(body["from"]), parse_time(body["to"])
    found = [{"field": name, "reason": "must be an ISO-8601 date-time"}
             for name, value in (("from", since), ("to", until)) if value is None]
    if not found and until <= since:
        found.append({"field": "to", "reason": "must be after from"})
    if not found and until - since > MAX_RECOVER_WINDOW:
        found.append({"field": "to", "reason": "the window is at most 31 days"})
    destination = body.get("destination")
    if destination is not None and destination not in DESTINATIONS:
        found.append({"field": "destination", "reason": f"unknown destination; known: {', '.join(DESTINATIONS)}"})
    if found:
        raise validation.failed(found)
    _require_dagster()
    filters = {"destination": destination, "event_type": body.get("event_type"), "error_class": body.get("error_class")}

    def work() -> tuple[int, dict[str, Any]]:
        estimate = dlq.estimate(runs.instance(), since, until, **filters)
        if body.get("dry_run"):
            return 200, {**estimate, "dry_run": True}
        config = {"since": since.isoformat(), "until": until.isoformat(), "requested_by": key.name[:64],
                  **{k: v for k, v in filters.items() if v is not None}}
        try:
            run_id = graphql_client.launch_job(RECOVER_JOB, {tags.LAUNCHED_BY: launched_by(request, key)},
                                               run_config={"ops": {"recover_window": {"config": config}}})
        except (graphql_client.DagsterUnavailable, graphql_client.LaunchFailed) as exc:
            raise ApiError(503, "dagster_unavailable", f"cannot start the recovery now: {exc}",
                           headers={"Retry-After": "30"}) from exc
        audit(request.app.state.store, key, "dlq.recover", run_id,
              {"from": since.isoformat(), "to": until.isoformat(), **filters, "count": estimate["count"]})
        return 202, {**estimate, "dry_run": False, "run_id": run_id, "run_url": graphql_client.run_url(run_id)}

    status, answer = await run_in_threadpool(work)
    return JSONResponse(answer, status_code=status)

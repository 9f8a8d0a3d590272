"""``GET /api/sync`` and ``POST /api/sync/{name}/run`` (CONTRACTS §2.3, §10 "Manual sync").

Runs are read from the Dagster instance in ``DAGSTER_HOME`` (dagster imported lazily,
the relay starts without it) and launched through Dagster's GraphQL API, so a manual
run goes through the same run queue as a scheduled one: the queue's ``carinho/sync``
limit keeps two runs of a sync from overlapping even if two requests race past the 409.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from carinho_pipelines.kernel import settings, tags as run_tag
from carinho_pipelines.kernel.sync_registry import SYNCS as SYNC_REGISTRY

from carinho_pipelines.platform import graphql_client
from . import runs
from .apikeys import audit, key_of, launched_by, requires
from .errors import ApiError, invalid

SAO_PAULO = ZoneInfo("America/Sao_Paulo")

#: name → schedule, as ``GET /api/sync`` shows it: a view of the sync registry (the
#: Dagster schedules are built from the same entries)
SYNCS: dict[str, dict[str, Any]] = {s.name: {"schedule": s.cron, "partitioned": s.partitioned}
                                    for s in SYNC_REGISTRY.values()}
ACTIVE_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
COUNT_KEYS = ("read", "written", "skipped_already_synced", "invalid", "failed", "confirmed")
DEFAULT_LIMIT = 10
MAX_LIMIT = 50



run_tags = run_tag.sync_run_tags


def instance() -> Any:
    """The relay's Dagster instance (:func:`relay.runs.instance`); 503 without ``DAGSTER_HOME``."""
    if not runs.configured():
        raise ApiError(503, "dagster_unavailable", "DAGSTER_HOME is not set: the relay cannot see Dagster's runs",
                       headers={"Retry-After": "30"})
    return runs.instance()


# -- reading runs -------------------------------------------------------------------------


def _statuses(names: tuple[str, ...]) -> list[Any]:
    from dagster import DagsterRunStatus

    return [DagsterRunStatus(n) for n in names]


def active_run(name: str) -> Any | None:
    from dagster import RunsFilter

    runs = instance().get_runs(filters=RunsFilter(tags={run_tag.SYNC: name}, statuses=_statuses(ACTIVE_STATUSES)), limit=1)
    return runs[0] if runs else None


def _iso(stamp: float | dt.datetime | None) -> str | None:
    if stamp is None:
        return None
    if isinstance(stamp, dt.datetime):
        value = stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)
    else:
        value = dt.datetime.fromtimestamp(stamp, dt.timezone.utc)
    return value.isoformat()


def _trigger(tags: dict[str, str]) -> str:
    if tags.get(run_tag.PARENT_RUN_ID):
        return "re-execution"
    if tags.get(run_tag.SCHEDULE_NAME):
        return "schedule"
    if tags.get(run_tag.BACKFILL):
        return "backfill"
    return tags.get(run_tag.TRIGGER) or "other"


def _run_details(inst: Any, run_id: str, failed: bool) -> tuple[dict[str, int], list[str]]:
    """Counts summed over the run's materializations; the failed item ids of a failed run."""
    from dagster import DagsterEventType

    counts = {k: 0 for k in COUNT_KEYS}
    seen = False
    for record in inst.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=20).records:
        event = record.event_log_entry.dagster_event
        metadata = event.event_specific_data.materialization.metadata if event else {}
        for key in COUNT_KEYS:
            value = metadata.get(key)
            if value is not None and isinstance(value.value, int):
                counts[key] += value.value
                seen = True
    failed_ids: list[str] = []
    if failed:
        for record in inst.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE, limit=5).records:
            event = record.event_log_entry.dagster_event
            data = getattr(event.event_specific_data, "user_failure_data", None) if event else None
            ids = data.metadata.get("failed_ids") if data is not None else None
            if ids is not None and ids.value:
                failed_ids.extend(str(ids.value).split(", "))
    return (counts if seen else {}), failed_ids


def list_runs(name: str, limit: int) -> dict[str, Any]:
    from dagster import RunsFilter

    inst = instance()
    records = inst.get_run_records(filters=RunsFilter(tags={run_tag.SYNC: name}), limit=limit)
    runs = []
    for record in records:
        run = record.dagster_run
        status = run.status.value
        counts, failed_ids = _run_details(inst, run.run_id, failed=status == "FAILURE")
        runs.append({
            "run_id": run.run_id,
            "status": status,
            "partition": run.tags.get(run_tag.PARTITION),
            "trigger": _trigger(run.tags),
            "dlq": run.tags.get(run_tag.DLQ),
            "launched_by": run.tags.get(run_tag.LAUNCHED_BY),
            "created_at": _iso(record.create_timestamp),
            "started_at": _iso(record.start_time),
            "finished_at": _iso(record.end_time),
            "counts": counts,
            "failed_items": failed_ids,
            "run_url": graphql_client.run_url(run.run_id),
        })
    success = inst.get_run_records(filters=RunsFilter(tags={run_tag.SYNC: name}, statuses=_statuses(("SUCCESS",))), limit=1)
    return {
        "name": name,
        "schedule": SYNCS[name]["schedule"],
        "timezone": "America/Sao_Paulo",
        "partitioned": SYNCS[name]["partitioned"],
        "running": any(r["status"] in ACTIVE_STATUSES for r in runs) or active_run(name) is not None,
        "last_success_at": _iso(success[0].end_time) if success else None,
        "runs": runs,
    }


# -- endpoints ------------------------------------------------------------------------------


@requires("sync:read")
async def list_syncs(request: Request) -> JSONResponse:
    """Each sync with its recent runs (newest first) and their counts."""
    wanted = request.query_params.get("sync")
    if wanted is not None and wanted not in SYNCS:
        raise ApiError(404, "unknown_sync", f"no sync named {wanted!r}", known=list(SYNCS))
    raw_limit = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise invalid("limit", f"an integer from 1 to {MAX_LIMIT}")
    names = [wanted] if wanted else list(SYNCS)
    syncs = await run_in_threadpool(lambda: [list_runs(n, int(raw_limit)) for n in names])
    return JSONResponse({"syncs": syncs})


@requires("sync:run")
async def run_sync(request: Request) -> JSONResponse:
    """Start a sync now: 202 with the run id, 409 while a run of that sync is queued or running."""
    key = key_of(request)
    name = request.path_params["name"]
    if name not in SYNCS:
        raise ApiError(404, "unknown_sync", f"no sync named {name!r}", known=list(SYNCS))
    partition = _partition(name, await _body(request))

    running = await run_in_threadpool(active_run, name)
    if running is not None:
        raise ApiError(409, "sync_running", f"{name} is already {running.status.value.lower()}",
                       run_id=running.run_id, run_url=graphql_client.run_url(running.run_id))

    tags = {**run_tags(name), run_tag.TRIGGER: "manual", run_tag.REQUESTED_BY: key.name,
            run_tag.LAUNCHED_BY: launched_by(request, key)}
    try:
        run_id = await run_in_threadpool(graphql_client.launch_job, name, tags, None, partition)
    except graphql_client.DagsterUnavailable as exc:
        raise ApiError(503, "dagster_unavailable", str(exc), headers={"Retry-After": "10"}) from exc
    except graphql_client.LaunchFailed as exc:
        raise ApiError(503, "launch_failed", str(exc), headers={"Retry-After": "30"}) from exc
    await run_in_threadpool(audit, request.app.state.store, key, "sync.run", name,
                            {"run_id": run_id, "partition": partition})
    return JSONResponse(
        {"run_id": run_id, "sync": name, "partition": partition, "status": "QUEUED",
         "run_url": graphql_client.run_url(run_id)},
        status_code=202,
    )


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "bad_request", "the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return body


def _partition(name: str, body: dict[str, Any]) -> str | None:
    raw = body.get("date")
    if not SYNCS[name]["partitioned"]:
        if raw is not None:
            raise invalid("date", f"{name} is not partitioned by day; only operacao_financeiro takes a date")
        return None
    today = dt.datetime.now(SAO_PAULO).date()
    if raw is None:
        return today.isoformat()
    try:
        day = dt.date.fromisoformat(str(raw)) if len(str(raw)) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise invalid("date", "expected YYYY-MM-DD")
    first = settings.go_live_date()
    if not first <= day <= today:
        raise invalid("date", f"must be from {first.isoformat()} (CARINHO_GO_LIVE_DATE) to today ({today.isoformat()})")
    return day.isoformat()

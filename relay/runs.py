"""The relay's read access to Dagster runs (the instance in ``DAGSTER_HOME``, the same
storage the daemon and the UI use). Imported lazily: the relay starts without dagster."""

from __future__ import annotations

import os
import threading
from typing import Any, Iterable

from carinho_pipelines.kernel import tags

_instance = None
_lock = threading.Lock()

#: Dagster run status → event status (CONTRACTS §10 "Event states")
RUN_STATE = {
    "QUEUED": "dispatched",
    "NOT_STARTED": "dispatched",
    "STARTING": "dispatched",
    "MANAGED": "dispatched",
    "STARTED": "running",
    "CANCELING": "running",
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "CANCELED": "failed",
}


def configured() -> bool:
    return bool(os.environ.get("DAGSTER_HOME"))


def instance():
    global _instance
    with _lock:
        if _instance is None:
            from dagster import DagsterInstance

            _instance = DagsterInstance.get()
        return _instance


def close() -> None:
    """Dispose of the instance (the app's shutdown); the next use opens a new one."""
    global _instance
    with _lock:
        found, _instance = _instance, None
    if found is not None:
        found.dispose()


def runs_for_events(event_ids: Iterable[int]) -> dict[int, list[Any]]:
    """Every run of each event (re-executions included), oldest first."""
    ids = [str(i) for i in event_ids]
    if not ids or not configured():
        return {}
    from dagster import RunsFilter

    out: dict[int, list[Any]] = {}
    for run in instance().get_runs(filters=RunsFilter(tags={tags.EVENT_ID: ids})):
        out.setdefault(int(run.tags[tags.EVENT_ID]), []).append(run)
    for runs in out.values():
        runs.sort(key=lambda r: (r.tags.get(tags.ROOT_RUN_ID) is not None, _created(r)))
    return out


def _created(run: Any) -> float:
    record = getattr(run, "create_timestamp", None)
    return record.timestamp() if record is not None and hasattr(record, "timestamp") else 0.0


def event_state(run: Any) -> str:
    if run.tags.get(tags.DLQ) == "archived":
        return "archived"
    return RUN_STATE.get(run.status.value, "dispatched")


def describe(run: Any) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "status": run.status.value,
        "job": run.job_name,
        "parent_run_id": run.parent_run_id,
        "root_run_id": run.root_run_id,
        "dlq": run.tags.get(tags.DLQ),
    }

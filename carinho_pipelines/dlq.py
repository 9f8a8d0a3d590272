"""The dead-letter queue *is* the set of failed runs whose ``carinho/dlq`` tag is
``open`` (ARCHITECTURE.md "DLQ = failed runs"). This module reads and annotates them
in the Dagster instance — the same storage the UI shows — so the API and the UI can
never disagree. Launching re-executions goes through Dagster's GraphQL API
(``relay.dagster_gql``), the same mutation as the UI's button."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

from carinho_pipelines import tags
from carinho_pipelines.errors import ERROR_CLASSES
from carinho_pipelines.privacy import mask_payload
from carinho_pipelines.queues import QUEUES, RETRY

OPEN, REPLAYED, ARCHIVED = "open", "replayed", "archived"
ERROR_CLASS_TAG = "carinho/error_class"
FAILED_OPS_TAG = "carinho/failed_ops"
DESTINATIONS_TAG = "carinho/failed_destinations"
ARCHIVED_BY, ARCHIVED_AT, ARCHIVE_REASON = "carinho/archived_by", "carinho/archived_at", "carinho/archive_reason"
REPLAYED_BY = "carinho/replayed_by"
PARENT_TAG = "dagster/parent_run_id"
#: how many runs a listing examines at most
SCAN_LIMIT = 2000


@dataclass(frozen=True)
class Failure:
    failed_ops: list[str]
    error_class: str
    error_message: str
    destinations: list[str]
    responses: dict[str, Any]
    attempts: int
    failed_at: dt.datetime | None


def _ts(value: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc) if value else None


def _meta(event: Any) -> dict[str, Any]:
    data = getattr(event.dagster_event.event_specific_data, "user_failure_data", None)
    if data is None or not data.metadata:
        return {}
    return {k: v.value for k, v in data.metadata.items()}


def failure_of(instance: DagsterInstance, run_id: str) -> Failure:
    """What failed in a run: the ops, the error class, the downstream response."""
    records = instance.all_logs(
        run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_UP_FOR_RETRY,
                         DagsterEventType.RUN_FAILURE}
    )
    failed_ops: list[str] = []
    classes: list[str] = []
    destinations: list[str] = []
    responses: dict[str, Any] = {}
    messages: list[str] = []
    retries = 0
    failed_at = None
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_UP_FOR_RETRY:
            retries += 1
            continue
        if event.event_type == DagsterEventType.RUN_FAILURE:
            failed_at = _ts(record.timestamp)
            if not messages:
                messages.append(event.message or "run failed")
            continue
        step = event.step_key or "?"
        failed_ops.append(step)
        meta = _meta(record)
        error_class = meta.get("error_class")
        if error_class is None and meta.get("error_classes"):
            error_class = str(meta["error_classes"]).split(",")[0].strip()
        classes.append(error_class if error_class in ERROR_CLASSES else "error")
        if meta.get("destination"):
            destinations.append(str(meta["destination"]))
        if "response" in meta:
            responses[step] = meta["response"]
        error = event.event_specific_data.error if event.event_specific_data else None
        description = getattr(event.event_specific_data.user_failure_data, "description", None) if getattr(
            event.event_specific_data, "user_failure_data", None) else None
        messages.insert(0, description or (error.message.strip() if error else event.message or "step failed"))
    # the worst class decides: a person must look unless every failure is "unavailable".
    # A run that failed with no op failing (its worker died, the launch failed, run
    # monitoring gave up on it) is an infrastructure failure: safe to re-drive.
    if not classes or all(c == "unavailable" for c in classes):
        error_class = "unavailable"
    else:
        error_class = next((c for c in ("invalid", "rejected", "error") if c in classes), "error")
    return Failure(
        failed_ops=sorted(set(failed_ops)),
        error_class=error_class,
        error_message=(messages[0] if messages else "")[:1000],
        destinations=sorted(set(destinations)),
        responses=mask_payload(responses),
        attempts=retries + max(1, len(failed_ops)),
        failed_at=failed_at,
    )


def annotate(instance: DagsterInstance, run: DagsterRun) -> Failure:
    """Tag a failed run with what failed, so the UI can filter the DLQ by error class
    and the listing does not re-read event logs."""
    failure = failure_of(instance, run.run_id)
    annotations = {
        ERROR_CLASS_TAG: failure.error_class,
        FAILED_OPS_TAG: ",".join(failure.failed_ops)[:200],
        DESTINATIONS_TAG: ",".join(failure.destinations)[:200],
    }
    parent_id = run.parent_run_id or run.get_parent_run_id()
    parent = instance.get_run_by_id(parent_id) if parent_id else None
    if parent is not None and run.tags.get(tags.DLQ) in (REPLAYED, ARCHIVED) and all(
        run.tags.get(t) == parent.tags.get(t) for t in (tags.DLQ, ARCHIVED_AT, REPLAYED_BY)
    ):
        # a UI re-execution copies its parent's tags: its own failure is a new open item
        annotations.update({tags.DLQ: OPEN, ARCHIVED_BY: "", ARCHIVED_AT: "", ARCHIVE_REASON: "", REPLAYED_BY: ""})
    instance.add_run_tags(run.run_id, annotations)
    return failure


def kind_of(run: DagsterRun) -> str:
    return "sync" if tags.SYNC in run.tags else "event"


def run_group(instance: DagsterInstance, run: DagsterRun) -> list[DagsterRun]:
    root = run.root_run_id or run.get_root_run_id() or run.run_id
    group = list(instance.get_runs(filters=RunsFilter(tags={"dagster/root_run_id": root})))
    root_run = instance.get_run_by_id(root)
    return [r for r in [root_run, *group] if r is not None]


def item(instance: DagsterInstance, run: DagsterRun, *, run_url: str | None = None) -> dict[str, Any]:
    """A DLQ item (CONTRACTS §10)."""
    record = instance.get_run_record_by_id(run.run_id)
    failure = failure_of(instance, run.run_id)
    group = run_group(instance, run)
    failed = [r for r in group if r.status == DagsterRunStatus.FAILURE]
    attempts = sum(failure_of(instance, r.run_id).attempts for r in failed if r.run_id != run.run_id) + failure.attempts
    first = min((instance.get_run_record_by_id(r.run_id).end_time or 0 for r in failed), default=None)
    last = record.end_time if record else None
    event_id = run.tags.get(tags.EVENT_ID)
    return {
        "id": run.run_id,
        "kind": kind_of(run),
        "event_id": int(event_id) if event_id and event_id.isdigit() else None,
        "event_type": run.tags.get(tags.EVENT_TYPE),
        "sync": run.tags.get(tags.SYNC),
        "source": run.tags.get(tags.SOURCE),
        "queue": run.tags.get(tags.QUEUE),
        "job": run.job_name,
        "failed_ops": failure.failed_ops,
        "error_class": failure.error_class,
        "error_message": failure.error_message,
        "attempts": attempts,
        "first_failed_at": _iso(_ts(first)) if first else _iso(_ts(last)),
        "last_failed_at": _iso(_ts(last)),
        "status": run.tags.get(tags.DLQ, OPEN),
        "parent_run_id": run.parent_run_id or run.get_parent_run_id(),
        "root_run_id": run.root_run_id or run.get_root_run_id(),
        "run_url": run_url,
        "archived": {"by": run.tags.get(ARCHIVED_BY), "at": run.tags.get(ARCHIVED_AT), "reason": run.tags.get(ARCHIVE_REASON)}
        if run.tags.get(tags.DLQ) == ARCHIVED else None,
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def failed_runs(
    instance: DagsterInstance,
    *,
    statuses: Iterable[str] = (OPEN,),
    event_type: str | None = None,
    source: str | None = None,
    kind: str | None = None,
    error_class: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = SCAN_LIMIT,
) -> list[DagsterRun]:
    """Failed runs in the DLQ (newest first) matching the filters."""
    wanted: dict[str, Any] = {tags.DLQ: list(statuses)}
    if event_type:
        wanted[tags.EVENT_TYPE] = event_type
    if source:
        wanted[tags.SOURCE] = source
    runs = instance.get_runs(
        filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE], tags=wanted, created_after=since, created_before=until),
        limit=limit,
    )
    replayed = replayed_ids(instance, [r.run_id for r in runs])
    out = []
    for run in runs:
        if run.run_id in replayed and run.tags.get(tags.DLQ) == OPEN:
            continue  # re-executed (from the UI or the API): its newest re-execution is the item
        if kind and kind_of(run) != kind:
            continue
        if error_class:
            tagged = run.tags.get(ERROR_CLASS_TAG) or failure_of(instance, run.run_id).error_class
            if tagged != error_class:
                continue
        out.append(run)
    return out


def replayed_ids(instance: DagsterInstance, run_ids: list[str]) -> set[str]:
    """The runs among ``run_ids`` that have a re-execution (whoever launched it)."""
    found: set[str] = set()
    for start in range(0, len(run_ids), 200):
        chunk = run_ids[start : start + 200]
        if chunk:
            for child in instance.get_runs(filters=RunsFilter(tags={PARENT_TAG: chunk})):
                found.add(child.tags[PARENT_TAG])
    return found


def reconcile(instance: DagsterInstance, limit: int = 200) -> list[str]:
    """Tag as ``replayed`` the open items someone re-executed from the Dagster UI, so
    the UI's tags and the API agree; returns their ids."""
    runs = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE], tags={tags.DLQ: OPEN}), limit=limit)
    ids = sorted(replayed_ids(instance, [r.run_id for r in runs]))
    for run_id in ids:
        mark_replayed(instance, run_id, "dagster-ui")
    return ids


def stats(instance: DagsterInstance, now: dt.datetime) -> dict[str, Any]:
    runs = failed_runs(instance)
    by_type: dict[str, int] = {}
    by_class: dict[str, int] = {}
    day = week = 0
    for run in runs:
        label = run.tags.get(tags.EVENT_TYPE) or f"sync:{run.tags.get(tags.SYNC, run.job_name)}"
        by_type[label] = by_type.get(label, 0) + 1
        cls = run.tags.get(ERROR_CLASS_TAG) or failure_of(instance, run.run_id).error_class
        by_class[cls] = by_class.get(cls, 0) + 1
        record = instance.get_run_record_by_id(run.run_id)
        ended = _ts(record.end_time) if record else None
        if ended and now - ended <= dt.timedelta(days=1):
            day += 1
        if ended and now - ended <= dt.timedelta(days=7):
            week += 1
    archived = len(failed_runs(instance, statuses=(ARCHIVED,)))
    return {"total": len(runs), "last_24h": day, "last_7d": week, "archived": archived,
            "by_type": by_type, "by_error_class": by_class}


def archive(instance: DagsterInstance, run_id: str, reason: str, who: str, now: dt.datetime) -> None:
    instance.add_run_tags(
        run_id,
        {tags.DLQ: ARCHIVED, ARCHIVED_BY: who[:64], ARCHIVED_AT: now.isoformat(), ARCHIVE_REASON: reason[:500]},
    )


def mark_replayed(instance: DagsterInstance, run_id: str, who: str) -> None:
    instance.add_run_tags(run_id, {tags.DLQ: REPLAYED, REPLAYED_BY: who[:64]})


def reexecution_tags() -> dict[str, str]:
    """Tags of a re-execution: on the retry queue, back in the DLQ if it fails again,
    without the parent's failure annotations."""
    return {
        tags.QUEUE: RETRY,
        tags.CELERY_QUEUE: RETRY,
        tags.PRIORITY: str(QUEUES[RETRY].priority),
        tags.DLQ: OPEN,
        ERROR_CLASS_TAG: "",
        FAILED_OPS_TAG: "",
        DESTINATIONS_TAG: "",
    }


# -- replays -----------------------------------------------------------------------------


class ReplayError(Exception):
    """The re-execution could not be launched (Dagster's webserver unavailable…)."""


def replay(store: Any, instance: DagsterInstance, run_id: str, who: str, now: dt.datetime) -> tuple[str, bool]:
    """Re-execute a DLQ item from failure on ``integrations-retry``; ``(child run id,
    already)``. Exactly one re-execution per item: the claim row is committed first."""
    import sqlalchemy as sa

    from relay import dagster_gql
    from relay.tables import dlq_replays

    with store.engine.begin() as conn:
        existing = conn.execute(sa.select(dlq_replays).where(dlq_replays.c.parent_run_id == run_id)).mappings().first()
        if existing is None:
            try:
                conn.execute(dlq_replays.insert().values(parent_run_id=run_id, requested_at=now, requested_by=who[:64]))
            except sa.exc.IntegrityError:
                existing = {"child_run_id": None}
    if existing is not None:
        child = existing["child_run_id"]
        if child is None:  # another request holds the claim and is launching it now
            raise ReplayError("a re-execution of this item is being launched")
        return child, True
    try:
        child = dagster_gql.launch_reexecution(run_id, reexecution_tags())
    except (dagster_gql.DagsterUnavailable, dagster_gql.LaunchFailed) as exc:
        with store.engine.begin() as conn:
            conn.execute(dlq_replays.delete().where(dlq_replays.c.parent_run_id == run_id))
        raise ReplayError(str(exc)) from exc
    with store.engine.begin() as conn:
        conn.execute(dlq_replays.update().where(dlq_replays.c.parent_run_id == run_id).values(child_run_id=child))
    mark_replayed(instance, run_id, who)
    return child, False

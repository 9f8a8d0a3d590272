"""The dispatch sensor: event store → one run per event."""

from __future__ import annotations

import datetime as dt

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from carinho_pipelines.kernel import tags
from carinho_pipelines.store import EventStore, utcnow
from carinho_pipelines.store.claims import claim_events

from . import ledger
from .jobs import EVENT_JOBS, run_tags
from carinho_pipelines.resources.event_store import EventStoreResource

BATCH = 200


@sensor(
    name="event_dispatch_sensor",
    jobs=list(EVENT_JOBS.values()),
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches one run per stored event (run key = event id); delayed events when due.",
)
def event_dispatch_sensor(context: SensorEvaluationContext, event_store: EventStoreResource):
    """Exactly once: the sensor claims an event before requesting its run (the claim the
    relay takes for a direct submission, so the two never both launch), and ``run_key``
    = event id, deduplicated by Dagster per sensor forever, so restarts, a lost dispatch
    mark or a cursor reset never launch a second run. An event is marked dispatched (run
    id written back) once its run exists — including a run submitted by the relay."""
    return dispatch_tick(context, event_store.store, utcnow())


def dispatch_tick(context: SensorEvaluationContext, store: EventStore, now: dt.datetime):
    """One tick of :func:`event_dispatch_sensor` at ``now`` (the sensor passes the
    clock; a test passes any instant)."""
    due = ledger.due_events(store, now, BATCH)
    launching = ledger.claimed_undispatched(store, now, BATCH)
    if not due and not launching:
        return SkipReason("no events due")
    ids = [str(e["id"]) for e in due] + [str(i) for i in launching]
    existing = {
        run.tags[tags.EVENT_ID]: run.run_id
        for run in context.instance.get_runs(filters=RunsFilter(tags={tags.EVENT_ID: ids}), limit=len(ids) * 4)
    }
    for event_id in launching:
        if str(event_id) in existing:
            ledger.mark_dispatched(store, event_id, existing[str(event_id)])
    to_launch = []
    for event in due:
        run_id = existing.get(str(event["id"]))
        if run_id is not None:
            ledger.mark_dispatched(store, event["id"], run_id)
        elif event["event_type"] in EVENT_JOBS:  # not catalogued any more: left for a person
            to_launch.append(event)
    claimed = claim_events(store.engine, [e["id"] for e in to_launch], now, take_over_stale=True)
    requests = [
        RunRequest(run_key=str(event["id"]), job_name=EVENT_JOBS[event["event_type"]].name, tags=run_tags(event))
        for event in to_launch
        if event["id"] in claimed
    ]
    if not requests:
        return SkipReason("nothing to launch: due events are dispatched or being submitted")
    cursor = max([int(context.cursor or 0), *(int(r.run_key) for r in requests)])
    return SensorResult(run_requests=requests, cursor=str(cursor))
